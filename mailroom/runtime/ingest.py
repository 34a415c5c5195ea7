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
from mailroom.doors.contract import Arrival
from mailroom.doors.files import SourceError, arrivals, count_messages
from mailroom.errors import StoreUnavailable
from mailroom.pipeline import process_item
from mailroom.runtime.doors import door_inbox
from mailroom.vocabulary import InboxOutcome, InboxStatus

log = logging.getLogger("mailroom.runtime.ingest")

SUMMARY_KEYS = ("messages", InboxOutcome.CREATED, InboxOutcome.THREADED, InboxOutcome.DUPLICATE,
                "rejected", InboxOutcome.AUTOMATIC, InboxOutcome.BOUNCE, InboxOutcome.LOOP,
                "pending", "unreadable")


def ingest_paths(
    app: App, paths: list[str], *, stdin: BinaryIO | None = None, progress: bool = False,
    stdin_envelope: tuple[str | None, tuple[str, ...]] = (None, ()),
) -> dict[str, int]:
    """Store and process every message under ``paths``; return the counts.

    ``stdin_envelope`` is the envelope (sender, recipients) of the message on
    stdin, when an MTA's pipe gives it. ``rejected`` counts messages kept as
    ``bad``/``shunt``; ``pending`` those
    stored but not processed because the database went away mid-run (a
    worker picks them up later); ``unreadable`` paths that were not mail.
    """
    summary = dict.fromkeys(SUMMARY_KEYS, 0)
    inbox = door_inbox(app)
    bar = _progress_bar(paths, enabled=progress)
    try:
        for arrival in _sources(paths, stdin, summary, stdin_envelope):
            summary["messages"] += 1
            stored = inbox.receive(arrival)
            _count(summary, _process(app, stored.inbox_id, stored.duplicate, arrival.raw))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary


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
