"""Parse-only, full-ingest and history-growth measurements (in this process).

- :func:`parse_rate`: ``parse_message`` over the corpus, the floor no
  pipeline can beat; :func:`mailparser_rate` the same with mail-parser's own
  ``parse_from_bytes``, for reference.
- :func:`ingest_rate`: ``ingest_paths`` (what ``mailroom ingest`` runs: store
  raw, then the whole pipeline inline, a batch at a time) over the corpus
  written out as ``.eml`` files, into a fresh database.
- :func:`history_cost`: the same sample of new mail ingested into a database
  seeded with 1,000 and one seeded with 100,000 messages, in alternating
  chunks so that a change in machine load hits both alike.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event

from bench.env import Site
from mailroom.app import App
from mailroom.intake.message import parse_message
from mailroom.pipeline import process_item
from mailroom.runtime.ingest import ingest_paths
from mailroom.store.inbox import store_raw


@dataclass(frozen=True)
class Rate:
    """``count`` messages (``size`` bytes) in ``seconds`` (``cpu``: this process's CPU
    time, user + system; ``statements``: SQL statements sent, when counted)."""

    count: int
    size: int
    seconds: float
    cpu: float = 0.0
    statements: int = 0

    @property
    def cpu_ms(self) -> float:
        """CPU time per message, in milliseconds."""
        return self.cpu / self.count * 1000 if self.count else 0.0

    @property
    def wall_ms(self) -> float:
        """Wall time per message, in milliseconds."""
        return self.seconds / self.count * 1000 if self.count else 0.0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.size / self.seconds / 1e6 if self.seconds else 0.0


def timed_over(corpus: Sequence[bytes], work: Callable[[bytes], object]) -> Rate:
    start, cpu = time.perf_counter(), time.process_time()
    for raw in corpus:
        work(raw)
    return Rate(len(corpus), sum(map(len, corpus)), time.perf_counter() - start,
                time.process_time() - cpu)


def parse_rate(corpus: Sequence[bytes]) -> Rate:
    return timed_over(corpus, parse_message)


def mailparser_rate(corpus: Sequence[bytes]) -> Rate:
    import mailparser

    # mail-parser logs a warning for every part type it does not know.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    return timed_over(corpus, mailparser.parse_from_bytes)


def write_eml_files(corpus: Sequence[bytes], directory: Path) -> Path:
    """The corpus as ``00001.eml`` … in a directory, in arrival order."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, raw in enumerate(corpus):
        (directory / f"{index:05d}.eml").write_bytes(raw)
    return directory


def ingest_rate(site: Site, mail_dir: Path, corpus: Sequence[bytes]) -> tuple[Rate, dict[str, int]]:
    """``mailroom ingest DIR`` inline (``ingest_paths``): the rate (with the SQL
    statements sent, counted by the engines' ``before_cursor_execute`` event: an
    ``executemany`` is one) and its summary."""
    app = site.app()
    sent = [0]

    def count(*_args: object) -> None:
        sent[0] += 1

    engines = {app.engine, app.door_sessions.kw["bind"]}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        summary = ingest_paths(app, [str(mail_dir)])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
        app.close()
    return Rate(len(corpus), sum(map(len, corpus)), seconds, cpu, sent[0]), summary


# --- history growth ---------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Per-message ingest times (seconds), one per sample message, and outcomes."""

    times: tuple[float, ...]
    outcomes: dict[str, int]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)


def ingest_one(app: App, raw: bytes) -> str:
    """What ``ingest_paths`` does for one message: store raw, then the pipeline."""
    stored = store_raw(app.sessions, raw, door="file", door_ref="bench")
    return process_item(app, stored.inbox_id)


def history_cost(
    apps: dict[str, App], sample: Sequence[bytes], *, chunk: int = 20, warm_up: int = 10
) -> dict[str, Costs]:
    """Ingest ``sample`` into every app, chunk by chunk in turn; time each message.

    The order of the apps flips with every chunk, so neither always goes
    first. The first ``warm_up`` messages of each app (caches, prepared
    statements, the SQLite page cache) are ingested but not counted.
    """
    times: dict[str, list[float]] = {name: [] for name in apps}
    outcomes: dict[str, dict[str, int]] = {name: {} for name in apps}
    for number, start in enumerate(range(0, len(sample), chunk)):
        order = list(apps.items())
        for name, app in order if number % 2 == 0 else reversed(order):
            for raw in sample[start : start + chunk]:
                began = time.perf_counter()
                outcome = ingest_one(app, raw)
                times[name].append(time.perf_counter() - began)
                outcomes[name][outcome] = outcomes[name].get(outcome, 0) + 1
    return {name: Costs(tuple(times[name][warm_up:]), outcomes[name]) for name in apps}
