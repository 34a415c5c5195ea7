"""Real mail from the shared corpora, mangled by hypothesis, through the whole pipeline.

Mutations: truncation anywhere; boundaries that clash, lie or never close;
random bytes and NUL bytes in the header block; a header of hundreds of KB;
thousands of nested multiparts; charsets and transfer encodings that do not
exist or do not fit. Whatever comes in, the pipeline ends in a status
(``process_item`` returns it and the inbox row holds it): the message is
processed or ``bad``. ``shunt`` means mailroom itself failed on that input,
a bug: the failing example is printed by hypothesis. The raw bytes are kept
byte for byte in the inbox in every case.

The corpora are read in place; the module is skipped without them. Under
``CI=true`` hypothesis runs derandomised (the same examples every run);
``MAILROOM_FUZZ_SCALE=20`` multiplies the examples for a longer hunt.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import (
    HealthCheck,
    currently_in_test_context,
    event,
    given,
    reject,
    settings,
)
from hypothesis import strategies as st

from mailroom.intake.message import parse_message
from mailroom.pipeline import process_item
from mailroom.store.inbox import header_block, raw_message_id, store_raw
from mailroom.store.models import InboxItem
from tests.integration.test_smtp_door import start_door
from tests.pathological import LONG_REFERENCES

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
IN_CI = os.environ.get("CI", "").lower() == "true"
MAX_SEED_SIZE = 64 * 1024  # bigger corpus files make examples slow, not more telling
PROCESSED = {"created", "threaded", "duplicate", "bounce", "automatic", "loop"}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CORPORA.is_dir(), reason=f"no corpora at {CORPORA}")]

NOT_MAIL = re.compile(r"(README|LICENSE|COPYING|NOTICE|\.(py|js|rb|php|t|pm|sh|json|xml|out|"
                      r"html|png|wav|bin|md)$)", re.I)
HEADER_START = re.compile(rb"(From |[\x21-\x39\x3b-\x7e]+[ \t]*:)")


def corpus_seeds() -> list[Path]:
    """Corpus files that are mail (a header line first) and small enough."""
    if not CORPORA.is_dir():
        return []
    seeds = []
    for path in sorted(CORPORA.rglob("*")):
        if not path.is_file() or NOT_MAIL.search(path.name) or "_decoded" in path.name:
            continue
        if path.stat().st_size > MAX_SEED_SIZE:
            continue
        head = path.read_bytes()[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
        if path.suffix.lower() in (".eml", ".msg") or HEADER_START.match(head):
            seeds.append(path)
    return seeds


SEEDS = corpus_seeds()
_serial = itertools.count()


SCALE = float(os.environ.get("MAILROOM_FUZZ_SCALE", "1"))  # e.g. 20 for a long local hunt


def fuzz(examples: int) -> Callable:  # type: ignore[type-arg]
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None,
                    derandomize=IN_CI,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- the check

# Shunts found by these tests, reported and fixed: each keeps a case in KNOWN_SHUNTS
# (test_found_by_mutation). While one is open, a line here lets the search discard the
# examples that end in it (counted in --hypothesis-show-statistics) and look for others.
KNOWN_SHUNT_SIGNS: dict[str, re.Pattern[str]] = {}


def with_fresh_id(raw: bytes) -> bytes:
    """The message under a Message-ID no other example used (else it is a duplicate)."""
    # fixed width: the length of the bytes must not vary between runs of one example
    fresh = f"<mut-{next(_serial):09d}-{os.getpid():09d}@faults.example>".encode()
    head, body = split_headers(raw)
    replaced, n = re.subn(rb"(?im)^message-id:[ \t]*[^\r\n]*", b"Message-ID: " + fresh, head,
                          count=1)
    return replaced + body if n else b"Message-ID: " + fresh + b"\r\n" + raw


def check_pipeline(app, raw: bytes) -> str:  # type: ignore[no-untyped-def]
    """Store, process, and hold the pipeline to its promises; the outcome."""
    stored = store_raw(app.sessions, raw, door="file", door_ref="mutation")
    outcome = process_item(app, stored.inbox_id)
    with app.sessions() as session:
        row = session.get(InboxItem, stored.inbox_id)
        assert row is not None
        kept, status, error = row.raw, row.status, row.error
        size, sha = row.size, row.raw_sha256
    if stored.duplicate:  # the same bytes again, or a cut that left another's Message-ID
        assert outcome == "skipped"
        assert kept == raw or raw_message_id(kept) == raw_message_id(raw) is not None
        return outcome
    assert kept == raw and size == len(raw) and sha == hashlib.sha256(raw).hexdigest()
    if status == "shunt" and currently_in_test_context():
        known = next((name for name, sign in KNOWN_SHUNT_SIGNS.items()
                      if sign.search(error or "")), None)
        if known:  # reported, and pinned by test_found_by_mutation: look for others
            event(f"known shunt: {known}")
            reject()
    assert status != "shunt", f"shunted (a bug in mailroom):\n{error}"
    assert (status, outcome) in {("bad", "bad"), *(("done", o) for o in PROCESSED)}, \
        (status, outcome, error)
    if currently_in_test_context():
        event(f"outcome: {outcome}")  # pytest --hypothesis-show-statistics
    return outcome


def seed() -> st.SearchStrategy[bytes]:
    return st.sampled_from(SEEDS).map(lambda path: with_fresh_id(path.read_bytes()))


def split_headers(raw: bytes) -> tuple[bytes, bytes]:
    head = header_block(raw)
    return head, raw[len(head):]


# --------------------------------------------------------------------------- mutations


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    raw = draw(seed())
    return raw[: draw(st.integers(0, len(raw)))]


BOUNDARY = re.compile(rb'(?i)boundary\s*=\s*"?([^";\r\n]+)"?')


@st.composite
def bad_boundaries(draw: st.DrawFn) -> bytes:
    raw = draw(seed())
    found = list(dict.fromkeys(BOUNDARY.findall(raw)))
    if not found:  # make it claim to be multipart, with nothing that delimits a part
        head, body = split_headers(raw)
        head = re.sub(rb"(?im)^content-type:[^\r\n]*(\r?\n[ \t][^\r\n]*)*", b"", head)
        return b'Content-Type: multipart/mixed; boundary="zz"\r\n' + head + body
    target = draw(st.sampled_from(found))
    how = draw(st.sampled_from(["clash", "prefix", "unclosed", "stray", "empty", "overlong"]))
    if how == "clash":  # every multipart uses the same boundary
        return BOUNDARY.sub(b'boundary="' + found[0] + b'"', raw)
    if how == "prefix":  # the declared boundary is a prefix of the one used
        return raw.replace(b"boundary=\"" + target, b"boundary=\"" + target[: len(target) // 2]
                           or b"-", 1)
    if how == "unclosed":
        return raw.replace(b"--" + target + b"--", b"")
    if how == "stray":  # a delimiter line somewhere it does not belong
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + b"\r\n--" + target + b"\r\n" + raw[at:]
    if how == "empty":
        return raw.replace(b"boundary=\"" + target + b"\"", b'boundary=""')
    return raw.replace(target, target * 200)  # far beyond RFC 2046's 70 characters


@st.composite
def header_noise(draw: st.DrawFn) -> bytes:
    """Random bytes (NUL, CR, LF, 8-bit, control) spliced into the header block."""
    head, body = split_headers(draw(seed()))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(head)))
        noise = draw(st.binary(min_size=1, max_size=64))
        head = head[:at] + noise + head[at:]
    return head + body


@st.composite
def nul_bytes(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(seed()))
    for _ in range(draw(st.integers(1, 20))):
        raw.insert(draw(st.integers(0, len(raw))), 0)
    return bytes(raw)


@st.composite
def huge_header(draw: st.DrawFn) -> bytes:
    head, body = split_headers(draw(seed()))
    size = draw(st.integers(100_000, 400_000))
    shape = draw(st.sampled_from(["one-line", "folded", "many", "encoded-words"]))
    names = [b"Subject", b"From", b"To", b"X-Huge", b"Content-Type", b"Received"]
    if shape != "one-line":  # one long References token is a known slow path (see below)
        names += [b"References", b"In-Reply-To"]
    name = draw(st.sampled_from(names))
    if shape == "one-line":
        extra = name + b": " + b"a" * size + b"\r\n"
    elif shape == "folded":
        extra = name + b": " + b"\r\n ".join([b"word" * 15] * (size // 62)) + b"\r\n"
    elif shape == "many":  # thousands of short fields of the same name
        line = name + b": <x" + b"y" * 40 + b"@many.example>\r\n"
        extra = line * (size // len(line))
    else:
        word = b"=?utf-8?b?" + b"w6nDqMOq" * 8 + b"?= "
        extra = name + b": " + word * (size // len(word)) + b"\r\n"
    return extra + head + body


@st.composite
def deep_nesting(draw: st.DrawFn) -> bytes:
    head, body = split_headers(draw(seed()))
    kind = draw(st.sampled_from(["multipart", "message"]))
    # Beyond ~900 levels (either kind) the standard library's parser overflows the
    # stack: a known shunt, thousands of levels are in KNOWN_SHUNTS. The search
    # stays below that, to find what else deep trees break.
    depth = draw(st.integers(100, 700))
    head = re.sub(rb"(?im)^content-(type|transfer-encoding):[^\r\n]*(\r?\n[ \t][^\r\n]*)*",
                  b"", head)
    if kind == "multipart":
        opening = b"".join(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
                           % (i, i + 1) for i in range(depth))
        closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth + 1)))
        inner = b"--b%d\r\nContent-Type: text/plain\r\n\r\n" % depth + body
        top = b'Content-Type: multipart/mixed; boundary="b0"\r\n'
        return top + head.rstrip(b"\r\n") + b"\r\n\r\n" + opening + inner + closing
    nested = body
    for _ in range(depth):
        nested = b"Content-Type: message/rfc822\r\n\r\n" + nested
    return b"Content-Type: message/rfc822\r\n" + head.rstrip(b"\r\n") + b"\r\n\r\n" + nested


# Charsets whose codec refuses errors="replace", which Message.get_payload() uses
REPLACE_REFUSING = [b"idna", b"punycode", b"undefined"]
BOGUS_CHARSETS = [b"x-unknown", b"utf-7", b"utf-16", b"utf-32", b"", b"us-ascii'en'",
                  b"\xff\xfe", b"iso-8859-99", b"unicode-1-1-utf-7", b"cp65001",
                  b"rot13", b"base64", b"zlib", b"hex", b"unicode_escape", b"../../etc/passwd",
                  *REPLACE_REFUSING]
BOGUS_ENCODINGS = [b"base64", b"quoted-printable", b"x-uuencode", b"uuencode", b"8bit",
                   b"binary", b"7bit", b"x-gzip", b"bogus", b"\x00"]


@st.composite
def bad_charsets(draw: st.DrawFn) -> bytes:
    raw = draw(seed())
    head, body = split_headers(raw)
    charset = draw(st.sampled_from(BOGUS_CHARSETS))
    encoding = draw(st.sampled_from(BOGUS_ENCODINGS))
    how = draw(st.sampled_from(["declared", "encoded-word", "rfc2231", "body-bytes"]))
    if how == "declared":
        head = re.sub(rb'(?i)charset\s*=\s*"?[^";\r\n]*"?', b'charset="' + charset + b'"', head)
        head = re.sub(rb"(?im)^content-transfer-encoding:[^\r\n]*",
                      b"Content-Transfer-Encoding: " + encoding, head)
        if b"charset" not in head.lower():
            head = (b'Content-Type: text/plain; charset="' + charset + b'"\r\n'
                    b"Content-Transfer-Encoding: " + encoding + b"\r\n" + head)
    elif how == "encoded-word":
        # random text under a random charset; the base64 itself is valid (invalid
        # base64 in From is a known shunt, see KNOWN_SHUNTS)
        text = draw(st.binary(min_size=0, max_size=40))
        encoded = draw(st.sampled_from([
            b"b?" + base64.b64encode(text),
            b"q?" + text.replace(b"\r", b"").replace(b"\n", b"").replace(b"?", b"=3F"),
            b"x?" + text.hex().encode()]))
        word = b"=?" + charset + b"?" + encoded + b"?="
        head = b"Subject: " + word + b" " + word + b"\r\nFrom: " + word + \
            b" <w@school.example>\r\n" + head
    elif how == "rfc2231":
        head = (b"Content-Type: multipart/mixed; boundary=\"r\"\r\n" + head)
        body = (b"--r\r\nContent-Type: application/octet-stream; name*=" + charset +
                b"''%ff%fe%00%2e%2e%2f\r\nContent-Disposition: attachment; filename*0*=" +
                charset + b"''%e9t%e9; filename*1=\"../x\"\r\nContent-Transfer-Encoding: " +
                encoding + b"\r\n\r\n" + body + b"\r\n--r--\r\n")
    else:  # bytes that are no text in any charset, under a text declaration
        noise = draw(st.binary(min_size=1, max_size=512))
        head = b'Content-Type: text/plain; charset="' + charset + b'"\r\n' + head
        body = noise + body
    return head + body


# --------------------------------------------------------------------------- the tests


@fuzz(30)
@given(raw=truncated())
def test_truncated_anywhere(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


@fuzz(25)
@given(raw=bad_boundaries())
def test_bad_and_clashing_boundaries(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


@fuzz(25)
@given(raw=header_noise())
def test_random_bytes_in_headers(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


@fuzz(20)
@given(raw=nul_bytes())
def test_nul_bytes(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


@fuzz(8)
@given(raw=huge_header())
def test_huge_headers(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


@fuzz(6)
@given(raw=deep_nesting())
def test_deep_nesting(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


@fuzz(25)
@given(raw=bad_charsets())
def test_invalid_charsets_and_encodings(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, raw)


# --------------------------------------------------------------------------- found so far


def _plain(headers: bytes, body: bytes = b"hello\r\n") -> bytes:
    return (b"To: helpline@helpline.example\r\nSubject: found by test_mutations\r\n"
            + headers + b"\r\n" + body)


def _nested_messages(depth: int) -> bytes:
    nested = b"hi\r\n"
    for _ in range(depth):
        nested = b"Content-Type: message/rfc822\r\n\r\n" + nested
    return _plain(b"From: t@school.example\r\nContent-Type: message/rfc822\r\n", nested)


def _nested_multiparts(depth: int) -> bytes:
    opening = b"".join(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
                       % (i, i + 1) for i in range(depth))
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth + 1)))
    return _plain(b'From: t@school.example\r\nContent-Type: multipart/mixed; boundary="b0"\r\n',
                  opening + b"--b%d\r\nContent-Type: text/plain\r\n\r\nhi\r\n" % depth + closing)


def _bounce_returning(returned_part: bytes) -> bytes:
    """A delivery status notification whose third part is ``returned_part``."""
    return _plain(
        b"From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; "
        b'report-type=delivery-status; boundary="r"\r\n',
        b"--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
        b"mx.example\r\n\r\nFinal-Recipient: rfc822; x@y.example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--r\r\n" + returned_part + b"\r\n--r--\r\n")


BOUNCE_QUOTING_A_NUL_ID = _bounce_returning(
    b"Content-Type: text/rfc822-headers\r\n\r\n"
    b"Message-ID: <\x00orig@helpline.example>\r\nSubject: x\r\n")

KNOWN_SHUNTS = {
    # bounces.decoded_header (line ~457) lets email.errors.HeaderParseError out of
    # decode_header: classify() reads From through it for every message
    "bad-base64-encoded-word-in-from": _plain(b"From: =?utf-8?b?/?= <w@school.example>\r\n"),
    # Message.get_payload() (no decode) decodes an 8-bit leaf with errors="replace",
    # which these codecs refuse: bounces._message_id_of_part still calls it on the
    # returned headers of a bounce (walk_parts no longer does, see below)
    **{f"bounce-returning-8bit-headers-declared-{name.decode()}": _bounce_returning(
        b"Content-Type: text/rfc822-headers; charset=" + name + b"\r\n\r\n"
        b"Message-ID: <orig@helpline.example>\r\nSubject: caf\xe9\r\n")
       for name in REPLACE_REFUSING},
    # email.feedparser recurses once per level: parse_mime in pipeline.handle overflows
    # (parse_message falls back to a minimal parse, handle() does not)
    "1500-nested-multiparts": _nested_multiparts(1500),
    "3000-nested-message-rfc822": _nested_messages(3000),
    # the acknowledgement cannot be composed to an address the strict header parser
    # rejects (compose.to_header_address raises), so the whole message is shunted
    **{f"requester-{name}": _plain(b"From: " + address + b"\r\n") for name, address in [
        ("double-dot-local-part", b"taro..yamada@docomo.example"),
        ("trailing-dot-local-part", b"Jo <jo.@school.example>"),
        ("leading-dot-local-part", b".jo@school.example"),
        ("double-dot-domain", b"jo@school..example")]},
}
@pytest.mark.parametrize("raw", list(KNOWN_SHUNTS.values()), ids=list(KNOWN_SHUNTS))
def test_found_by_mutation(app, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    check_pipeline(app, with_fresh_id(raw))


def test_found_by_mutation_on_postgresql(make_pg_app) -> None:  # type: ignore[no-untyped-def]
    """A bounce quoting a Message-ID with a NUL: the lookup of the original in
    act_on_bounce sends the NUL to PostgreSQL, which refuses it (DataError)."""
    check_pipeline(make_pg_app(), with_fresh_id(BOUNCE_QUOTING_A_NUL_ID))


def test_a_long_references_token_is_read_in_linear_time() -> None:
    """``References: aaaa…`` (no ``<``, no ``@``): a regex once backtracked from
    every position, O(n²): 40 KB took seconds, the 400 KB the huge-header search
    drew took minutes, all of it inside the pipeline's transaction (on SQLite
    holding the write lock the doors need). Linear parsing takes milliseconds
    (``make bench`` times it); what it reads is no reference at all."""
    assert parse_message(LONG_REFERENCES).references == ()


# --------------------------------------------------------------------------- found and fixed


@pytest.mark.parametrize("charset", REPLACE_REFUSING, ids=[c.decode() for c in REPLACE_REFUSING])
def test_an_8bit_body_in_a_charset_refusing_replace_is_processed(  # type: ignore[no-untyped-def]
    app, charset: bytes
) -> None:
    """Was shunted (bounces.walk_parts read every leaf with get_payload()); fixed in
    80c57c5, which stopped at leaves for speed."""
    raw = _plain(b"From: t@school.example\r\nContent-Type: text/plain; charset=" + charset
                 + b"\r\n", b"caf\xe9\r\n")
    assert check_pipeline(app, with_fresh_id(raw)) == "created"


def test_message_ids_that_differ_only_in_utf8_are_two_messages(app) -> None:  # type: ignore[no-untyped-def]
    """RFC 6532 allows UTF-8 in a Message-ID; read as ASCII, ``<café@…>`` and
    ``<cafè@…>`` had one de-duplication key and the second message was dropped."""
    first = _plain(b"From: t@school.example\r\nMessage-ID: <caf\xc3\xa9@school.example>\r\n")
    second = _plain(b"From: u@school.example\r\nMessage-ID: <caf\xc3\xa8@school.example>\r\n")
    assert [check_pipeline(app, raw) for raw in (first, second)] == ["created", "created"]
    with app.sessions() as session:
        assert session.query(InboxItem).count() == 2


def test_nul_bytes_in_the_envelope_and_the_message_id_are_stored(app) -> None:  # type: ignore[no-untyped-def]
    """An SMTP client can send NUL in MAIL FROM, RCPT TO and the Message-ID; PostgreSQL
    cannot keep a NUL in a text column, and the door answered 451 for ever."""
    door = start_door(app)
    raw = _plain(b"From: t@school.example\r\nMessage-ID: <a\x00b@school.example>\r\n")
    try:
        with socket.create_connection(("127.0.0.1", door.port), timeout=10) as sock:
            stream = sock.makefile("rwb")
            replies = [stream.readline()]
            for line in (b"EHLO client.example", b"MAIL FROM:<t\x00x@school.example>",
                         b"RCPT TO:<help\x00line@helpline.example>", b"DATA",
                         raw + b".", b"QUIT"):
                stream.write(line + b"\r\n")
                stream.flush()
                replies.append(_reply(stream))
    finally:
        door.stop()
    assert replies[-2].startswith(b"250 "), replies
    with app.sessions() as session:
        [row] = session.query(InboxItem).all()
        assert row.raw.replace(b"\r\n", b"\n").rstrip() == raw.replace(b"\r\n", b"\n").rstrip()
        assert row.mail_from == "t\ufffdx@school.example"
        item_id = row.id
    assert process_item(app, item_id) in PROCESSED


def _reply(stream) -> bytes:  # type: ignore[no-untyped-def]
    line = stream.readline()
    while line[3:4] == b"-":
        line = stream.readline()
    return line
