"""Command lines at the top of a practitioner's reply (spec section 6), one unit each.

A practitioner steers a case from the mail client by starting the reply with
command lines, one per line, before any other text (blank lines may come
before and between them)::

    #assign me|ADDRESS          #status open|waiting|closed    #priority urgent|high|normal|low
    #category NAME              #role NAME                     #country CODE
    #context TEXT               #escalate PLATFORM [URL…]      #evidence [FILE…]
    #outcome removed|restricted|declined|no_action [PLATFORM]
    #note                       #reply NAME                    #close
    #spam                       #out-of-remit                  #test
    #allow ADDRESS|all          #remove ADDRESS    #merge REF    #withhold
    #remind DATE                #send              #help

The first line that is not a command ends the block; everything from there on
is the body, the text relayed to the requester (unless ``#note`` keeps the
whole reply internal). Text after ``#note`` on the same line starts the body,
so ``#note called the school`` works as people write it.

Names and enumerated values are case-insensitive (``#Status Closed``), and the
bold or italic marks that an HTML mail client adds around a line
(``*#note*``, ``**#status closed**``) are ignored; otherwise the syntax is strict: an
unknown command or a bad value becomes an error sentence (naming the valid values)
for the report to the practitioner. The caller runs the commands that are valid
and refuses the others (:func:`sort_commands`); see :mod:`mailroom.cases.practitioner`
for what happens to the text of a reply with a refused command.

**A command is one unit**, as in GNU Mailman's ``commands/eml_*.py``: a
:class:`CommandUnit` holds the command's ``name``, its
``argument_description`` and one-line ``description`` (the help at the foot of
every practitioner mail is generated from them: :func:`command_help`), an
``example`` that must parse, and its three steps:

- ``parse(rest)``: the text after the name → a :class:`Command`, or the error
  sentence. Pure: it reads only the text, as :func:`parse_commands` does (the
  pipeline calls it too, to tell a vacation notice from a reply of commands).
- ``check(command, known)``: a value the configuration does not know (a
  category, a role, a practitioner, a platform) → the error sentence. Pure too:
  :class:`Known` is what the configuration names.
- ``run(reply, command)``: the effect on the case, through the :class:`Reply`
  being acted on: the change, its audit event, a line for the practitioner's
  "done" list, a notice when it could not be done, or a refusal
  (``reply.refused``, as for a bad value: a case to merge that does not
  exist, a day in the past) that holds the reply's text back. The change and its
  event are made at once; the mail it causes (an escalation, an outcome's
  confirmation) is decided (``reply.decide``), and queued with the reply's other
  mail when the caller applies the reply's :class:`~mailroom.cases.decisions.Decisions`.

Units that set up how the others run (``#context``, ``#evidence``: ``first``)
run before them; the others run in the reply's order.

Every unit is listed once, in :data:`UNITS` (the order of the help and of
"known commands"). A unit without help, an example or an effect cannot be
listed: ``run`` is abstract, and ``tests/unit/test_command_units.py`` parses
every example and looks for every command in the help practitioners receive.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from mailroom.app import App, Clock
from mailroom.cases import participants
from mailroom.cases.decisions import AuditEvent, Decision, Decisions
from mailroom.cases.deliveries import clear_failing
from mailroom.cases.escalations import (
    decide_escalation,
    decide_outcome,
    evidence_count,
    outcome_target,
)
from mailroom.cases.merging import merge_tickets
from mailroom.cases.safeguarding import keep_only_hashes, withhold_case_files
from mailroom.cases.sla import raise_for_category, reprioritise
from mailroom.cases.tickets import record_event, set_status, ticket_by_reference
from mailroom.errors import MailroomError
from mailroom.mailtypes import Address
from mailroom.outbox.render import Renderer
from mailroom.platforms import Platforms
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.models import Message, Reminder, Ticket
from mailroom.vocabulary import SET_ASIDE, EscalationOutcome, TicketPriority, TicketStatus

__all__ = [
    "UNITS",
    "Command",
    "CommandHelp",
    "CommandParse",
    "CommandUnit",
    "Known",
    "Reply",
    "check_commands",
    "command_help",
    "sort_commands",
    "merge_case_into",
    "parse_commands",
    "run_commands",
]

STATUSES = tuple(status for status in TicketStatus if status not in SET_ASIDE)
PRIORITIES = tuple(TicketPriority)
ANSWERS = "answers"  # the folder of the canned answers, under the templates
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_REMIND_DAYS = 366
OUTCOMES = tuple(EscalationOutcome)

_COMMAND_LINE = re.compile(r"^#(?P<name>[A-Za-z][\w-]*)(?:\s+(?P<rest>.*))?$")
_DECORATION = re.compile(r"^(?P<mark>\*{1,2})(?P<inner>#.*?)(?P=mark)(?P<tail>.*)$")
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_REFERENCE = re.compile(r"^(?:[A-Za-z]{1,10}-?)?\d{1,12}$")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_URL = re.compile(r"^(?:https?://\S+|(?:[\w-]+\.)+[a-z]{2,63}(?:/\S*)?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    """One command line: ``#escalate tiktok https://…`` → ("escalate", ("tiktok", "https://…"))."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandParse:
    """The commands at the top of a reply, the errors in them, and the rest of the text."""

    commands: tuple[Command, ...]
    errors: tuple[str, ...]
    body: str

    @property
    def is_note(self) -> bool:
        """``#note``: the whole reply stays internal."""
        return any(command.name == "note" for command in self.commands)

    def named(self, name: str) -> tuple[Command, ...]:
        return tuple(command for command in self.commands if command.name == name)


@dataclass(frozen=True)
class Known:
    """What the configuration names, for the checks."""

    practitioners: tuple[str, ...]
    categories: tuple[str, ...]
    roles: tuple[str, ...]
    platforms: tuple[str, ...]  # the keys of the platform directory, sorted
    answers: tuple[str, ...] = ()  # the canned answers: templates/answers/<name>.txt.j2
    countries: tuple[str, ...] = ()  # those with a set of [signposting], sorted

    @classmethod
    def of(cls, settings: Settings, platforms: Platforms, renderer: Renderer) -> Known:
        """What the settings, the platform directory and the canned answers name."""
        return cls(settings.practitioners, settings.categories, settings.roles,
                   tuple(sorted(platforms)), renderer.names(ANSWERS),
                   settings.signposting.known_countries)


@dataclass
class Reply:
    """One practitioner reply being acted on, and what acting on it caused."""

    app: App
    session: Session
    ticket: Ticket
    message: Message
    actor: str  # the practitioner's address
    status_chosen: bool = False  # a #status/#close decided the status
    closing: bool = False  # a command closed the case
    internal: bool = False  # #note: nothing is relayed
    signposting: str | None = None  # the new category, for its signposting
    done: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    note_text: str | None = None  # the text of a #note reply: context for an escalation
    escalation_id: int | None = None  # the escalation the reply address was bound to
    send_held: bool = False  # #send: relay the text held back from an earlier reply
    refused: list[str] = field(default_factory=list)  # refused when run (#merge of no case)
    evidence: tuple[str, ...] | None = None  # #evidence: files for #escalate (() = all)
    evidence_used: bool = False  # an #escalate took the #evidence
    canned: list[str] = field(default_factory=list)  # #reply: canned answers to add
    help: bool = False  # #help: mail the help
    decisions: Decisions = Decisions()  # what the reply leads to, for the caller to apply

    def record(self, action: str, **detail: Any) -> None:
        """An audit event by the practitioner, from this reply, of a change made now."""
        record_event(self.session, action=action, actor=self.actor, at=self.app.now(),
                     ticket_id=self.ticket.id, message_pk=self.message.id, **detail)

    def decide(self, *decided: Decision | Decisions | None) -> None:
        """Add to what the reply leads to (applied by the caller, in this order)."""
        self.decisions = self.decisions.then(*decided)

    def decide_event(self, action: str, **detail: Any) -> None:
        """An audit event by the practitioner, from this reply, of what it decided."""
        self.decide(AuditEvent(action, actor=self.actor, at=self.app.now(),
                               ticket_id=self.ticket.id, message_pk=self.message.id,
                               detail=detail))


class CommandUnit(ABC):
    """One command: what it is called, its help, and how it is read, checked and run."""

    name: ClassVar[str]
    argument_description: ClassVar[str] = ""  # "open|waiting|closed"; empty: no argument
    description: ClassVar[str]  # one line of help: what it does
    example: ClassVar[str]  # a command line that parses
    first: ClassVar[bool] = False  # runs before the others: it sets up how they run
    free_text: ClassVar[bool] = False  # its argument is a sentence: it keeps its full stop

    @property
    def syntax(self) -> str:
        """``#status open|waiting|closed``."""
        return f"#{self.name} {self.argument_description}".rstrip()

    @abstractmethod
    def parse(self, rest: str) -> Command | str:
        """The command from the text after its name, or the error sentence about it."""

    def check(self, command: Command, known: Known) -> str | None:
        """The error sentence when the configuration does not know a value."""
        return None

    @abstractmethod
    def run(self, reply: Reply, command: Command) -> None:
        """Its effect on the case."""


# --- the block ---------------------------------------------------------------------------


def parse_commands(text: str) -> CommandParse:
    """Read the command block at the top of ``text``; see the module docstring."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    commands: list[Command] = []
    errors: list[str] = []
    note_lines: list[str] = []  # "#note called the school": the note starts there
    index = 0
    while index < len(lines):
        line = _clean(lines[index])
        match = _COMMAND_LINE.match(line)
        if line and not match:
            break
        index += 1
        if not match:
            continue
        name, rest = match.group("name").lower(), (match.group("rest") or "").strip()
        if name == "note" or getattr(_BY_NAME.get(name), "free_text", False):
            rest = _free_text(lines[index - 1], rest)
        if name == "note" and rest:
            note_lines.append(rest)
            rest = ""
        result = _parse_one(name, rest)
        if isinstance(result, Command):
            commands.append(result)
        else:
            errors.append(result)
    body = "\n".join([*note_lines, *lines[index:]]).strip("\n")
    return CommandParse(tuple(commands), tuple(errors), body)


def _free_text(line: str, rest: str) -> str:
    """The text after a command that takes sentences, with its full stop."""
    kept = _COMMAND_LINE.match(_clean(line, full_stop=True))
    return (kept.group("rest") or "").strip() if kept else rest


def _clean(line: str, *, full_stop: bool = False) -> str:
    """The line without the marks a mail client adds (and its full stop, unless kept)."""
    line = line.replace("\xa0", " ").strip()
    line = (line if full_stop else line.removesuffix(".")).rstrip()
    decorated = _DECORATION.match(line)
    if decorated:
        return (decorated.group("inner") + decorated.group("tail")).strip()
    return line


def _parse_one(name: str, rest: str) -> Command | str:
    """The command, or the error sentence about it."""
    unit = _BY_NAME.get(name)
    if unit is None:
        known = ", ".join(f"#{known}" for known in _BY_NAME)
        return f"#{name}: unknown command (known commands: {known})"
    return unit.parse(rest)


def check_commands(commands: Iterable[Command], known: Known) -> list[str]:
    """One error sentence per command whose value the configuration does not know."""
    return sort_commands(commands, known)[1]


def sort_commands(
    commands: Iterable[Command], known: Known
) -> tuple[tuple[Command, ...], list[str]]:
    """The commands the configuration accepts, in order, and an error sentence for each
    of the others."""
    valid: list[Command] = []
    errors: list[str] = []
    for command in commands:
        error = _BY_NAME[command.name].check(command, known)
        if error:
            errors.append(error)
        else:
            valid.append(command)
    return tuple(valid), errors


def run_commands(reply: Reply, commands: Iterable[Command]) -> None:
    """Run each command (all of them parsed and checked): those that set up how the others
    run first (``#context``, ``#evidence``), then the others, each in the reply's order."""
    ordered = sorted(commands, key=lambda command: not _BY_NAME[command.name].first)
    for command in ordered:
        _BY_NAME[command.name].run(reply, command)


@dataclass(frozen=True)
class CommandHelp:
    """One line of the help at the foot of practitioner mail."""

    syntax: str
    description: str


def command_help() -> tuple[CommandHelp, ...]:
    """The help for every command, in the order of :data:`UNITS`."""
    return tuple(CommandHelp(unit.syntax, unit.description) for unit in UNITS)


# --- reading arguments (pure) ------------------------------------------------------------


def read_one_of(name: str, rest: str, choices: tuple[str, ...]) -> Command | str:
    value = rest.strip().lower().replace("-", "_").replace(" ", "_")
    if value in choices:
        return Command(name, (value,))
    listed = ", ".join(choices)
    if not rest:
        return f"#{name}: needs one of {listed}"
    return f'#{name}: "{rest}" is not one of {listed}'


def read_nothing(name: str, rest: str) -> Command | str:
    if rest:
        return f'#{name}: takes nothing after it, got "{rest}"'
    return Command(name)


def read_free_text(name: str, rest: str) -> Command | str:
    value = " ".join(rest.split())
    return Command(name, (value,)) if value else f"#{name}: needs a name after it"


def read_address(name: str, rest: str) -> Command | str:
    value = rest.strip().strip("<>").strip()
    if _ADDRESS.match(value):
        return Command(name, (value.lower(),))
    if not value:
        return f"#{name}: needs an email address"
    return f'#{name}: "{rest}" is not an email address'


def normalise_choice(value: str) -> str:
    """``Illegal images`` / ``illegal-images`` → ``illegal_images``."""
    return "_".join(value.lower().replace("-", " ").split())


# --- the commands ------------------------------------------------------------------------


class Assign(CommandUnit):
    name = "assign"
    argument_description = "me|ADDRESS"
    description = "assign the case to you or to another practitioner"
    example = "#assign me"

    def parse(self, rest: str) -> Command | str:
        value = rest.strip().strip("<>").strip()
        if value.lower() == "me":
            return Command(self.name, ("me",))
        if _ADDRESS.match(value):
            return Command(self.name, (value.lower(),))
        if not value:
            return f"#{self.name}: needs 'me' or an email address"
        return f'#{self.name}: "{rest}" is not "me" or an email address'

    def check(self, command: Command, known: Known) -> str | None:
        address = command.args[0]
        if address == "me" or address in known.practitioners:
            return None
        return (f'#assign: "{address}" is not a practitioner '
                f'(one of: me, {", ".join(known.practitioners)})')

    def run(self, reply: Reply, command: Command) -> None:
        address = reply.actor if command.args[0] == "me" else command.args[0]
        before = reply.ticket.assignee
        if before != address:
            reply.ticket.assignee = address
            reply.record("ticket.assigned", before=before, after=address)
        reply.done.append(f"assigned to {address}")


class Status(CommandUnit):
    name = "status"
    argument_description = "|".join(STATUSES)
    description = "set the status (an answer alone moves open to waiting)"
    example = "#status waiting"

    def parse(self, rest: str) -> Command | str:
        return read_one_of(self.name, rest, STATUSES)

    def run(self, reply: Reply, command: Command) -> None:
        change_status(reply, command.args[0])


class ChoiceField(CommandUnit):
    """``#category`` and ``#role``: a name the configuration lists, set on the ticket's
    field of the same name."""

    @abstractmethod
    def choices(self, known: Known) -> tuple[str, ...]:
        """The names the configuration lists."""

    def parse(self, rest: str) -> Command | str:
        return read_free_text(self.name, rest)

    def check(self, command: Command, known: Known) -> str | None:
        if normalise_choice(command.args[0]) in self.choices(known):
            return None
        return (f'#{self.name}: "{command.args[0]}" is not a {self.name} '
                f'(one of: {", ".join(self.choices(known))})')

    def run(self, reply: Reply, command: Command) -> None:
        value = normalise_choice(command.args[0])
        before = getattr(reply.ticket, self.name)
        if before != value:
            setattr(reply.ticket, self.name, value)
            reply.record(f"ticket.{self.name}", before=before, after=value)
            self.changed(reply, value)
        reply.done.append(f"{self.name} {value}")

    def changed(self, reply: Reply, value: str) -> None:
        """What a new value causes besides its audit event."""


class Category(ChoiceField):
    name = "category"
    argument_description = "NAME"
    description = "set the category; some send the requester their signposting"
    example = "#category bullying"

    def choices(self, known: Known) -> tuple[str, ...]:
        return known.categories

    def changed(self, reply: Reply, value: str) -> None:
        reply.signposting = value
        app = reply.app
        keep_only_hashes(app.settings, app.blobs, reply.session, reply.ticket, clock=app.clock,
                         actor=reply.actor)
        raised = raise_for_category(app.settings, app.hours, reply.session, reply.ticket,
                                    actor=reply.actor, clock=app.clock)
        if raised:
            reply.done.append(f"priority {raised} (the category asks for it)")


class Role(ChoiceField):
    name = "role"
    argument_description = "NAME"
    description = "set the requester's professional role"
    example = "#role teacher"

    def choices(self, known: Known) -> tuple[str, ...]:
        return known.roles


class Country(CommandUnit):
    """The case's country chooses the emergency numbers and reporting services its
    requester mail gives (``[signposting]``, ``[signposting.countries.XX]``). It is set
    when the case opens, from the requester's address; a practitioner corrects it."""

    name = "country"
    argument_description = "CODE"
    description = ("set the case's country: the requester's mail gives its emergency numbers "
                   "and services")
    example = "#country IE"

    def parse(self, rest: str) -> Command | str:
        value = rest.strip().upper()
        if re.fullmatch(r"[A-Z]{2}", value):
            return Command(self.name, (value,))
        if not value:
            return f"#{self.name}: needs a two-letter country code, e.g. #{self.name} IE"
        return f'#{self.name}: "{rest}" is not a two-letter country code (such as GB, IE, DE)'

    def check(self, command: Command, known: Known) -> str | None:
        if command.args[0] in known.countries:
            return None
        return (f'#country: "{command.args[0]}" is not a country the helpline has numbers '
                f'and services for (one of: {", ".join(known.countries)})')

    def run(self, reply: Reply, command: Command) -> None:
        before, value = reply.ticket.country, command.args[0]
        if before != value:
            reply.ticket.country = value
            reply.record("ticket.country", before=before, after=value)
        reply.done.append(f"country {value}")


class Escalate(CommandUnit):
    name = "escalate"
    argument_description = "PLATFORM [URL ...]"
    description = "report the case to a platform (no URL: those the requester gave)"
    example = "#escalate tiktok https://www.tiktok.com/@example"

    def parse(self, rest: str) -> Command | str:
        words = rest.split()
        if not words:
            return f"#{self.name}: needs a platform, then any URLs to report"
        platform, urls = words[0].lower(), [word.strip("<>") for word in words[1:]]
        for url in urls:
            if not _URL.match(url):
                return f'#{self.name}: "{url}" is not a URL'
        return Command(self.name, (platform, *urls))

    def check(self, command: Command, known: Known) -> str | None:
        platform = command.args[0]
        if platform in known.platforms:
            return None
        return (f'#escalate: "{platform}" is not a platform in the directory '
                f'(one of: {", ".join(known.platforms)})')

    def run(self, reply: Reply, command: Command) -> None:
        request_escalation(reply, command.args[0], command.args[1:])


class Outcome(CommandUnit):
    name = "outcome"
    argument_description = "|".join(OUTCOMES) + " [PLATFORM]"
    description = ("what the platform did: replying to its answer (or to the confirmation), "
                   "for that escalation")
    example = "#outcome removed"

    def parse(self, rest: str) -> Command | str:
        """The platform picks among several escalations."""
        words = rest.split()
        found = read_one_of(self.name, words[0] if words else "", OUTCOMES)
        if isinstance(found, str) or len(words) < 2:
            return found
        if len(words) > 2:
            return f'#{self.name}: takes an outcome and at most a platform, got "{rest}"'
        return Command(self.name, (*found.args, words[1].lower()))

    def run(self, reply: Reply, command: Command) -> None:
        request_outcome(reply, command.args[0], *command.args[1:2])


class Note(CommandUnit):
    name = "note"
    description = "nothing is sent: the reply stays internal (#escalate sends it as context)"
    example = "#note"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        reply.internal = True


class Close(CommandUnit):
    name = "close"
    description = "close the case; the requester gets the closure notice"
    example = "#close"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        change_status(reply, TicketStatus.CLOSED)


class Allow(CommandUnit):
    name = "allow"
    argument_description = "ADDRESS|all"
    description = "the address (all: every pending one) receives this case's answers"
    example = "#allow head@school.example"

    def parse(self, rest: str) -> Command | str:
        if rest.strip().lower() == "all":
            return Command(self.name, ("all",))
        return read_address(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        try:
            changed = participants.allow(reply.session, reply.ticket, command.args[0],
                                         actor=reply.actor, at=reply.app.now(),
                                         message_pk=reply.message.id)
        except participants.ParticipantError as exc:
            reply.notices.append(f"#allow {command.args[0]}: {exc}")
            return
        if changed:
            reply.done.append(f"allowed {', '.join(changed)} "
                              "(they receive answers on this case)")
        else:
            reply.done.append(f"#allow {command.args[0]}: nobody was waiting to be allowed")


class Remove(CommandUnit):
    name = "remove"
    argument_description = "ADDRESS"
    description = "the address receives nothing more of this case"
    example = "#remove head@school.example"

    def parse(self, rest: str) -> Command | str:
        return read_address(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        address = command.args[0]
        try:
            removed = participants.remove(reply.session, reply.ticket, address,
                                          actor=reply.actor, at=reply.app.now(),
                                          message_pk=reply.message.id)
        except participants.ParticipantError as exc:
            reply.notices.append(f"#remove {address}: {exc}")
            return
        reply.done.append(f"removed {address}" if removed else f"{address} was not on the case")


class Merge(CommandUnit):
    """Its people come with the case merged: the practitioner's decision widens the
    audience, which nothing else may."""

    name = "merge"
    argument_description = "REF"
    description = "fold case REF into this one; its people receive this case's answers"
    example = "#merge HL-000012"

    def parse(self, rest: str) -> Command | str:
        """``HL-000012``, ``12`` or ``#12``."""
        value = rest.strip().lstrip("#").strip()
        if _REFERENCE.match(value):
            return Command(self.name, (value.upper(),))
        if not value:
            return f"#{self.name}: needs the reference of a case, e.g. #{self.name} HL-000012"
        return f'#{self.name}: "{rest}" is not a case reference'

    def run(self, reply: Reply, command: Command) -> None:
        """A case that does not exist (or cannot be merged) refuses the command, as a bad
        value does: the reply's text is held, the practitioner told."""
        ref = command.args[0]
        try:
            app = reply.app
            other = merge_case_into(app.settings, app.blobs, reply.session, reply.ticket, ref,
                                    clock=app.clock, actor=reply.actor,
                                    message_pk=reply.message.id)
        except MailroomError as exc:
            reply.refused.append(f"#merge {ref}: {exc}")
            return
        reply.done.append(f"merged {other.reference} into {reply.ticket.reference}")


class Withhold(CommandUnit):
    name = "withhold"
    description = "no file of this case is ever sent again, in any case: for illegal images"
    example = "#withhold"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        """Every file of the case, from now on and retroactively (the mail with files that
        the reply decided so far, an escalation's, is queued after this: it counts too)."""
        app = reply.app
        done = withhold_case_files(
            app.settings, app.blobs, reply.session, reply.ticket, clock=app.clock,
            actor=reply.actor, message_pk=reply.message.id,
            decided_mail=reply.decisions.mail_with_files(reply.ticket.id))
        line = f"withheld the case's {done.files} file(s): none will be sent, in any case"
        if done.queued_mail:
            line += f" ({done.queued_mail} queued mail(s) will go without them)"
        if done.other_cases:
            line += f"; the same files also flagged {', '.join(done.other_cases)}"
        reply.done.append(line)


class Send(CommandUnit):
    """The text a reply could not send (a command in it was refused, or it read as a
    signature only) is held on that reply and quoted back to the practitioner; ``#send``
    in the answer to that report sends it (see :mod:`mailroom.cases.practitioner`)."""

    name = "send"
    description = ("send the answer that was held back from your earlier reply "
                   "(text of your own after it is sent instead)")
    example = "#send"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        reply.send_held = True


class Context(CommandUnit):
    """Kept on the case until an escalation takes it: ``#context`` in one reply and
    ``#escalate`` in a later one work, and the reply itself is still relayed."""

    name = "context"
    argument_description = "TEXT"
    description = ("what the next escalation tells the platform; the rest of your reply "
                   "still goes to the requester")
    example = "#context The account uses the head teacher's photo."
    first = True
    free_text = True

    def parse(self, rest: str) -> Command | str:
        value = " ".join(rest.split())
        return Command(self.name, (value,)) if value else f"#{self.name}: needs the text after it"

    def run(self, reply: Reply, command: Command) -> None:
        before = reply.ticket.escalation_context
        if before != command.args[0]:
            reply.ticket.escalation_context = command.args[0]
            reply.record("ticket.escalation_context", replaced=before is not None)
        reply.done.append("context kept for the next escalation")


class Evidence(CommandUnit):
    """The files go through the same gate as every mail (safeguarding): a withheld
    file, or any file of a case judged illegal, never leaves."""

    name = "evidence"
    argument_description = "[FILE ...]"
    description = ("attach the case's files (or those named) to this reply's #escalate; "
                   "never those safeguarding holds back")
    example = "#evidence screenshot.png"
    first = True

    def parse(self, rest: str) -> Command | str:
        try:
            names = shlex.split(rest)
        except ValueError:
            return f'#{self.name}: cannot read the file names in "{rest}" (an open quote?)'
        return Command(self.name, tuple(names))

    def run(self, reply: Reply, command: Command) -> None:
        reply.evidence = command.args


class Spam(CommandUnit):
    name = "spam"
    description = "set the case aside as spam (not counted as a case); nothing of the reply is sent"
    example = "#spam"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        change_status(reply, TicketStatus.SPAM)
        reply.internal = True


class OutOfRemit(CommandUnit):
    name = "out-of-remit"
    description = ("set the case aside as not for this helpline; your answer is still sent "
                   "(no closure notice)")
    example = "#out-of-remit"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        change_status(reply, TicketStatus.OUT_OF_REMIT)


class Test(CommandUnit):
    name = "test"
    description = ("set the case aside as a test of the service (not counted as a case); "
                   "nothing of the reply is sent")
    example = "#test"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        change_status(reply, TicketStatus.TEST)
        reply.internal = True


class Priority(CommandUnit):
    name = "priority"
    argument_description = "|".join(PRIORITIES)
    description = "set the case's priority"
    example = "#priority high"

    def parse(self, rest: str) -> Command | str:
        return read_one_of(self.name, rest, PRIORITIES)

    def run(self, reply: Reply, command: Command) -> None:
        before, value = reply.ticket.priority, command.args[0]
        if before != value:
            reply.ticket.priority = value
            reply.record("ticket.priority", before=before, after=value)
            reprioritise(reply.app.settings, reply.app.hours, reply.session, reply.ticket,
                         clock=reply.app.clock)
        reply.done.append(f"priority {value}")


class CannedReply(CommandUnit):
    """The answer rendered from ``templates/answers/NAME.txt.j2`` goes after the
    practitioner's own text (or alone), in the same relay."""

    name = "reply"
    argument_description = "NAME"
    description = "add a canned answer to the answer sent (#help lists them)"
    example = "#reply screenshots"

    def parse(self, rest: str) -> Command | str:
        value = normalise_choice(rest)
        if re.fullmatch(r"[a-z0-9_]+", value):
            return Command(self.name, (value,))
        if not value:
            return f"#{self.name}: needs the name of a canned answer"
        return f'#{self.name}: "{rest}" is not the name of a canned answer'

    def check(self, command: Command, known: Known) -> str | None:
        if command.args[0] in known.answers:
            return None
        return (f'#reply: there is no canned answer "{command.args[0]}" '
                f'(one of: {", ".join(known.answers)})')

    def run(self, reply: Reply, command: Command) -> None:
        reply.canned.append(command.args[0])


class Remind(CommandUnit):
    """Sent at the helpline's opening time that day (or the next opening after it),
    by the reminders job, to the practitioner who asked only."""

    name = "remind"
    argument_description = "DATE"
    description = "mail me about this case on that day (2026-03-10, tomorrow, friday, in 3 days)"
    example = "#remind tomorrow"

    def parse(self, rest: str) -> Command | str:
        value = " ".join(rest.lower().split())
        if value in ("tomorrow", *WEEKDAYS) or _ISO_DATE.fullmatch(value):
            return Command(self.name, (value,))
        days = re.fullmatch(r"in (\d{1,3}) days?", value)
        if days:
            return Command(self.name, (f"+{int(days.group(1))}",))
        if not value:
            return f"#{self.name}: needs a day (2026-03-10, tomorrow, friday, in 3 days)"
        return (f'#{self.name}: "{rest}" is not a day (one of: 2026-03-10, tomorrow, '
                "a weekday, in N days)")

    def run(self, reply: Reply, command: Command) -> None:
        now = reply.app.now()
        hours = reply.app.hours
        day = remind_day(command.args[0], now.astimezone(hours.tz).date())
        if day is None or not 0 <= (day - now.astimezone(hours.tz).date()).days <= MAX_REMIND_DAYS:
            reply.refused.append(f"#remind {command.args[0]}: not a day from today to "
                                 f"{MAX_REMIND_DAYS} days ahead")
            return
        due = hours.next_opening(max(now, datetime.combine(day, hours.opens, tzinfo=hours.tz)))
        reply.session.add(Reminder(ticket_id=reply.ticket.id, practitioner=reply.actor.lower(),
                                   due_at=due, created_at=now, message_pk=reply.message.id))
        reply.record("reminder.set", due_at=due.isoformat())
        reply.done.append(f"reminder for you on {due:%A %-d %B %Y at %H:%M}")


class Help(CommandUnit):
    name = "help"
    description = "mail me this help, with the canned answers #reply can add"
    example = "#help"

    def parse(self, rest: str) -> Command | str:
        return read_nothing(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        reply.help = True


class Retry(CommandUnit):
    name = "retry"
    argument_description = "ADDRESS"
    description = "send this case's mail to an address again after it bounced"
    example = "#retry head@school.example"

    def parse(self, rest: str) -> Command | str:
        return read_address(self.name, rest)

    def run(self, reply: Reply, command: Command) -> None:
        address = command.args[0]
        if clear_failing(reply.session, reply.ticket, address, actor=reply.actor,
                         at=reply.app.now(), why="#retry", message_pk=reply.message.id):
            reply.done.append(f"{address} receives this case's mail again")
        else:
            reply.notices.append(f"#retry {address}: its mail was not failing on this case")


UNITS: tuple[CommandUnit, ...] = (
    Assign(), Status(), Priority(), Category(), Role(), Country(), Context(), Escalate(),
    Evidence(),
    Outcome(), Note(), CannedReply(), Close(), Spam(), OutOfRemit(), Test(), Allow(), Remove(),
    Merge(), Withhold(), Retry(), Remind(), Send(), Help(),
)
_BY_NAME: dict[str, CommandUnit] = {unit.name: unit for unit in UNITS}


# --- what the commands share -------------------------------------------------------------


def change_status(reply: Reply, status: str) -> None:
    """A status the practitioner chose: the relay will not change it again."""
    reply.status_chosen = True
    changed = set_status(reply.session, reply.ticket, status, actor=reply.actor,
                         at=reply.app.now(), message_pk=reply.message.id)
    reply.closing = status == TicketStatus.CLOSED and (changed or reply.closing)
    reply.done.append(f"status {status}")


def request_escalation(reply: Reply, platform: str, urls: tuple[str, ...]) -> None:
    """``#escalate``: open the escalation; a reason it cannot go is told to the practitioner.

    The context sent to the platform is what ``#context`` left on the case (it is
    used up) and the text of a ``#note`` reply, never the answer being relayed to
    the professional. With ``#evidence``, the case's files that may leave go too.
    """
    name = reply.app.platforms[platform].name
    ticket = reply.ticket
    context = "\n\n".join(part for part in (ticket.escalation_context, reply.note_text) if part)
    evidence = reply.evidence is not None
    reply.evidence_used = reply.evidence_used or evidence
    try:
        opened = decide_escalation(
            reply.app, reply.session, ticket, platform, urls=list(urls) or None,
            context=context or None, actor=reply.actor, message_pk=reply.message.id,
            evidence=evidence, evidence_names=reply.evidence or ())
    except MailroomError as exc:
        reply.record("escalation.refused", platform=platform, reason=str(exc))
        reply.notices.append(f"#escalate {platform}: nothing was sent to {name}: {exc}")
        return
    reply.decide(opened.decisions)
    escalation = opened.escalation
    ticket.escalation_context = None
    files = f", {evidence_count(reply.session, escalation)} file(s)" if evidence else ""
    reply.done.append(f"escalated to {name} ({len(escalation.urls)} URLs{files})")


def remind_day(value: str, today: date) -> date | None:
    """``2026-03-10``, ``tomorrow``, ``friday`` (the next one, never today), ``+3``."""
    if value == "tomorrow":
        return today + timedelta(days=1)
    if value in WEEKDAYS:
        return today + timedelta(days=(WEEKDAYS.index(value) - today.weekday() - 1) % 7 + 1)
    if value.startswith("+"):
        return today + timedelta(days=int(value[1:]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def request_outcome(reply: Reply, outcome: str, platform: str | None = None) -> None:
    """``#outcome``: close (or correct) the escalation it is about with that outcome: the
    one the reply address names, else the one :func:`outcome_target` finds. The
    confirmation goes to this practitioner, threaded to their reply."""
    try:
        escalation = outcome_target(reply.session, reply.ticket, platform,
                                    bound=reply.escalation_id)
        app = reply.app
        decided = decide_outcome(app.settings, app.platforms, reply.session, escalation, outcome,
                                 actor=reply.actor, now=app.now(), message_pk=reply.message.id,
                                 confirm_to=(Address(reply.actor),), answering=reply.message)
        reply.decide(decided.decisions)
    except MailroomError as exc:
        reply.record("outcome.refused", outcome=outcome, reason=str(exc))
        reply.notices.append(f"#outcome {outcome}: {exc}")
        return
    reply.done.append(f"outcome {outcome} for escalation {escalation.id} to "
                      f"{escalation.platform} (confirmed by mail)")


def merge_case_into(
    settings: Settings, blobs: BlobStore, session: Session, keep: Ticket, ref: str, *,
    clock: Clock, actor: str, message_pk: int | None = None,
) -> Ticket:
    """Merge the case ``ref`` into ``keep`` by a practitioner's decision, at the ``clock``'s
    time once the case is found; the case merged (the files of a case that became
    illegal settled: :func:`~mailroom.cases.safeguarding.keep_only_hashes`).

    Raises MailroomError (one line) when there is no such case, it is this one, or
    it was merged already."""
    other = ticket_by_reference(session, ref)
    if other is None:
        raise MailroomError(f"there is no case {ref}")
    if other.merged_into is not None:
        raise MailroomError(f"case {other.reference} was already merged into another case")
    if other.id == keep.id:
        raise MailroomError(f"case {other.reference} is this case")
    merged = merge_tickets(session, keep, [other], at=clock(), reason="practitioner",
                           actor=actor, message_pk=message_pk)
    if merged.became_illegal:
        keep_only_hashes(settings, blobs, session, keep, clock=clock, actor=actor)
    return other

