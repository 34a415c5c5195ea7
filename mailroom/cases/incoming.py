"""One inbound message as the pipeline acts on it: what it is, and what was found.

The pipeline builds an :class:`Incoming` for each message that is not a
duplicate and hands it to the case modules (practitioners' replies, platforms'
answers, replies to requesters), which read it and record on it the ticket and
message they stored.
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



@dataclass
class Incoming:
    """One inbound message as it moves through the steps."""

    item: InboxItem
    parsed: ParsedMessage
    std: StdMessage
    classification: Classification
    token: ReplyToken | None = None
    speaker: Speaker = Speaker.REQUESTER
    flags: list[str] = field(default_factory=list)
    ticket: Ticket | None = None
    message: Message | None = None
    extracted: Extracted | None = None
    created: bool = False
    links: ThreadLinks | None = None  # what the store knew of its ids when it arrived
    refused: str | None = None  # why a practitioner's reply runs nothing (see identify_speaker)
    unverified: str | None = None  # why the sender's domain failed authentication
    related: list[Ticket] = field(default_factory=list)  # same conversation, not merged
    readings: Readings | None = None  # step 6, worked out before the transaction
    listed: set[str] | None = None  # its files on the hash blocklist, once asked
