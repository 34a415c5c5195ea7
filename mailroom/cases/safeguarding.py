"""Safeguarding rules (SPEC section 8): what must never be forwarded.

Illegal content (child sexual abuse material, and the images of a sextortion
case) is never forwarded. There are two rules, one per case and one per file:

- **An illegal case** (:func:`is_illegal_case`) is in an illegal category
  (``illegal_images``, ``sextortion``) or flagged ``illegal``: every outgoing
  mail of it goes without attachments and says how many were withheld. A case
  gets there by a practitioner's ``#category``, by the configured keywords in a
  professional's words (:func:`keyword_category`), by ``#withhold``
  (:func:`withhold_case_files`), or because it holds a listed file.
- **A listed file** (:mod:`mailroom.store.hashes`: its SHA-256 or MD5 is on the hash
  blocklist) never leaves, in any case, now or later, and flags the case that
  holds it illegal (:func:`flag_listed_files`), with an audit event. Every file
  of a case judged illegal is listed, with where it came from: the same bytes
  sent later in an unrelated case without a keyword are withheld too, and so
  are they in a case merged into another. Hotlines' lists are imported.

Decisions:

- **Judged, or only holding a listed file.** A case flagged only because it
  holds a listed file (flags ``illegal`` and ``listed-file``) has all its files
  withheld but does not list its *other* files: otherwise one listed file would
  spread the list from case to case through unrelated files they share (a
  school's logo in every signature). A practitioner who judges the whole case
  illegal says so (``#category illegal_images`` or ``#withhold``).
- **Asked again at every step.** Whether a file may leave is decided when a
  mail is queued (:func:`outgoing_attachments`) and again when the outbox sends
  it (:func:`files_held_at_send`): the list, the live case (after merges) and
  the store may all have changed in between.
- **Not stored.** With ``store_illegal_attachments = false`` (the default) the
  bytes of a file withheld as illegal are never written, or are deleted when its
  case becomes illegal later (unless a case that may still forward it holds the
  same bytes). Only its hashes, size and type stay: its name is replaced by
  ``withheld-<hash prefix>.<ext>`` (:func:`withheld_name`), because a name such
  as ``amy_year9.jpg`` can itself identify a child.
- **Keywords** (:func:`matches_keywords`) are phrases matched as whole words,
  case-insensitively: ``*`` ends a word with any ending, a hyphen matches a
  hyphen, white space or nothing, and `` + `` joins phrases that must all occur
  in the message. Sextortion words are tried first: their signposting covers the
  images too. The shipped lists are in :mod:`mailroom.settings`.
- Dangerous file types (executables, scripts) are stored but never forwarded.
"""

from __future__ import annotations

import functools
import mimetypes
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from mailroom.app import Clock
from mailroom.cases.tickets import record_event
from mailroom.mailtypes import StoredFile
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.hashes import (
    CHUNK,
    Listing,
    add_file,
    find_entry,
    import_hashes,
    listed_files,
    listed_rows,
    parse_hash_list,
)
from mailroom.store.models import AttachmentRow, BlockedHash, Message, OutboxItem, Ticket
from mailroom.store.repository import live_ticket
from mailroom.vocabulary import SYSTEM_ACTOR, OutboxStatus

ILLEGAL_CATEGORY = "illegal_images"
SEXTORTION_CATEGORY = "sextortion"
ILLEGAL_CATEGORIES = frozenset({ILLEGAL_CATEGORY, SEXTORTION_CATEGORY})
ILLEGAL_FLAG = "illegal"
LISTED_FILE_FLAG = "listed-file"  # illegal only because it holds a listed file

ILLEGAL_REASON = "the case may involve illegal images, which are never forwarded"
LISTED_REASON = ("a file matches the list of known illegal images, so no file of this case "
                 "is forwarded")
# Why a queued file may not leave when the mail is sent.
HELD_LISTED, HELD_ILLEGAL = "listed", "illegal"

DANGEROUS_EXTENSIONS = frozenset({
    "exe", "com", "scr", "pif", "bat", "cmd", "msi", "msp", "dll", "cpl", "jar", "js", "jse",
    "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "hta", "lnk", "reg", "sh", "bash", "py", "pl",
    "apk", "app", "dmg", "iso", "img", "vhd", "xll", "docm", "xlsm", "pptm", "scf", "inf",
})
DANGEROUS_TYPES = frozenset({
    "application/x-msdownload", "application/x-dosexec", "application/x-executable",
    "application/x-msdos-program", "application/x-sh", "application/x-shellscript",
    "application/javascript", "text/javascript", "application/x-ms-shortcut",
    "application/hta", "application/x-msi", "application/java-archive",
    "application/vnd.android.package-archive",
})
_SUFFIX = re.compile(r"\.[a-z0-9]{1,10}")


# --- what a case and a file are ------------------------------------------------------------


def is_illegal_case(ticket: Ticket) -> bool:
    """No file of this case is forwarded."""
    return ticket.category in ILLEGAL_CATEGORIES or ILLEGAL_FLAG in (ticket.flags or [])


def is_judged_illegal(ticket: Ticket) -> bool:
    """Illegal as a whole (category, keywords, ``#withhold``), not only because it holds
    a listed file: its files are listed."""
    flags = ticket.flags or []
    return ticket.category in ILLEGAL_CATEGORIES or (
        ILLEGAL_FLAG in flags and LISTED_FILE_FLAG not in flags)


def is_dangerous(filename: str, content_type: str) -> bool:
    suffix = PurePosixPath(filename.lower()).suffix.lstrip(".")
    return suffix in DANGEROUS_EXTENSIONS or content_type.lower() in DANGEROUS_TYPES


def withheld_name(sha256: str, content_type: str) -> str:
    """``withheld-3f2a9c1e.jpg``: what a file withheld as illegal is called once its bytes
    are not kept (the sender's name for it could identify a child)."""
    suffix = mimetypes.guess_extension(content_type.lower(), strict=False) or ""
    return f"withheld-{sha256[:8]}{suffix if _SUFFIX.fullmatch(suffix) else ''}"


# --- keywords --------------------------------------------------------------------------------


def matches_keywords(text: str, keywords: Sequence[str]) -> list[str]:
    """The keywords (syntax in the module docstring) that ``text`` matches."""
    lowered = text.lower()
    return [k for k in keywords
            if k.strip() and all(piece in lowered for piece in _keyword_pieces(k.lower()))
            and all(p.search(lowered) for p in _keyword_patterns(k.lower()))]


def keyword_category(text: str, settings: Settings) -> tuple[str, list[str]] | None:
    """``(category, keywords that matched)`` for a professional's words, or None."""
    for category, keywords in ((SEXTORTION_CATEGORY, settings.sextortion_keywords),
                               (ILLEGAL_CATEGORY, settings.illegal_keywords)):
        hits = matches_keywords(text, keywords)
        if hits:
            return category, hits
    return None


@functools.lru_cache(maxsize=4096)
def _keyword_patterns(keyword: str) -> tuple[re.Pattern[str], ...]:
    phrases = [part.split() for part in keyword.split("+") if part.strip()]
    return tuple(re.compile(r"(?<!\w)" + r"[\s\-]+".join(map(_word_pattern, words)) + r"(?!\w)")
                 for words in phrases)


@functools.lru_cache(maxsize=4096)
def _keyword_pieces(keyword: str) -> tuple[str, ...]:
    """For each phrase of the keyword, its longest literal piece: text without one of
    them cannot match, and ``in`` tells so faster than the patterns."""
    found = []
    for part in keyword.split("+"):
        pieces = [piece for word in part.split()
                  for piece in word.removesuffix("*").split("-")]
        found.append(max(pieces, key=len, default=""))
    return tuple(found)


def _word_pattern(word: str) -> str:
    stem, ending = (word[:-1], r"\w*") if word.endswith("*") else (word, "")
    return r"[\s\-]*".join(re.escape(piece) for piece in stem.split("-")) + ending


# --- when a mail is queued ---------------------------------------------------------------------


def outgoing_attachments(
    settings: Settings, blobs: BlobStore, ticket: Ticket, message: Message, *, clock: Clock,
    listed: set[str] | None = None,
) -> tuple[list[StoredFile], int, str | None]:
    """The attachments of ``message`` that may be forwarded, how many were withheld, and why.

    A listed file withholds them all and flags the case (it may have been merged
    with the case that listed it: :func:`flag_listed_files`). The files go by reference:
    :func:`files_held_at_send` is asked again when the mail is sent.

    ``listed``: the SHA-256 of the message's files on the list, when the pipeline
    asked in the same transaction before it stored them (what was listed since
    can only be files of a case that is illegal now, whose files all stay).
    """
    rows = list(message.attachments)
    if not rows:
        return [], 0, None
    session = object_session(message)
    if listed is None:
        listed = listed_rows(session, rows) if session is not None else set()
    if listed and session is not None:
        flag_listed_files(settings, blobs, session, ticket, listed, clock=clock)
    if is_illegal_case(ticket):
        return [], len(rows), illegal_reason(ticket)
    allowed, reasons = [], set()
    for row in rows:
        if is_dangerous(row.filename, row.content_type):
            reasons.add("files that could run programs are never forwarded")
        elif not row.stored or not blobs.exists(row.sha256):
            reasons.add("some files were not kept (only their fingerprints are held)")
        else:
            allowed.append(StoredFile(row.filename, row.content_type, row.sha256, row.size))
    withheld = len(rows) - len(allowed)
    return allowed, withheld, ("; ".join(sorted(reasons)) if withheld else None)


def illegal_reason(ticket: Ticket) -> str:
    """What the practitioners' notification says about the files of an illegal case."""
    return ILLEGAL_REASON if is_judged_illegal(ticket) else LISTED_REASON


# --- when a mail is sent -----------------------------------------------------------------------


def files_held_at_send(
    session: Session, ticket_id: int | None, files: Sequence[StoredFile]
) -> dict[str, str]:
    """At send time, the queued files that may not leave (by SHA-256) and why:
    ``listed`` (on the blocklist) or ``illegal`` (the live case, after any merge, is
    illegal). A file no longer in the store is the sender's to notice."""
    if not files:
        return {}
    listed = listed_files(session, {f.sha256 for f in files})
    ticket = session.get(Ticket, live_ticket(session, ticket_id)) if ticket_id else None
    illegal = ticket is not None and is_illegal_case(ticket)
    return {f.sha256: HELD_LISTED if f.sha256 in listed else HELD_ILLEGAL
            for f in files if f.sha256 in listed or illegal}


# --- flagging, listing, not keeping ------------------------------------------------------------


@dataclass
class Settled:
    """What :func:`settle_case_files` did."""

    files: int = 0  # attachments on the case
    listed: int = 0  # files added to the blocklist (or completed with their other hash)
    dropped: int = 0  # attachments whose bytes were deleted
    other_cases: list[str] = field(default_factory=list)  # references flagged for a listed file


def flag_listed_files(
    settings: Settings, blobs: BlobStore, session: Session, ticket: Ticket,
    sha256s: Collection[str], *, clock: Clock, actor: str = SYSTEM_ACTOR,
    message_pk: int | None = None,
) -> bool:
    """A case holds listed files: flag it illegal (unless it is already), with an audit
    event naming them, and settle its files (:func:`settle_case_files`: the settings
    say whether their bytes are kept, the ``clock`` when each change is recorded).
    True when the case changed."""
    if is_illegal_case(ticket):
        return False
    ticket.flags = [*dict.fromkeys([*(ticket.flags or []), ILLEGAL_FLAG, LISTED_FILE_FLAG])]
    record_event(session, action="ticket.flagged", actor=actor, at=clock(),
                 ticket_id=ticket.id, message_pk=message_pk, flag=ILLEGAL_FLAG,
                 reason="listed-file", files=sorted(sha256s))
    settle_case_files(settings, blobs, session, ticket, clock=clock, actor=actor)
    return True


def settle_case_files(
    settings: Settings, blobs: BlobStore, session: Session, ticket: Ticket, *, clock: Clock,
    actor: str = SYSTEM_ACTOR, source: str = "case", origin: str | None = None,
    note: str | None = None, message_pk: int | None = None,
) -> Settled:
    """Bring an illegal case's stored files in line with the rules: list them when the case
    is judged illegal (and flag the other cases holding them), delete their bytes when the
    settings say not to keep them. Nothing for a case that is not illegal."""
    settled = Settled()
    if not is_illegal_case(ticket):
        return settled
    rows = case_attachments(session, ticket)
    settled.files = len(rows)
    if rows and is_judged_illegal(ticket):
        listing = Listing(source=source, actor=actor, at=clock(), ticket_id=ticket.id,
                          origin=origin or _why_illegal(ticket), note=note)
        settled.listed = list_files(session, rows, listing, message_pk=message_pk)
        settled.other_cases = flag_cases_holding(
            settings, blobs, session, {r.sha256 for r in rows}, {r.md5 for r in rows if r.md5},
            clock=clock, actor=actor, except_ticket=ticket.id)
    if rows and not settings.store_illegal_attachments:
        settled.dropped = drop_bytes(blobs, session, rows)
    return settled


def case_attachments(session: Session, ticket: Ticket) -> list[AttachmentRow]:
    """Every attachment of the case's messages (a merge moves them to the live case)."""
    session.flush()
    return list(session.execute(
        select(AttachmentRow).join(Message, AttachmentRow.message_pk == Message.id)
        .where(Message.ticket_id == ticket.id).order_by(AttachmentRow.id)).scalars())


def list_files(
    session: Session, rows: Sequence[AttachmentRow], listing: Listing, *,
    message_pk: int | None = None,
) -> int:
    """Put these files on the blocklist; how many were not on it (or only by one hash)."""
    changed = []
    for sha256, md5 in dict.fromkeys((row.sha256, row.md5) for row in rows):
        if add_file(session, listing, sha256=sha256, md5=md5) != "listed":
            changed.append(sha256)
    if changed:
        record_event(session, action="hashes.listed", actor=listing.actor, at=listing.at,
                     ticket_id=listing.ticket_id, message_pk=message_pk, source=listing.source,
                     origin=listing.origin, files=changed)
    return len(changed)


def flag_cases_holding(
    settings: Settings, blobs: BlobStore, session: Session, sha256s: Collection[str],
    md5s: Collection[str] = (), *, clock: Clock, actor: str, except_ticket: int | None = None,
) -> list[str]:
    """Flag every live case (but ``except_ticket``) holding one of these files, known by
    SHA-256 or MD5, that is not illegal yet; return their references."""
    holding: dict[int, set[str]] = {}
    for sha256, ticket_id in tickets_holding(session, sha256s, md5s):
        live = live_ticket(session, ticket_id)
        if live != except_ticket:
            holding.setdefault(live, set()).add(sha256)
    flagged = []
    for ticket_id, shas in sorted(holding.items()):
        other = session.get(Ticket, ticket_id)
        if other is not None and flag_listed_files(settings, blobs, session, other, shas,
                                                   clock=clock, actor=actor):
            flagged.append(other.reference or str(other.id))
    return flagged


def tickets_holding(
    session: Session, sha256s: Collection[str], md5s: Collection[str]
) -> list[tuple[str, int]]:
    """``(sha256, ticket id)`` of every attachment on a case that is one of these files."""
    found: list[tuple[str, int]] = []
    for column, values in ((AttachmentRow.sha256, sha256s), (AttachmentRow.md5, md5s)):
        wanted = sorted({v for v in values if v})
        for start in range(0, len(wanted), CHUNK):
            found += [(sha, tid) for sha, tid in session.execute(
                select(AttachmentRow.sha256, Message.ticket_id)
                .join(Message, AttachmentRow.message_pk == Message.id)
                .where(column.in_(wanted[start : start + CHUNK]),
                       Message.ticket_id.is_not(None)).distinct()) if tid is not None]
    return found


def drop_bytes(blobs: BlobStore, session: Session, rows: Sequence[AttachmentRow]) -> int:
    """Keep only the hashes, size and type of these attachments (their names too go);
    a blob goes once no attachment that is still kept refers to it. Returns how many
    attachments lost their bytes."""
    dropped: set[str] = set()
    count = 0
    for row in rows:
        row.filename = withheld_name(row.sha256, row.content_type)
        if row.stored:
            row.stored = False
            dropped.add(row.sha256)
            count += 1
    session.flush()
    for sha in dropped:
        still_used = session.execute(select(AttachmentRow.id).where(
            AttachmentRow.sha256 == sha, AttachmentRow.stored.is_(True)).limit(1)).first()
        if still_used is None:
            blobs.delete(sha)
    return count


def keep_only_hashes(
    settings: Settings, blobs: BlobStore, session: Session, ticket: Ticket, *, clock: Clock,
    actor: str = SYSTEM_ACTOR,
) -> int:
    """After a practitioner (``actor``) set the case's category: list its files when the
    category is an illegal one, and delete their bytes when the settings refuse to keep
    them (the hashes stay). Returns how many attachments lost their bytes."""
    return settle_case_files(settings, blobs, session, ticket, clock=clock, actor=actor).dropped


def _why_illegal(ticket: Ticket) -> str:
    if ticket.category in ILLEGAL_CATEGORIES:
        return f"case in category {ticket.category}"
    return "case flagged illegal"


# --- by hand -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Withheld:
    """What :func:`withhold_case_files` did, for the answer to the practitioner."""

    reference: str
    files: int  # attachments on the case
    listed: int  # of them newly on the blocklist
    dropped: int  # whose bytes were deleted (store_illegal_attachments = false)
    queued_mail: int  # mail still queued with files, which will now go without them
    other_cases: tuple[str, ...]  # other cases flagged because they hold the same files


def withhold_case_files(
    settings: Settings, blobs: BlobStore, session: Session, ticket: Ticket, *, clock: Clock,
    actor: str, message_pk: int | None = None, note: str | None = None, decided_mail: int = 0,
) -> Withheld:
    """Withhold every file of a case by hand, from now on and retroactively (``#withhold``).

    ``ticket`` may be one merged into another: the live case is the one withheld.
    The case is flagged ``illegal`` (judged by a person, so a ``listed-file`` flag
    goes), every file it holds is listed with source ``command`` (with ``note``),
    other cases holding the same files are flagged, the bytes are deleted unless
    ``store_illegal_attachments`` keeps them, and mail already queued goes without
    its files (the outbox asks again when it sends). Writes a ``files.withheld``
    event by ``actor`` (from ``message_pk``, the command's message, when given),
    in the caller's transaction; calling it twice changes nothing more.
    ``decided_mail``: mail with files the same reply decided, queued after this (an
    escalation's), which goes without them too and is counted with the queued.
    """
    ticket = session.get(Ticket, live_ticket(session, ticket.id)) or ticket
    flags = [f for f in ticket.flags or [] if f != LISTED_FILE_FLAG]
    ticket.flags = flags if ILLEGAL_FLAG in flags else [*flags, ILLEGAL_FLAG]
    ticket.updated_at = clock()
    settled = settle_case_files(settings, blobs, session, ticket, clock=clock, actor=actor,
                                source="command", origin="#withhold", note=note,
                                message_pk=message_pk)
    queued = _queued_with_files(session, ticket) + decided_mail
    record_event(session, action="files.withheld", actor=actor, at=clock(),
                 ticket_id=ticket.id, message_pk=message_pk, files=settled.files,
                 listed=settled.listed, dropped=settled.dropped, queued_mail=queued,
                 other_cases=settled.other_cases, note=note)
    return Withheld(reference=ticket.reference or str(ticket.id), files=settled.files,
                    listed=settled.listed, dropped=settled.dropped, queued_mail=queued,
                    other_cases=tuple(settled.other_cases))


def _queued_with_files(session: Session, ticket: Ticket) -> int:
    files = session.execute(select(OutboxItem.files).where(
        OutboxItem.ticket_id == ticket.id,
        OutboxItem.status.in_((OutboxStatus.QUEUED, OutboxStatus.SENDING)))).scalars()
    return sum(1 for f in files if f)


# --- the list, by an admin -------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What ``mailroom hashes import`` did."""

    added: int
    already_listed: int
    rejected: tuple[tuple[int, str], ...]  # (line number, why)
    header: str | None
    cases_flagged: tuple[str, ...]  # cases holding a newly listed file


def import_hash_list(
    settings: Settings, blobs: BlobStore, session: Session, lines: Iterable[str], *,
    clock: Clock, origin: str, actor: str, note: str | None = None,
) -> ImportReport:
    """Add a hash list (CSV, :func:`mailroom.store.hashes.parse_hash_list`) to the blocklist, flag
    the cases that already hold one of its files, and record a ``hashes.imported`` event."""
    parsed = parse_hash_list(lines)
    listing = Listing(source="import", actor=actor, at=clock(), origin=origin, note=note)
    result = import_hashes(session, parsed.hashes, listing)
    flagged = flag_cases_holding(settings, blobs, session, result.new_sha256, result.new_md5,
                                 clock=clock, actor=actor)
    record_event(session, action="hashes.imported", actor=actor, at=listing.at, origin=origin,
                 added=result.added, already_listed=result.listed,
                 rejected=[line for line, _ in parsed.rejected], cases_flagged=flagged)
    return ImportReport(added=result.added, already_listed=result.listed,
                        rejected=tuple(parsed.rejected), header=parsed.header,
                        cases_flagged=tuple(flagged))


def remove_listed_hash(
    session: Session, value: str, *, actor: str, now: datetime, reason: str | None = None
) -> BlockedHash | None:
    """Take a file off the blocklist (an admin's correction), recording a ``hashes.removed``
    event on the case it came from; None when it is not listed. Cases already flagged
    stay flagged and bytes already deleted stay deleted: only future mail changes."""
    entry = find_entry(session, value)
    if entry is None:
        return None
    session.delete(entry)
    session.flush()
    record_event(session, action="hashes.removed", actor=actor, at=now,
                 ticket_id=entry.ticket_id, sha256=entry.sha256, md5=entry.md5,
                 source=entry.source, origin=entry.origin, added_by=entry.added_by,
                 added_at=entry.added_at.isoformat(), reason=reason)
    return entry


# --- when staff open a file in the console ---------------------------------------------------


def download_refusal(blobs: BlobStore, session: Session, ticket: Ticket,
                     row: AttachmentRow) -> str | None:
    """Why a member of staff may not download this file, or None when they may.

    Never a file that is withheld: of a case judged illegal or holding a listed file,
    listed itself, not kept (hash only), or one that could run programs."""
    if is_illegal_case(ticket):
        return "the files of this case are withheld"
    if listed_rows(session, [row]):
        return "this file is on the hash blocklist"
    if not row.stored or not blobs.exists(row.sha256):
        return "only the fingerprint of this file is kept"
    if is_dangerous(row.filename, row.content_type):
        return "files that could run programs are not offered"
    return None
