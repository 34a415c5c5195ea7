"""One inbound message as the pipeline acts on it: what it is, and what was found.

For each message that is not a duplicate the pipeline reads its :class:`Facts`
once (a frozen record: what the message is, and who wrote it, :class:`Speaking`),
then acts on it through an :class:`Incoming`, which keeps beside the facts what
the case made of the message. Only the pipeline writes an Incoming; the case
modules (practitioners' replies, platforms' answers, replies to requesters)
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message as StdMessage

from mailroom.addresses import ReplyToken
from mailroom.intake.classify import Classification
from mailroom.intake.extract import Extracted
from mailroom.mailtypes import ParsedMessage
from mailroom.store.models import InboxItem, Message, Ticket
from mailroom.store.repository import ThreadLinks
from mailroom.vocabulary import Speaker


@dataclass(frozen=True)
class Readings:
    """Step 6 both ways. Whether a message opens a case is known only once it is
    threaded, inside the write transaction; a new case reports the URLs of all
    its text, a follow-up those of its new text only. The quotes are stripped
    once, before the transaction (on a large text that takes seconds)."""

    as_new: Extracted
    as_follow_up: Extracted



@dataclass(frozen=True)
class Speaking:
    """Who wrote a message, as its signed reply address, its sender and the receiving
    server's authentication results say (:func:`mailroom.pipeline.speaking_of`)."""

    speaker: Speaker = Speaker.REQUESTER
    token: ReplyToken | None = None  # the valid signed reply address it was sent to
    refused: str | None = None  # why a practitioner's reply runs nothing (see speaking_of)
    unverified: str | None = None  # why the sender's domain failed authentication
    flags: tuple[str, ...] = ()  # what the message is flagged with for it


@dataclass(frozen=True)
class Facts:
    """What a message is, read once before anything acts on it: the inbox row, the
    message parsed and classified, what the store knew of its ids when it arrived, its
    readings, and who wrote it. Nothing changes it: what the case makes of the message
    is kept beside it (:class:`Incoming`)."""

    item: InboxItem
    parsed: ParsedMessage
    std: StdMessage
    classification: Classification
    speaking: Speaking = Speaking()
    links: ThreadLinks | None = None  # what the store knew of its ids when it arrived
    readings: Readings | None = None  # step 6, worked out before the transaction


@dataclass
class Incoming:
    """One inbound message as the pipeline acts on it: its facts, and what the case made
    of it (the ticket and message stored, the flags, the cases of the same conversation).
    Only the pipeline writes it; the case modules read it."""

    facts: Facts
    flags: list[str] = field(default_factory=list)
    ticket: Ticket | None = None
    message: Message | None = None
    extracted: Extracted | None = None
    created: bool = False
    related: list[Ticket] = field(default_factory=list)  # same conversation, not merged
    listed: set[str] | None = None  # its files on the hash blocklist, once asked

    # The facts, read where the message is acted on.
    @property
    def item(self) -> InboxItem:
        return self.facts.item

    @property
    def parsed(self) -> ParsedMessage:
        return self.facts.parsed

    @property
    def std(self) -> StdMessage:
        return self.facts.std

    @property
    def classification(self) -> Classification:
        return self.facts.classification

    @property
    def links(self) -> ThreadLinks | None:
        return self.facts.links

    @property
    def readings(self) -> Readings | None:
        return self.facts.readings

    @property
    def speaker(self) -> Speaker:
        return self.facts.speaking.speaker

    @property
    def token(self) -> ReplyToken | None:
        return self.facts.speaking.token

    @property
    def refused(self) -> str | None:
        return self.facts.speaking.refused

    @property
    def unverified(self) -> str | None:
        return self.facts.speaking.unverified
