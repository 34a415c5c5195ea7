"""The hash blocklist: files that never leave, whatever case they turn up in.

A row of ``hash_blocklist`` (:class:`~mailroom.store.models.BlockedHash`) names a
file by its SHA-256, its MD5 or both. SHA-256 is what mailroom itself uses; MD5
is kept only because hotlines and police still exchange hash lists in it, so an
imported MD5 must match a file we hold: each attachment records its MD5 when it
is parsed. A file is *listed* when its SHA-256 or its MD5 is on the list.

This module is the store (queries and writes through a session) and the parsing
of an imported list (pure); what a listed file means for a case and its mail is
decided in :mod:`mailroom.cases.safeguarding`.

Decisions:

- **One row per file.** A case's file is listed with both hashes; an imported
  hash with one. When a file of a case matches an entry by one hash and the
  other is unknown, the entry is completed, so the list stays one row per file.
- **Races.** Two workers listing the same file at once: the unique columns
  refuse the second row, inside a savepoint, and it counts as already listed.
- **An import file** is CSV: the first column a hex SHA-256 (64 digits) or MD5
  (32), told apart by length, any case; an optional second column a note; a
  first line whose first cell is not hexadecimal is a header; blank lines and
  lines starting with ``#`` are skipped. Every other line that is not a hash is
  rejected with its line number, and the rest are imported.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailroom.store.models import AttachmentRow, BlockedHash, Ticket

SOURCES = ("case", "import", "command")
HASH_LENGTHS = {64: "sha256", 32: "md5"}
CHUNK = 500
NOTE_LIMIT = 2000
_HEX = re.compile(r"[0-9a-f]+")


def hash_kind(value: str) -> str | None:
    """``"sha256"`` or ``"md5"`` for a hex digest of that length (any case), else None."""
    text = value.strip().lower()
    return HASH_LENGTHS.get(len(text)) if _HEX.fullmatch(text) else None


# --- asking ------------------------------------------------------------------------------


def listed_hashes(
    session: Session, sha256s: Collection[str], md5s: Collection[str] = ()
) -> set[str]:
    """Which of these SHA-256 and MD5 digests are on the list."""
    shas, md5 = sorted({v for v in sha256s if v}), sorted({v for v in md5s if v})
    found = _answered_ahead(session, shas, md5)
    if found is not None:
        return found
    found = set()
    if len(shas) <= CHUNK and len(md5) <= CHUNK:  # the usual case: one statement, built once
        if shas or md5:
            session.flush()  # what the session changed on the list, then Core
            rows = session.connection().execute(_LISTED, {"shas": shas, "md5s": md5})
            asked = ({*shas}, {*md5})
            for sha, digest in rows:
                found.update(h for h, among in zip((sha, digest), asked, strict=True)
                             if h and h in among)
        return found
    for column, values in ((BlockedHash.sha256, shas), (BlockedHash.md5, md5)):
        for chunk in _chunks(values):
            found.update(h for h in session.execute(
                select(column).where(column.in_(chunk))).scalars() if h)
    return found


_LISTED = select(BlockedHash.sha256, BlockedHash.md5).where(or_(
    BlockedHash.sha256.in_(bindparam("shas", expanding=True)),
    BlockedHash.md5.in_(bindparam("md5s", expanding=True))))


_AHEAD = "mailroom.blocklist_asked_ahead"


def ask_ahead(session: Session, sha256s: Collection[str], md5s: Collection[str]) -> None:
    """Ask the list once about the digests that the next messages of this transaction
    will ask about (the files of a batch of mail): :func:`listed_hashes` answers
    from it for those digests until the transaction ends or lists a file here
    (:func:`add_file`, :func:`import_hashes`)."""
    asked = {v for v in (*sha256s, *md5s) if v}
    if asked:
        hits = listed_hashes(session, sha256s, md5s)
        session.info[_AHEAD] = (session.get_transaction(), asked, hits)


def _answered_ahead(session: Session, shas: Collection[str], md5s: Collection[str]
                    ) -> set[str] | None:
    ahead = session.info.get(_AHEAD)
    if ahead is None:
        return None
    transaction, asked, hits = ahead
    if transaction is not session.get_transaction() or not asked.issuperset((*shas, *md5s)):
        return None
    return {h for h in (*shas, *md5s) if h in hits}


def _listing_changes(session: Session) -> None:
    """What was asked ahead no longer holds."""
    session.info.pop(_AHEAD, None)


def listed_files(session: Session, sha256s: Collection[str]) -> set[str]:
    """Of these stored files (named by SHA-256), those on the list by their SHA-256 or
    by the MD5 recorded for them: what the outbox asks when it sends."""
    found = listed_hashes(session, sha256s)
    for chunk in _chunks(sorted(set(sha256s) - found)):
        found.update(session.execute(
            select(AttachmentRow.sha256).join(BlockedHash, BlockedHash.md5 == AttachmentRow.md5)
            .where(AttachmentRow.sha256.in_(chunk)).distinct()).scalars())
    return found


def listed_rows(session: Session, rows: Iterable[AttachmentRow]) -> set[str]:
    """The SHA-256 of each of these attachments whose SHA-256 or MD5 is listed."""
    rows = list(rows)
    if not rows:
        return set()
    hits = listed_hashes(session, [r.sha256 for r in rows], [r.md5 for r in rows if r.md5])
    return {r.sha256 for r in rows if r.sha256 in hits or (r.md5 and r.md5 in hits)}


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


# --- listing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """Where a listed hash came from: ``source`` (case, import, command), who and when."""

    source: str
    actor: str
    at: datetime
    ticket_id: int | None = None
    origin: str | None = None  # the file imported, the command, why the case was judged illegal
    note: str | None = None


def add_file(session: Session, listing: Listing, *, sha256: str | None,
             md5: str | None = None) -> str:
    """List one file; ``added``, ``completed`` (an entry of its other hash now holds
    both) or ``listed`` (it already was)."""
    if listing.source not in SOURCES:
        raise ValueError(f"unknown blocklist source {listing.source!r}")
    _listing_changes(session)
    matches = [c == v for c, v in ((BlockedHash.sha256, sha256), (BlockedHash.md5, md5)) if v]
    if not matches:
        raise ValueError("a listed file needs a SHA-256 or an MD5")
    existing = list(session.execute(select(BlockedHash).where(or_(*matches))).scalars())
    if len(existing) == 1:
        return _complete(existing[0], sha256, md5)
    if existing:
        return "listed"
    try:
        with session.begin_nested():
            session.add(_row(listing, sha256, md5))
    except IntegrityError:  # another worker listed it meanwhile
        return "listed"
    return "added"


def _complete(entry: BlockedHash, sha256: str | None, md5: str | None) -> str:
    if (sha256 and entry.sha256 is None) or (md5 and entry.md5 is None):
        entry.sha256, entry.md5 = entry.sha256 or sha256, entry.md5 or md5
        return "completed"
    return "listed"


def _row(listing: Listing, sha256: str | None, md5: str | None) -> BlockedHash:
    return BlockedHash(sha256=sha256, md5=md5, source=listing.source, ticket_id=listing.ticket_id,
                       origin=(listing.origin or None) and listing.origin[:512],
                       note=(listing.note or None) and listing.note[:NOTE_LIMIT],
                       added_at=listing.at, added_by=listing.actor[:320])


# --- importing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HashLine:
    """One line of an imported list that holds a hash."""

    line: int
    kind: str  # sha256, md5
    value: str  # lower-case hex
    note: str | None


@dataclass
class ParsedList:
    """What :func:`parse_hash_list` made of a file."""

    hashes: list[HashLine] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    header: str | None = None


def parse_hash_list(lines: Iterable[str]) -> ParsedList:
    """Read a CSV hash list (see the module docstring); pure, nothing is refused silently."""
    parsed = ParsedList()
    first = True
    for number, cells in enumerate(csv.reader(lines), 1):
        value = cells[0].strip() if cells else ""
        if not value or value.startswith("#"):
            continue
        kind = hash_kind(value)
        if first and kind is None and not _HEX.fullmatch(value.lower()):
            parsed.header = value
        elif kind is None:
            parsed.rejected.append((number, _why_not(value)))
        else:
            note = cells[1].strip() if len(cells) > 1 and cells[1].strip() else None
            parsed.hashes.append(HashLine(number, kind, value.lower(), note))
        first = False
    return parsed


def _why_not(value: str) -> str:
    if not _HEX.fullmatch(value.lower()):
        return "not a hexadecimal hash"
    return f"{len(value)} hex digits: a SHA-256 has 64, an MD5 32"


@dataclass
class ImportResult:
    """Counts of an import, and the hashes it added (for the retroactive check)."""

    added: int = 0
    listed: int = 0  # already on the list (or twice in the file)
    new_sha256: set[str] = field(default_factory=set)
    new_md5: set[str] = field(default_factory=set)


def import_hashes(session: Session, hashes: Sequence[HashLine], listing: Listing) -> ImportResult:
    """Add the hashes not yet listed, a batch at a time (one INSERT per batch)."""
    result = ImportResult()
    seen: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        batch = hashes[start : start + CHUNK]
        known = listed_hashes(session, [h.value for h in batch if h.kind == "sha256"],
                              [h.value for h in batch if h.kind == "md5"])
        fresh = [h for h in batch if h.value not in known and h.value not in seen]
        seen.update(h.value for h in batch)
        result.listed += len(batch) - len(fresh)
        _insert_batch(session, fresh, listing, result)
    return result


def _insert_batch(
    session: Session, fresh: Sequence[HashLine], listing: Listing, result: ImportResult
) -> None:
    if not fresh:
        return
    _listing_changes(session)
    rows = [{"sha256": h.value if h.kind == "sha256" else None,
             "md5": h.value if h.kind == "md5" else None, "source": listing.source,
             "ticket_id": None, "origin": (listing.origin or "")[:512] or None,
             "note": (h.note or listing.note or "")[:NOTE_LIMIT] or None,
             "added_at": listing.at, "added_by": listing.actor[:320]} for h in fresh]
    try:
        with session.begin_nested():
            session.connection().execute(_INSERT, rows)
    except IntegrityError:  # listed meanwhile by a worker: one at a time instead
        for h in fresh:
            sha, md5 = (h.value, None) if h.kind == "sha256" else (None, h.value)
            outcome = add_file(session, replace(listing, note=h.note or listing.note),
                               sha256=sha, md5=md5)
            if outcome == "added":
                _count_added(result, h)
            else:
                result.listed += 1
        return
    for h in fresh:
        _count_added(result, h)


def _count_added(result: ImportResult, line: HashLine) -> None:
    result.added += 1
    (result.new_sha256 if line.kind == "sha256" else result.new_md5).add(line.value)


_INSERT = insert(cast(Table, BlockedHash.__table__))


# --- reading and correcting --------------------------------------------------------------


def find_entry(session: Session, value: str) -> BlockedHash | None:
    """The entry listing this SHA-256 or MD5 (hex, any case), or None."""
    kind = hash_kind(value)
    if kind is None:
        return None
    column = BlockedHash.sha256 if kind == "sha256" else BlockedHash.md5
    return session.execute(select(BlockedHash).where(column == value.strip().lower())).scalar()


def list_entries(session: Session, source: str | None = None) -> list[dict[str, Any]]:
    """Every entry, oldest first, with the reference of the case it came from."""
    stmt = (select(BlockedHash, Ticket.reference)
            .outerjoin(Ticket, Ticket.id == BlockedHash.ticket_id).order_by(BlockedHash.id))
    if source:
        stmt = stmt.where(BlockedHash.source == source)
    return [entry_view(entry, reference) for entry, reference in session.execute(stmt)]


def entry_view(entry: BlockedHash, reference: str | None = None) -> dict[str, Any]:
    return {"sha256": entry.sha256, "md5": entry.md5, "source": entry.source,
            "case": reference, "origin": entry.origin, "note": entry.note,
            "added_at": entry.added_at.isoformat(), "added_by": entry.added_by}
