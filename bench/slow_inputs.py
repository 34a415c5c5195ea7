"""The inputs that once took a parser seconds or minutes (``tests/pathological.py``)
and every message of the shared corpora, timed in CPU seconds (pure).

The tests check what each of these inputs gives; how long it takes is measured
here, where a busy machine shows up as a note rather than a failed test.
Each input is run three times and the fastest run counts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from mailroom.errors import MailError
from mailroom.intake.bounces import parse_bounce
from mailroom.intake.message import parse_message
from mailroom.intake.quotes import strip_quotes
from tests.corpus.corpus_files import CORPORA, corpus_messages, relative
from tests.pathological import BOUNCE_BODIES, LONG_REFERENCES, QUOTE_FIXTURES, text_bounce

REPEAT = 3


@dataclass(frozen=True)
class Timed:
    name: str
    seconds: float  # CPU time of the fastest run


def cpu_seconds(work: Callable[[], object], repeat: int = REPEAT) -> float:
    """The CPU time of the fastest of ``repeat`` runs: other processes on the machine
    slow the clock on the wall, not this one."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def pathological() -> list[Timed]:
    """Each input of ``tests/pathological.py`` through the code it once made slow."""
    timed = []
    for name, body in BOUNCE_BODIES.items():
        bounce = text_bounce(body)
        timed.append(Timed(f"parse_bounce, {name}", cpu_seconds(partial(parse_bounce, bounce))))
    timed.append(Timed("parse_message, a 40 kB References token",
                       cpu_seconds(partial(parse_message, LONG_REFERENCES))))
    for path in QUOTE_FIXTURES:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            timed.append(Timed(f"strip_quotes, {path.name}",
                               cpu_seconds(partial(strip_quotes, text))))
    return timed


def corpus_parses() -> list[Timed]:
    """``parse_message`` over every message of the shared corpora (none when absent)."""
    if not CORPORA.is_dir():
        return []
    return [Timed(relative(path), cpu_seconds(partial(_parse, path.read_bytes()), repeat=1))
            for path in corpus_messages()]


def _parse(raw: bytes) -> None:
    with contextlib.suppress(MailError):  # refused as unreadable: an answer too, and timed
        parse_message(raw)
