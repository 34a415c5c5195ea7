"""Command lines at the top of a practitioner's reply (spec section 6).

A practitioner steers a case from the mail client by starting the reply with
command lines, one per line, before any other text (blank lines may come
before and between them)::

    #assign me                  #assign ADDRESS
    #status open|waiting|closed #category NAME     #role NAME
    #escalate PLATFORM [URL…]   #outcome removed|restricted|declined|no_action [PLATFORM]
    #note                       #close
    #allow ADDRESS|all          #remove ADDRESS    #merge REF    #withhold

The first line that is not a command ends the block; everything from there on
is the body, the text relayed to the requester (unless ``#note`` keeps the
whole reply internal). Text after ``#note`` on the same line starts the body,
so ``#note called the school`` works as people write it.

Names and enumerated values are case-insensitive (``#Status Closed``), and the
bold or italic marks that an HTML mail client adds around a line
(``*#note*``, ``**#status closed**``) are ignored; otherwise the syntax is strict: an
unknown command or a bad value becomes an error sentence for the reply to the
practitioner, and the caller runs nothing. Values that need the configuration
(category names, platform keys) are checked by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mailroom.vocabulary import EscalationOutcome, TicketStatus

__all__ = ["COMMANDS", "Command", "CommandParse", "parse_commands"]

STATUSES = tuple(TicketStatus)
OUTCOMES = tuple(EscalationOutcome)

_COMMAND_LINE = re.compile(r"^#(?P<name>[A-Za-z][\w-]*)(?:\s+(?P<rest>.*))?$")
_DECORATION = re.compile(r"^(?P<mark>\*{1,2})(?P<inner>#.*?)(?P=mark)(?P<tail>.*)$")
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_REFERENCE = re.compile(r"^(?:[A-Za-z]{1,10}-?)?\d{1,12}$")
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


def _clean(line: str) -> str:
    line = line.replace("\xa0", " ").strip().removesuffix(".").rstrip()
    decorated = _DECORATION.match(line)
    if decorated:
        return (decorated.group("inner") + decorated.group("tail")).strip()
    return line


def _parse_one(name: str, rest: str) -> Command | str:
    """The command, or the error sentence about it."""
    parser = COMMANDS.get(name)
    if parser is None:
        known = ", ".join(f"#{known}" for known in COMMANDS)
        return f"#{name}: unknown command (known commands: {known})"
    return parser(name, rest)


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], Command | str]:
    def parse(name: str, rest: str) -> Command | str:
        value = rest.strip().lower().replace("-", "_").replace(" ", "_")
        if value in choices:
            return Command(name, (value,))
        listed = ", ".join(choices)
        if not rest:
            return f"#{name}: needs one of {listed}"
        return f'#{name}: "{rest}" is not one of {listed}'

    return parse


def _outcome(name: str, rest: str) -> Command | str:
    """``#outcome removed [PLATFORM]``: the platform picks among several escalations."""
    words = rest.split()
    found = _one_of(OUTCOMES)(name, words[0] if words else "")
    if isinstance(found, str) or len(words) < 2:
        return found
    if len(words) > 2:
        return f'#{name}: takes an outcome and at most a platform, got "{rest}"'
    return Command(name, (*found.args, words[1].lower()))


def _no_arguments(name: str, rest: str) -> Command | str:
    if rest:
        return f'#{name}: takes nothing after it, got "{rest}"'
    return Command(name)


def _free_text(name: str, rest: str) -> Command | str:
    value = " ".join(rest.split())
    return Command(name, (value,)) if value else f"#{name}: needs a name after it"


def _assign(name: str, rest: str) -> Command | str:
    value = rest.strip().strip("<>").strip()
    if value.lower() == "me":
        return Command(name, ("me",))
    if _ADDRESS.match(value):
        return Command(name, (value.lower(),))
    if not value:
        return f"#{name}: needs 'me' or an email address"
    return f'#{name}: "{rest}" is not "me" or an email address'


def _allow(name: str, rest: str) -> Command | str:
    """``#allow ADDRESS`` or ``#allow all`` (every pending participant)."""
    if rest.strip().lower() == "all":
        return Command(name, ("all",))
    return _address(name, rest)


def _address(name: str, rest: str) -> Command | str:
    value = rest.strip().strip("<>").strip()
    if _ADDRESS.match(value):
        return Command(name, (value.lower(),))
    if not value:
        return f"#{name}: needs an email address"
    return f'#{name}: "{rest}" is not an email address'


def _reference(name: str, rest: str) -> Command | str:
    """``#merge HL-000012`` (or ``12``, ``#12``): a case reference."""
    value = rest.strip().lstrip("#").strip()
    if _REFERENCE.match(value):
        return Command(name, (value.upper(),))
    if not value:
        return f"#{name}: needs the reference of a case, e.g. #{name} HL-000012"
    return f'#{name}: "{rest}" is not a case reference'


def _escalate(name: str, rest: str) -> Command | str:
    words = rest.split()
    if not words:
        return f"#{name}: needs a platform, then any URLs to report"
    platform, urls = words[0].lower(), [word.strip("<>") for word in words[1:]]
    for url in urls:
        if not _URL.match(url):
            return f'#{name}: "{url}" is not a URL'
    return Command(name, (platform, *urls))


COMMANDS: dict[str, Callable[[str, str], Command | str]] = {
    "assign": _assign,
    "status": _one_of(STATUSES),
    "category": _free_text,
    "role": _free_text,
    "escalate": _escalate,
    "outcome": _outcome,
    "note": _no_arguments,
    "close": _no_arguments,
    "allow": _allow,
    "remove": _address,
    "merge": _reference,
    "withhold": _no_arguments,
}
