"""What every subcommand prints, and the exit statuses of the contract (SPEC section 3).

Exit status: 0 success, 1 a handled error (one line on stderr), 2 bad usage,
75 (EX_TEMPFAIL) when ``ingest -`` could not store a message (for MTA pipes),
141 (quietly) when whoever read the output stopped reading (``| head``).
Every listing has ``--json``: one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away, as a shell says


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``data`` as one JSON document or as text for people."""
    if as_json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        output = text(data)
        if output:
            print(output)
