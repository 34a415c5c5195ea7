"""The same message or another: ``content_digest`` ignores what servers add on the way."""

from __future__ import annotations

import pytest

from mailroom.store.inbox import DIGEST_CHUNK, content_digest, is_trace_field

ORIGINAL = (b"From: Jo Teacher <jo@school.example>\r\nTo: helpline@helpline.example\r\n"
            b"Subject: Fake account of our head teacher\r\n"
            b"Message-ID: <case@school.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
            b"DKIM-Signature: v=1; a=rsa-sha256; d=school.example; b=abc\r\n"
            b"\r\nSomeone made a fake account: https://www.tiktok.com/@fakehead\r\n")

TRACE = {
    "received": b"Received: from mx.school.example (mx.school.example [192.0.2.1])\r\n"
                b"\tby mx.helpline.example with ESMTPS id 4Xy; Mon, 2 Mar 2026 10:00:01 +0000\r\n",
    "return-path": b"Return-Path: <jo@school.example>\r\n",
    "delivered-to": b"Delivered-To: helpline@helpline.example\r\n",
    "x-delivered-to": b"X-Delivered-To: help@helpline.example\r\n",
    "x-original-to": b"X-Original-To: helpline@helpline.example\r\n",
    "authentication-results": b"Authentication-Results: mx.helpline.example; dkim=pass\r\n",
    "arc": b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=google.com; s=arc\r\n"
           b"ARC-Message-Signature: i=1; a=rsa-sha256; b=xyz\r\n",
    "received-spf": b"Received-SPF: pass (school.example: 192.0.2.1 is allowed)\r\n",
    "x-spam": b"X-Spam-Status: No, score=-1.0\r\nX-Spam-Flag: NO\r\n",
    "mbox-postmark": b"From jo@school.example Mon Mar  2 10:00:01 2026\r\n",
}


@pytest.mark.parametrize("added", list(TRACE.values()), ids=list(TRACE))
def test_trace_fields_added_on_top_are_the_same_message(added: bytes) -> None:
    assert content_digest(added + ORIGINAL) == content_digest(ORIGINAL)


def test_trace_fields_anywhere_in_the_header_are_the_same_message() -> None:
    head, body = ORIGINAL.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    mixed = b"\r\n".join([*lines[:2], TRACE["received"].rstrip(b"\r\n"), *lines[2:]])
    assert content_digest(mixed + b"\r\n" + TRACE["x-spam"] + b"\r\n" + body) == \
        content_digest(ORIGINAL)


@pytest.mark.parametrize("copy", [
    ORIGINAL.replace(b"\r\n", b"\n"),
    ORIGINAL + b"\r\n",
    ORIGINAL.replace(b"\r\n", b"\n") + b"\n\n",
], ids=["lf-line-ends", "one-more-empty-line", "lf-and-empty-lines"])
def test_line_ends_and_trailing_empty_lines_are_the_same_message(copy: bytes) -> None:
    assert content_digest(copy) == content_digest(ORIGINAL)


@pytest.mark.parametrize("other", [
    ORIGINAL.replace(b"Subject: Fake", b"Subject: A fake"),
    ORIGINAL.replace(b"@fakehead", b"@otherhead"),
    ORIGINAL.replace(b"Jo Teacher <jo@", b"Jo Teacher <jo2@"),
    ORIGINAL.replace(b"b=abc", b"b=abd"),
    b"X-Mailer: Another\r\n" + ORIGINAL,
    ORIGINAL.replace(b"account:", b"account:\r\n"),
], ids=["subject", "body", "from", "dkim-signature", "another-field", "a-line-more"])
def test_anything_else_makes_another_message(other: bytes) -> None:
    assert content_digest(other) != content_digest(ORIGINAL)


def test_a_crlf_across_the_chunk_boundary_is_read_as_one_line_end() -> None:
    head = b"Subject: big\r\n\r\n"
    line = b"x" * (DIGEST_CHUNK - len(head) - 1)
    crlf = head + line + b"\r\n" + b"y" * 100 + b"\r\n"
    assert content_digest(crlf) == content_digest(crlf.replace(b"\r\n", b"\n"))
    assert content_digest(crlf) != content_digest(crlf.replace(b"\r\ny", b"\r\rny"))


@pytest.mark.parametrize(("field", "trace"), [
    (b"Received: x", True), (b"RECEIVED: x", True), (b"X-MS-Exchange-Organization-SCL: 1", True),
    (b"Subject: Received", False), (b"Message-ID: <a@b>", False), (b"DKIM-Signature: x", False),
    (b"References: <a@b>", False),
], ids=lambda v: v.decode() if isinstance(v, bytes) else str(v))
def test_is_trace_field(field: bytes, trace: bool) -> None:
    assert is_trace_field(field) is trace
