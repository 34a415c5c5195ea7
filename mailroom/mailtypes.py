"""Plain data passed between the pure steps of the pipeline.

Nothing here touches a database, a socket or the settings: these are the
values that ``parse_message`` produces and the later steps read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Attachment:
    """One attachment as found in a message (bytes still in memory)."""

    filename: str  # sanitised: safe to show, never used as a path
    content_type: str  # lower case, e.g. "image/png"
    data: bytes
    inline: bool = False  # Content-Disposition: inline with a Content-ID
    # Hex digests, computed once when the attachment is parsed: the SHA-256 names the
    # blob, the MD5 only matches hash lists exchanged with hotlines (which use it).
    sha256: str = field(init=False, repr=False, compare=False)
    md5: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
        object.__setattr__(self, "md5", hashlib.md5(self.data, usedforsecurity=False).hexdigest())

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class StoredFile:
    """An attachment already in the blob store, to go with an outgoing mail.

    Outgoing mail carries these by reference: the bytes are read from the
    store and attached only when the mail is sent, so queueing a notification
    about a 25 MB screen recording does not hold (and re-encode) it in memory.
    """

    filename: str
    content_type: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Address:
    """A mailbox: ``addr`` lower-cased, ``name`` decoded and free of CR/LF."""

    addr: str
    name: str = ""


@dataclass(frozen=True)
class ParsedMessage:
    """What the pipeline knows about a message after parsing.

    Message-IDs are stored without angle brackets, stripped of white space.
    ``text`` is the whole plain-text body (from HTML when there is no text
    part), before quotes are stripped. ``headers`` maps lower-case names to
    every decoded value of that header, in order.
    """

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None  # From
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None  # timezone-aware (UTC when the header had none)
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: dict[str, list[str]] = field(default_factory=dict)
    content_type: str = "text/plain"  # of the root part, lower case
    defects: tuple[str, ...] = ()  # parser complaints, for the flags column
    text_from_html: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None
