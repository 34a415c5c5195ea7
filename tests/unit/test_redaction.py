"""The log redaction filter: tokens always, other people's addresses at INFO and up."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from mailroom.privacy.redaction import RedactionFilter, redact_line

OWN = frozenset({"helpline@helpline.example", "team@helpline.example"})
TOKEN = "helpline+p-t12-abcdefghij@helpline.example"


@pytest.mark.parametrize(("line", "expected"), [
    ("sent outbox 3 (acknowledgement) to jo@school.example",
     "sent outbox 3 (acknowledgement) to …@school.example"),
    ("to jo@school.example, anna@helpline.example",
     "to …@school.example, …@helpline.example"),
    ("no mail to requester 'jo.smith@school.example'", "no mail to requester '…@school.example'"),
    ("from <Jo.Smith+lists@School.Example>.", "from <…@School.Example>."),
    ("to=jo@school.example", "to=…@school.example"),
    ("o'brien@school.example wrote", "…@school.example wrote"),
    ("mail for helpline@helpline.example and team@helpline.example",
     "mail for helpline@helpline.example and team@helpline.example"),
    (f"reply to {TOKEN}", "reply to helpline+p-t12-…@helpline.example"),
    ("forged jo+r-t1-abcdefghij@school.example", "forged …@school.example"),
    ("no address here: 100% done", "no address here: 100% done"),
], ids=["recipient", "staff-too", "repr", "case-and-subaddress", "key-value", "apostrophe",
        "own-kept", "own-token-mac-hidden", "token-elsewhere", "no-address"])
def test_redact_line(line: str, expected: str) -> None:
    assert redact_line(line, own=OWN) == expected


def test_redaction_is_idempotent() -> None:
    once = redact_line(f"to jo@school.example via {TOKEN}", own=OWN)
    assert redact_line(once, own=OWN) == once


def test_without_addresses_only_tokens_go() -> None:
    assert redact_line(f"jo@school.example wrote to {TOKEN}", own=OWN, addresses=False) == \
        "jo@school.example wrote to helpline+p-t12-…@helpline.example"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the filter into a string, as ``setup_logging`` wires it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactionFilter(OWN))
    logger = logging.getLogger("mailroom.test-redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def test_arguments_of_any_type_are_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.warning("refused %s (%d of %s) %r", ["jo@school.example"], 1, 2,
                   {"to": "sam@other.example"})
    assert out.getvalue() == \
        "WARNING refused ['…@school.example'] (1 of 2) {'to': '…@other.example'}\n"


def test_exception_text_is_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    try:
        raise ValueError(f"550 <jo@school.example> unknown; reply was {TOKEN}")
    except ValueError:
        logger.exception("outbox 4 failed")
    text = out.getvalue()
    assert "Traceback" in text and "ValueError: 550 <…@school.example> unknown" in text
    assert "jo@" not in text and "abcdefghij" not in text


def test_debug_lines_keep_addresses_but_not_tokens(
        logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.debug("claimed mail to %s from %s", "jo@school.example", TOKEN)
    logger.info("claimed mail to %s", "jo@school.example")
    assert out.getvalue().splitlines() == [
        "DEBUG claimed mail to jo@school.example from helpline+p-t12-…@helpline.example",
        "INFO claimed mail to …@school.example",
    ]


def test_a_bad_format_loses_its_arguments_rather_than_leak_them(
        logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.info("to %s and %s", "jo@school.example")  # one argument short
    assert out.getvalue() == "INFO to %s and %s\n"
