"""Inputs that once made a parser take seconds or minutes (a regex backtracking from
every position, O(n²)), each now handled in linear time.

The tests (tests/unit/test_bounces.py, tests/faults/test_mutations.py,
tests/corpus/test_quote_scores.py) check what each input gives; how long it
takes is measured by ``make bench`` (the ``slow-inputs`` part, CPU time), never
by a test: on a busy machine a wall-clock budget fails for reasons of its own.
"""

from __future__ import annotations

import email
from email.message import Message
from email.policy import compat32
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"

# Bodies of a plain-text bounce: each kind of run a bounce regex might backtrack over.
BOUNCE_BODIES = {
    "letters": "a" * 200_000,
    "dashes": "-" * 60_000,
    "newlines": "\n" * 60_000,
    "blank-lines": " \n" * 30_000,
    "equals": "=" * 60_000,
    "dots": "a." * 30_000,
    "smtp-line": "550 " + "x " * 20_000,
    "colons": ("the following recipients" + ":" * 1000 + "\n") * 50,
}

# ``References: aaaa…`` (no ``<``, no ``@``): once O(n²), 40 KB took seconds.
LONG_REFERENCES = (b"References: " + b"a" * 40_000 + b"\r\n"
                   b"To: helpline@helpline.example\r\nSubject: found by test_mutations\r\n"
                   b"From: t@school.example\r\n\r\nhello\r\n")

# Texts from the shared corpora that made quote stripping slow.
QUOTE_FIXTURES = tuple(CORPORA / "github-email_reply_parser" / "test" / "emails" / name
                       for name in ("pathological.txt", "email_long_quote.txt"))


def text_bounce(body: str, subject: str = "failure notice") -> Message:
    """A plain-text bounce from a mailer daemon, with ``body`` as its text."""
    raw = (f"From: MAILER-DAEMON@mx.example.net\nTo: help@helpline.example.org\n"
           f"Subject: {subject}\n\n{body}")
    return email.message_from_bytes(raw.encode("utf-8"), policy=compat32)
