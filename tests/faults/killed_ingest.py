"""A child process: ``mailroom ingest`` of a folder in batches of ``BATCH`` messages,
killed by SIGKILL once the pipeline has handled its ``KILL_AT``-th message (counted
from 1): in the middle of a batch's write transaction, that message's writes made and
not committed.

``python -m tests.faults.killed_ingest CONFIG FOLDER BATCH KILL_AT``
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from mailroom import pipeline
from mailroom.runtime.ingest import ingest_paths
from mailroom.runtime.wiring import build_app
from mailroom.settings import load_settings


def main(config: str, folder: str, batch: int, kill_at: int) -> None:
    reached = 0
    handle = pipeline.handle

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal reached
        reached += 1
        result = handle(*args, **kwargs)
        if reached == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    pipeline.handle = counting
    app = build_app(load_settings(config))
    ingest_paths(app, [folder], batch_messages=batch)
    sys.exit("ingest finished before the kill")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
