"""Every message of the shared corpora through the whole inbound pipeline.

Each file goes through step 1 (``store_raw``, as every door calls it) and
steps 2–7 (``process_item``, as the worker and ``mailroom ingest`` call it), on
SQLite and on PostgreSQL. Expected, whatever the file holds:

* every message is stored exactly once: files that are the same message (the
  same message copied into several upstream fixtures, lkml's two copies of
  each message) are one message, and every other file has an inbox row of its
  own, holding its exact bytes, even when it shares its Message-ID with
  another (notmuch's ``duplicate`` set: one id, different content);
* nothing is shunted (an internal error is a bug; the known ones are listed in
  :data:`KNOWN_SHUNTS`, empty now; files that once shunted keep a test in
  :data:`FIXED_SHUNTS`); an unparseable message ends ``bad`` with its bytes kept;
* real bounces never open a ticket, nor do the auto-replies and list mail;
* ingesting everything a second time creates nothing.

Which message a file is, is worked out here with the standard library only
(the Message-ID and the content without trace fields, else the bytes), not
with mailroom's own de-duplication key.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.doors.files import iter_sources
from mailroom.pipeline import process_item
from mailroom.store.inbox import store_raw
from mailroom.store.models import InboxItem, Message, OutboxItem, Ticket
from tests.corpus.corpus_files import (
    CORPORA,
    FLUFL,
    LKML,
    PERL,
    corpus_messages,
    identity,
    messages_under,
    needs_corpora,
    relative,
)
from tests.factories import deliver, inbox_rows

pytestmark = needs_corpora

MESSAGES = corpus_messages()
FINAL_OUTCOMES = frozenset({"created", "threaded", "duplicate", "bounce", "automatic", "loop"})

# Internal errors the corpora reveal, to be fixed in the code (not here): file → cause.
# stack-overflow.txt: its To header holds ~2,700 encoded words full of ':';
#   classify._to_bounce_address passes it to email.utils.getaddresses, whose parser
#   recurses once per ':' group (mailroom.intake.message._addresses already guards this).
# utf8_headers.eml: the requester's address is RFC 6532 (jdöe@mächine.example);
#   compose_message refuses it (needs SMTPUTF8) while queueing the acknowledgement,
#   inside the inbound transaction, so the whole message is shunted: no ticket.
KNOWN_SHUNTS: dict[str, str] = {}  # path -> reason; every one is a bug to fix

# Files that once shunted; each keeps a test so the bug stays fixed.
FIXED_SHUNTS: dict[str, str] = {
    "jstedfast-MimeKit/UnitTests/TestData/messages/stack-overflow.txt":
        "RecursionError in getaddresses() from classify._to_bounce_address",
    "mikel-mail/spec/fixtures/emails/rfc6532/utf8_headers.eml":
        "ValueError composing the acknowledgement to a non-ASCII address",
}


def _perl_tables() -> tuple[frozenset[str], frozenset[str]]:
    """The auto-reply and plain-mail (spam) files of the Perl corpus, as the
    classification tests read them from its ``t/*.t``; the rest are bounces."""
    from tests.corpus.test_bounce_corpora import PERL_AUTOMATIC, PERL_PLAIN_MAIL

    return PERL_AUTOMATIC, PERL_PLAIN_MAIL


@dataclass(frozen=True)
class Ingested:
    """What happened to one file."""

    path: Path
    identity: str
    inbox_id: int
    duplicate: bool  # store_raw found the message already in the inbox
    outcome: str  # process_item's answer


def ingest(app: App, paths: list[Path]) -> list[Ingested]:
    """Store and process each file as one message, in order."""
    results = []
    for path in paths:
        raw = path.read_bytes()
        stored = store_raw(app.sessions, raw, door="file", door_ref=relative(path)[:255])
        outcome = process_item(app, stored.inbox_id)
        results.append(Ingested(path, identity(raw), stored.inbox_id, stored.duplicate, outcome))
    return results


def table_counts(app: App) -> dict[str, int]:
    with app.sessions() as session:
        count = select(func.count())
        return {
            model.__tablename__: session.execute(count.select_from(model)).scalar_one()
            for model in (InboxItem, Ticket, Message, OutboxItem)
        }


def first_of_each_message(results: list[Ingested]) -> dict[str, Ingested]:
    """Identity → the first file that carried it."""
    first: dict[str, Ingested] = {}
    for result in results:
        first.setdefault(result.identity, result)
    return first


def test_the_selection_finds_the_corpora() -> None:
    assert len(MESSAGES) > 800


@pytest.mark.slow  # ~15 s on SQLite, ~20 s on PostgreSQL; kept in the default run
def test_whole_corpus_through_the_pipeline(app: App) -> None:
    results = ingest(app, MESSAGES)
    rows = {row.id: row for row in inbox_rows(app)}
    first = first_of_each_message(results)
    print(f"{len(MESSAGES)} files, {len(first)} messages, {len(rows)} inbox rows;"
          f" outcomes {dict(Counter(r.outcome for r in results))}")

    # Stored exactly once: one inbox row per message, and the same row for every copy.
    rows_of: dict[str, set[int]] = defaultdict(set)
    for result in results:
        rows_of[result.identity].add(result.inbox_id)
    split = {ident: ids for ident, ids in rows_of.items() if len(ids) != 1}
    assert not split, f"one message, several inbox rows: {split}"
    assert len({next(iter(ids)) for ids in rows_of.values()}) == len(rows_of), \
        "different messages share an inbox row"
    assert len(rows) == len(first)
    for result in first.values():
        row = rows[result.inbox_id]
        assert not result.duplicate, relative(result.path)
        assert row.raw == result.path.read_bytes(), f"{relative(result.path)}: bytes changed"
    copies = [r for r in results if first[r.identity] is not r]
    assert all(r.duplicate and r.outcome == "skipped" for r in copies), \
        [(relative(r.path), r.outcome) for r in copies if not r.duplicate]

    # Nothing shunted but the known bugs; bad ones keep their error and bytes.
    by_path = {relative(r.path): r for r in first.values()}
    shunted = {path: rows[r.inbox_id].error for path, r in by_path.items()
               if rows[r.inbox_id].status == "shunt"}
    unexpected = {path: error for path, error in shunted.items() if path not in KNOWN_SHUNTS}
    assert not unexpected, "internal errors:\n" + "\n\n".join(
        f"{path}\n{error}" for path, error in unexpected.items())
    for path, result in by_path.items():
        row = rows[result.inbox_id]
        assert row.status in ("done", "bad", "shunt"), (path, row.status)
        if row.status == "done":
            assert row.outcome in FINAL_OUTCOMES and row.outcome == result.outcome, path
        else:
            assert row.error and result.outcome == row.status, path
    print(f"bad: {sum(rows[r.inbox_id].status == 'bad' for r in first.values())};"
          f" shunted (known): {sorted(shunted)}")

    check_automatic_mail_opens_no_ticket(results)

    # The whole corpus again: all duplicates, nothing new anywhere.
    before = table_counts(app)
    again = ingest(app, MESSAGES)
    assert all(r.duplicate and r.outcome == "skipped" for r in again)
    assert [r.inbox_id for r in again] == [r.inbox_id for r in results]
    assert table_counts(app) == before


def check_automatic_mail_opens_no_ticket(results: list[Ingested]) -> None:
    """Bounces, auto-replies and mailing-list mail never open a ticket."""
    perl_automatic, perl_plain = _perl_tables()
    first = first_of_each_message(results)
    outcome = {r.path: first[r.identity].outcome for r in results}
    bounces = messages_under(FLUFL) + [
        p for p in messages_under(PERL) if p.name not in perl_automatic | perl_plain
    ]
    auto_replies = [PERL / name for name in sorted(perl_automatic)]
    lists = messages_under(LKML)
    for name, paths, allowed in (
        ("real bounces handled as bounces", bounces, {"bounce"}),
        ("perl auto-replies opening no ticket", auto_replies, {"automatic", "bounce"}),
        ("lkml list mail handled as automatic", lists, {"automatic"}),
    ):
        misses = [f"{relative(p)}: {outcome[p]}" for p in paths if outcome[p] not in allowed]
        print(f"{name}: {len(paths) - len(misses)}/{len(paths)}; misses {misses}")
        assert len(paths) > 0 and not misses, name
    assert len(bounces) == 219  # flufl.bounce 103 + Perl 116


@pytest.mark.parametrize(
    "path",
    [pytest.param(path, id=path) for path in FIXED_SHUNTS],
)
def test_once_shunted_messages_now_process(app: App, path: str) -> None:
    """Each message that once hit an internal error is processed now."""
    assert deliver(app, (CORPORA / path).read_bytes()) not in ("shunt", "bad")


MBOX_LOOKALIKE = "notmuch/test/corpora/insert/mbox-attachment.eml"


# This .eml (one message, as notmuch's insert test feeds it) starts with an mbox 'From '
# line and carries a git patch whose own 'From <sha> Mon Sep 17 00:00:00 2001' line once
# made the file door split it in two: the first cut short, the second a phantom mail.
def test_file_door_keeps_a_single_message_with_an_attached_patch_whole() -> None:
    path = CORPORA / MBOX_LOOKALIKE
    if not path.is_file():
        pytest.skip(f"{MBOX_LOOKALIKE} is not in this copy of the corpora")
    found = list(iter_sources([str(path)]))
    assert len(found) == 1
    raw = path.read_bytes()
    assert found[0][1] == raw[raw.index(b"\n") + 1:]  # only the mbox 'From ' line goes
