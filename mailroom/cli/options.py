"""Options every subcommand shares: the global ones, enumerated values, limits.

Every enumerated option is checked while the command line is parsed: a value
that is not one of the words it takes is bad usage (exit status 2), and the
message lists the words it takes. A listing that stops at its ``--limit`` says
so on stderr (:func:`say_truncated`), so that a user never mistakes the first
1,000 rows for all of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable

DEFAULT_LIMIT = 1000


def words(choices: Iterable[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """An argparse ``type`` for a comma-separated list of ``choices`` (``open,waiting``)."""
    allowed = tuple(str(c) for c in choices)

    def parse(value: str) -> tuple[str, ...]:
        given = tuple(part.strip() for part in value.split(",") if part.strip())
        unknown = [g for g in given if g not in allowed]
        if unknown or not given:
            raise argparse.ArgumentTypeError(
                f"{'no ' + what if not given else f'unknown {what} {unknown[0]!r}'} "
                f"(choose from {', '.join(allowed)}; several: comma-separated)")
        return given

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def positive_int(value: str) -> int:
    """An argparse ``type``: a whole number of at least 1."""
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="one JSON document on stdout instead of text")


def add_limit(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT, metavar="N",
                        help=f"show at most N {what} (default {DEFAULT_LIMIT}; "
                             "says so on stderr when there are more)")


def say_truncated(shown: int, limit: int, more: bool, what: str) -> None:
    """On stderr, when a listing stopped at its limit: how to see the rest."""
    if more:
        print(f"mailroom: showing the first {shown} {what} only; there are more "
              f"(raise --limit, now {limit})", file=sys.stderr)
