"""Seed a database with N messages of history by bulk inserts (no pipeline).

Ingesting 100,000 messages through the pipeline would take hours, so the
history is written straight into the tables with the shapes the pipeline
leaves behind: per case a ticket, its requester as participant, inbound
messages with distinct Message-IDs and ``References`` chains (and their
``message_refs`` rows), the acknowledgement and one practitioner
notification per inbound message as outgoing messages with their ``outbox``
rows (in their rendered form), one ``inbox`` row per inbound message (its short
raw bytes in ``inbox_raw``), an attachment row for every third case, one audit
event per inbound message.

Thread ``k`` is a pure function of ``k``, so a 1,000-message history is a
prefix of the 100,000-message one and the same sample of new mail can reply
to the same stored cases at both sizes. Rows go in through the driver
(``executemany`` on SQLite, ``COPY`` on PostgreSQL): the ORM would take
longer than the whole benchmark budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from bench.corpus import HELPLINE, HELPLINE_NAME, ThreadTail

SEED_START = datetime(2025, 1, 6, 9, 0)  # naive UTC, whole minutes: see sqlite_date
FLUSH_ROWS = 50_000
SUBJECTS = ("Fake account impersonating our head teacher", "Year 9 group chat - bullying",
            "Video of fight posted online", "Defamatory posts about a member of staff",
            "Concern about an adult contacting pupils", "Photos of pupils on a public account")
DOMAINS = ("school.example.org.uk", "academy.example.sch.uk", "gmail.com", "outlook.com",
           "police.example.uk", "council.example.gov.uk")
# Thread lengths 1-6 with weights 45/25/15/7/5/3, indexed by a byte (0-255).
LENGTHS = tuple(1 if b < 115 else 2 if b < 179 else 3 if b < 218 else 4 if b < 236
                else 5 if b < 249 else 6 for b in range(256))

COLUMNS: dict[str, tuple[str, ...]] = {
    "tickets": ("id", "reference", "status", "subject", "category", "requester",
                "requester_name", "flags", "platforms", "created_at", "updated_at",
                "first_response_at", "sla_due_at", "closed_at"),
    "participants": ("id", "ticket_id", "address", "name", "role", "added_at"),
    "messages": ("id", "ticket_id", "direction", "kind", "sender", "sender_name", "recipients",
                 "message_id", "in_reply_to", "references", "subject", "date", "text", "urls",
                 "flags", "created_at"),
    "message_refs": ("message_pk", "ref"),
    "attachments": ("id", "message_pk", "filename", "content_type", "size", "sha256", "stored",
                    "inline"),
    "inbox": ("id", "received_at", "door", "door_ref", "mail_from", "rcpt_to", "dedup_key",
              "raw_sha256", "size", "status", "outcome", "attempts", "processed_at",
              "message_pk"),
    "inbox_raw": ("inbox_id", "raw"),
    "outbox": ("id", "ticket_id", "kind", "status", "attempts", "send_after", "message_id",
               "mail_from", "rcpt_to", "to_addr", "subject", "rendered", "created_at", "sent_at"),
    "events": ("id", "ticket_id", "message_pk", "at", "actor", "action", "detail"),
}
TABLE_ORDER = tuple(COLUMNS)

DateCodec = Callable[[datetime | None], Any]


def sqlite_date(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite storage format (``2025-01-06 09:00:00.000000``) of a
    naive UTC datetime in whole seconds; ``str`` is much faster than strftime."""
    return f"{value}.000000" if value else None


def postgres_date(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value else None


@dataclass(frozen=True)
class SeedThread:
    """One stored case: what the pipeline would have left of a conversation."""

    index: int
    requester: str
    name: str
    subject: str
    inbound_ids: tuple[str, ...]
    ack_id: str
    created: datetime

    @property
    def ticket_id(self) -> int:
        return self.index + 1

    def tail(self) -> ThreadTail:
        return ThreadTail(ticket_id=self.ticket_id, requester=self.requester,
                          requester_name=self.name, subject=self.subject,
                          last_inbound_id=self.inbound_ids[-1], ack_id=self.ack_id,
                          references=self.inbound_ids[:-1])


def seed_thread(index: int) -> SeedThread:
    """Thread ``index`` of every history (deterministic, from a hash of ``index``)."""
    digest = hashlib.blake2b(index.to_bytes(8, "big"), digest_size=32).hexdigest()
    domain = DOMAINS[int(digest[0:2], 16) % len(DOMAINS)]
    length = LENGTHS[int(digest[2:4], 16)]
    ids = tuple(f"h{index:07d}.{i}.{digest[4 + 6 * i : 16 + 6 * i]}@{domain}"
                for i in range(length))
    return SeedThread(index=index, requester=f"person{index}@{domain}",
                      name=f"Person {index}", subject=SUBJECTS[int(digest[50:52], 16) % 6],
                      inbound_ids=ids, ack_id=f"mailroom.{digest[40:64]}@helpline.example",
                      created=SEED_START + timedelta(minutes=7 * index))


def threads_for(messages: int) -> Iterator[SeedThread]:
    """Seed threads until they hold ``messages`` inbound messages in all."""
    total, index = 0, 0
    while total < messages:
        thread = seed_thread(index)
        yield thread
        total += len(thread.inbound_ids)
        index += 1


@dataclass
class Rows:
    """Row tuples per table (in ``COLUMNS`` order), with id counters."""

    date: DateCodec
    tables: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in TABLE_ORDER})
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLE_ORDER, 0))

    def next_id(self, table: str) -> int:
        self.counters[table] += 1
        return self.counters[table]

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.tables[table].append(row)

    def size(self) -> int:
        return sum(len(rows) for rows in self.tables.values())

    def drain(self) -> dict[str, list[tuple[Any, ...]]]:
        full, self.tables = self.tables, {name: [] for name in TABLE_ORDER}
        return full


def seed_history(engine: Engine, messages: int) -> int:
    """Bulk-insert a history of ``messages`` inbound messages; return the thread count."""
    postgres = engine.dialect.name == "postgresql"
    rows, count = Rows(postgres_date if postgres else sqlite_date), 0
    loader = _copy_rows if postgres else _executemany_rows
    raw = engine.raw_connection()
    try:
        for thread in threads_for(messages):
            add_thread(rows, thread)
            count += 1
            if rows.size() >= FLUSH_ROWS:
                loader(raw.driver_connection, rows.drain())
        loader(raw.driver_connection, rows.drain())
    finally:
        raw.close()
    if postgres:
        _after_postgres_load(engine)
    return count


def _executemany_rows(conn: Any, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    """SQLite (autocommit driver connection): one transaction per flush."""
    conn.execute("BEGIN")
    for name in TABLE_ORDER:
        columns = COLUMNS[name]
        marks = ", ".join("?" for _ in columns)
        names = ", ".join(f'"{c}"' for c in columns)
        conn.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({marks})', tables[name])
    conn.execute("COMMIT")


def _copy_rows(conn: Any, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    """PostgreSQL: ``COPY … FROM STDIN`` per table, one transaction per flush."""
    with conn.transaction(), conn.cursor() as cursor:
        for name in TABLE_ORDER:
            names = ", ".join(f'"{c}"' for c in COLUMNS[name])
            with cursor.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
                for row in tables[name]:
                    copy.write_row(row)


def _after_postgres_load(engine: Engine) -> None:
    """Move the id sequences past the explicit ids, and VACUUM ANALYZE (what
    autovacuum does within a minute of a bulk load anyway: since PostgreSQL 13
    inserts alone start a vacuum, which also marks the pages all-visible, so that
    an index-only scan reads the index alone)."""
    with engine.begin() as conn:
        for name in TABLE_ORDER:
            if name not in ("message_refs", "inbox_raw"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                  f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


# --- one thread's rows ---------------------------------------------------------------


def add_thread(rows: Rows, thread: SeedThread) -> None:
    closed = thread.index % 5 != 0
    rows.add("tickets", _ticket_row(rows.date, thread, closed))
    rows.add("participants", (rows.next_id("participants"), thread.ticket_id, thread.requester,
                              thread.name, "requester", rows.date(thread.created)))
    for position, ident in enumerate(thread.inbound_ids):
        when = thread.created + timedelta(hours=5 * position)
        pk = _inbound(rows, thread, position, ident, when)
        if position == 0:
            _outbound(rows, thread, "acknowledgement", thread.ack_id, when)
        notice = f"mailroom.n{thread.index}x{position}.{ident[9:21]}@helpline.example"
        _outbound(rows, thread, "notification", notice, when)
        rows.add("events", (rows.next_id("events"), thread.ticket_id, pk, rows.date(when),
                            thread.requester, "message.received" if position else
                            "ticket.created", '{"kind": "requester"}'))


def _ticket_row(date: DateCodec, thread: SeedThread, closed: bool) -> tuple[Any, ...]:
    when = thread.created
    return (thread.ticket_id, f"HL-{thread.ticket_id:06d}", "closed" if closed else "open",
            thread.subject, "impersonation", thread.requester, thread.name, "[]", '["tiktok"]',
            date(when), date(when + timedelta(days=2)), date(when + timedelta(hours=3)),
            date(when + timedelta(hours=8)), date(when + timedelta(days=9)) if closed else None)


def _inbound(rows: Rows, thread: SeedThread, position: int, ident: str, when: datetime) -> int:
    refs = thread.inbound_ids[:position]
    url = f"https://www.tiktok.com/@fake{thread.index}"
    body = f"Message {position} about case {thread.ticket_id}: the account is still up at {url}\n"
    pk = rows.next_id("messages")
    subject = f"Re: {thread.subject}" if position else thread.subject
    rows.add("messages", (
        pk, thread.ticket_id, "in", "requester", thread.requester, thread.name,
        f'{{"to": ["{HELPLINE}"], "cc": []}}', ident, refs[-1] if refs else None,
        " ".join(refs) or None, subject, rows.date(when), body * 3, json.dumps([url]), "[]",
        rows.date(when)))
    for ref in refs:
        rows.add("message_refs", (pk, ref))
    if position == 0 and thread.index % 3 == 0:
        rows.add("attachments", (rows.next_id("attachments"), pk, "Screenshot.png", "image/png",
                                 180_000, hashlib.sha256(ident.encode()).hexdigest(), 1, 0))
    _inbox(rows, thread, ident, refs, pk, when, subject, body)
    return pk


def _inbox(rows: Rows, thread: SeedThread, ident: str, refs: tuple[str, ...], pk: int,
           when: datetime, subject: str, body: str) -> None:
    threading = (f"In-Reply-To: <{refs[-1]}>\r\nReferences: "
                 + " ".join(f"<{r}>" for r in refs) + "\r\n") if refs else ""
    raw = (f"From: {thread.name} <{thread.requester}>\r\nTo: {HELPLINE}\r\n"
           f"Subject: {subject}\r\nMessage-ID: <{ident}>\r\n{threading}"
           f"Date: {when:%a, %d %b %Y %H:%M:%S +0000}\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body * 3}").encode()
    inbox_id = rows.next_id("inbox")
    rows.add("inbox", (
        inbox_id, rows.date(when), "smtp", None, thread.requester,
        f'["{HELPLINE}"]', f"mid:{ident}", hashlib.sha256(raw).hexdigest(), len(raw),
        "done", "threaded" if refs else "created", 1, rows.date(when), pk))
    rows.add("inbox_raw", (inbox_id, raw))


def _outbound(rows: Rows, thread: SeedThread, kind: str, ident: str, when: datetime) -> None:
    to = thread.requester if kind == "acknowledgement" else "anna@helpline.example"
    subject = f"Re: [Helpline #{thread.ticket_id}] {thread.subject}"
    body = f"Thank you for contacting the helpline. Your reference is HL-{thread.ticket_id:06d}.\n"
    date = rows.date(when)
    rows.add("messages", (
        rows.next_id("messages"), thread.ticket_id, "out", kind, HELPLINE, HELPLINE_NAME,
        f'{{"to": ["{to}"], "cc": []}}', ident, None, None, subject, date, body * 4, "[]",
        "[]", date))
    rendered = json.dumps({
        "from": [HELPLINE, HELPLINE_NAME], "to": [[to, ""]], "cc": [], "reply_to": None,
        "subject": subject, "text": body * 8, "html": None, "message_id": ident,
        "in_reply_to": None, "references": [], "auto_submitted": "auto-replied",
        "loop_token": "", "extra_headers": {}, "date": when.replace(tzinfo=UTC).isoformat()})
    rows.add("outbox", (
        rows.next_id("outbox"), thread.ticket_id, kind, "sent", 1, date, ident, HELPLINE,
        f'["{to}"]', to, subject, rendered, date, date))
