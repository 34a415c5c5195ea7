"""SIGKILL in the middle of a batch's write transaction (``mailroom ingest`` of a
folder), on SQLite and PostgreSQL: the batches before it are whole, the batch it hit
is stored and untouched (every row ``new``, nothing of it written), and the next run
finishes with every letter stored once and every answer queued once."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from sqlalchemy import select

from mailroom.store.models import InboxItem
from tests.factories import build_settings
from tests.faults.harness import (
    SEED,
    Child,
    Tally,
    mailroom,
    make_workload,
    problems_with,
    write_files,
)
from tests.faults.test_kill import consistency_problems

LETTERS, BATCH, KILL_AT = 90, 25, 60  # the kill comes in batch 3


def test_ingest_killed_mid_batch_loses_and_repeats_nothing(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    workload = make_workload(LETTERS, rng, tag="batch", copies=0.1)
    folder = write_files(workload, tmp_path / "mail", rng)
    config = tmp_path / "mailroom.toml"
    build_settings(tmp_path, db_url)
    logs, tally = tmp_path / "logs", Tally(db_url)
    try:
        killed = Child("killed", [sys.executable, "-m", "tests.faults.killed_ingest",
                                  str(config), str(folder), str(BATCH), str(KILL_AT)],
                       logs=logs, env={"MAILROOM_LOG_LEVEL": "WARNING"})
        assert killed.wait(timeout=240) == -9, killed.stderr()
        assert consistency_problems(tally) == []
        statuses = [s for (s,) in tally.rows(select(InboxItem.status).order_by(InboxItem.id))]
        # three batches stored (the third before any of it was processed), two processed
        assert len(statuses) == 3 * BATCH - _copies_within(folder, 3 * BATCH), statuses
        first_two = 2 * BATCH - _copies_within(folder, 2 * BATCH)
        assert statuses == ["done"] * first_two + ["new"] * (len(statuses) - first_two)
        again = mailroom(config, "ingest", "--no-progress", str(folder), logs=logs)
        assert again.wait(timeout=240) == 0, again.stderr()
        assert problems_with(tally, workload) == []
    finally:
        tally.close()


def _copies_within(folder: Path, count: int) -> int:
    """How many of the first ``count`` files repeat a message before them in the folder."""
    seen: set[bytes] = set()
    repeats = 0
    for path in sorted(folder.iterdir())[:count]:
        raw = path.read_bytes()
        key = raw.split(b"Message-ID:", 1)[1].split(b"\n", 1)[0]
        repeats += key in seen
        seen.add(key)
    return repeats
