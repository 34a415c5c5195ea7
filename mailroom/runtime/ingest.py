"""``mailroom ingest``: the file door, run inline through the whole pipeline.

Each message goes through the door contract (:mod:`mailroom.doors.contract`)
like any other door's: the file door hands it to the doors' inbox
(:func:`mailroom.runtime.doors.door_inbox`), then the pipeline processes the
row it got back. A store that cannot be reached stops the run with
``StoreUnavailable``: the command line answers with exit status 75 for
``ingest -`` (an MTA pipe), 1 otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from tqdm import tqdm

from mailroom.app import App
from mailroom.doors.contract import Arrival, StoreInbox
from mailroom.doors.files import SourceError, arrivals, count_messages
from mailroom.errors import StoreUnavailable
from mailroom.pipeline import process_batch, process_item
from mailroom.runtime.doors import file_inbox
from mailroom.vocabulary import InboxOutcome, InboxStatus

log = logging.getLogger("mailroom.runtime.ingest")

SUMMARY_KEYS = ("messages", InboxOutcome.CREATED, InboxOutcome.THREADED, InboxOutcome.DUPLICATE,
                "rejected", InboxOutcome.AUTOMATIC, InboxOutcome.BOUNCE, InboxOutcome.LOOP,
                "pending", "unreadable")


BATCH_MESSAGES = 200  # the most messages stored in one transaction
BATCH_BYTES = 8_000_000  # and their bytes: a batch is held in memory, parsed, until written


def ingest_paths(
    app: App, paths: list[str], *, stdin: BinaryIO | None = None, progress: bool = False,
    stdin_envelope: tuple[str | None, tuple[str, ...]] = (None, ()),
    batch_messages: int = BATCH_MESSAGES, batch_bytes: int = BATCH_BYTES,
) -> dict[str, int]:
    """Store and process every message under ``paths``; return the counts.

    ``stdin_envelope`` is the envelope (sender, recipients) of the message on
    stdin, when an MTA's pipe gives it. ``rejected`` counts messages kept as
    ``bad``/``shunt``; ``pending`` those
    stored but not processed because the database went away mid-run (a
    worker picks them up later); ``unreadable`` paths that were not mail.

    Messages go in batches (up to ``batch_messages`` and ``batch_bytes``, a
    message larger than that alone): the batch's bytes are committed in one
    transaction (:meth:`StoreInbox.receive_many`), then processed with
    :func:`mailroom.pipeline.process_batch` (few commits; a savepoint per
    message only when one of a transaction fails). A batch of one message
    (``ingest -``, one file) takes the path of every other door: ``receive``,
    then ``process_item``.
    """
    summary = dict.fromkeys(SUMMARY_KEYS, 0)
    inbox = file_inbox(app.door_sessions)
    bar = _progress_bar(paths, enabled=progress)
    try:
        arriving = _sources(paths, stdin, summary, stdin_envelope)
        for batch in _batches(arriving, batch_messages, batch_bytes):
            summary["messages"] += len(batch)
            if len(batch) == 1:
                stored = inbox.receive(batch[0])
                _count(summary, _process(app, stored.inbox_id, stored.duplicate, batch[0].raw))
            else:
                for outcome in _ingest_batch(app, inbox, batch):
                    _count(summary, outcome)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return summary


def _batches(arrivals: Iterator[Arrival], most: int, most_bytes: int) -> Iterator[list[Arrival]]:
    """The arrivals in lists of at most ``most`` messages and ``most_bytes`` bytes (a
    larger message alone): a message that would take a batch past the limit starts
    the next one."""
    batch: list[Arrival] = []
    size = 0
    for arrival in arrivals:
        if batch and (len(batch) >= most or size + len(arrival.raw) > most_bytes):
            yield batch
            batch, size = [], 0
        batch.append(arrival)
        size += len(arrival.raw)
    if batch:
        yield batch


def _ingest_batch(app: App, inbox: StoreInbox, batch: list[Arrival]) -> list[str]:
    """Store a batch in one transaction, then process its rows; an outcome for each.

    A message found twice in the batch is processed once: its second receipt is
    a duplicate."""
    receipts = inbox.receive_many(batch)
    work: dict[int, bytes] = {}
    for receipt, arrival in zip(receipts, batch, strict=True):
        work.setdefault(receipt.inbox_id, arrival.raw)
    outcomes: dict[int, str] = {}
    try:
        process_batch(app, list(work.items()), outcomes)
    except StoreUnavailable:
        log.warning("database unavailable: %d inbox rows left for the worker",
                    len(work) - len(outcomes))
    counted: set[int] = set()
    found = []
    for receipt in receipts:
        first = receipt.inbox_id not in counted
        counted.add(receipt.inbox_id)
        outcome = outcomes.get(receipt.inbox_id, "pending") if first else InboxOutcome.SKIPPED
        if outcome == InboxOutcome.SKIPPED:  # processed earlier, or twice in the batch
            outcome = InboxOutcome.DUPLICATE if receipt.duplicate or not first else outcome
        found.append(outcome)
    return found


def _sources(
    paths: list[str], stdin: BinaryIO | None, summary: dict[str, int],
    stdin_envelope: tuple[str | None, tuple[str, ...]],
) -> Iterator[Arrival]:
    for path in paths:
        try:
            yield from arrivals([path], stdin, stdin_envelope=stdin_envelope)
        except (SourceError, OSError) as exc:
            summary["unreadable"] += 1
            print(f"mailroom: {exc}", file=sys.stderr)


def _process(app: App, inbox_id: int, duplicate: bool, raw: bytes) -> str:
    try:
        outcome = process_item(app, inbox_id, raw)
    except StoreUnavailable:
        log.warning("database unavailable: inbox %s left for the worker", inbox_id)
        return "pending"
    if outcome == InboxOutcome.SKIPPED:  # already processed earlier: the same message again
        return InboxOutcome.DUPLICATE if duplicate else InboxOutcome.SKIPPED
    return outcome


def _count(summary: dict[str, int], outcome: str) -> None:
    key = "rejected" if outcome in (InboxStatus.BAD, InboxStatus.SHUNT) else outcome
    summary[key] = summary.get(key, 0) + 1


def _progress_bar(paths: list[str], *, enabled: bool) -> Any:
    if not enabled or not sys.stderr.isatty():
        return None
    return tqdm(total=count_messages(paths), unit="msg", file=sys.stderr, leave=False)
