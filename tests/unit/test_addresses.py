"""Signed reply addresses: round trip, case folding, tampering, other secrets."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.addresses import (
    TEAM,
    ReplyToken,
    make_reply_address,
    parse_reply_address,
    redact_tokens,
    verify_binding,
)

SECRET = b"k" * 32
DOMAINS = ("helpline.example", "helpline.example.org")


def make(kind: str = "t", ident: int = 123, role: str = "p", secret: bytes = SECRET) -> str:
    return make_reply_address(
        local="helpline", domain="helpline.example", kind=kind, ident=ident, role=role,
        secret=secret,
    )  # fmt: skip


def parse(addr: str, secret: bytes = SECRET) -> ReplyToken | None:
    return parse_reply_address(addr, local="helpline", domains=DOMAINS, secret=secret)


def test_shape() -> None:
    addr = make()
    assert re.fullmatch(r"helpline\+p-t123-[a-z2-7]{10}@helpline\.example", addr)
    assert len(addr.partition("@")[0]) < 64


@pytest.mark.parametrize(
    ("kind", "ident", "role"),
    [("t", 1, "r"), ("t", 123, "p"), ("e", 42, "x"), ("e", 10**15, "p"), ("t", 0, "r")],
    ids=["ticket-requester", "ticket-practitioner", "escalation-platform", "big-id", "zero"],
)
def test_round_trip(kind: str, ident: int, role: str) -> None:
    token = parse(make(kind, ident, role))
    assert token == ReplyToken(kind=kind, ident=ident, role=role, valid=True)


@pytest.mark.parametrize(
    "transform",
    [str.upper, str.lower, lambda a: f"<{a}>", lambda a: f"  {a} "],
    ids=["upper-cased", "lower-cased", "angle-brackets", "white-space"],
)
def test_survives_what_mail_systems_do(transform: object) -> None:
    addr = transform(make())  # type: ignore[operator]
    assert parse(addr) == ReplyToken(kind="t", ident=123, role="p", valid=True)


def test_second_domain_is_accepted() -> None:
    addr = make().replace("@helpline.example", "@helpline.example.org")
    assert parse(addr) == ReplyToken(kind="t", ident=123, role="p", valid=True)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda a: a.replace("-t123-", "-t124-"), ReplyToken("t", 124, "p", False)),
        (lambda a: a.replace("+p-", "+r-"), ReplyToken("t", 123, "r", False)),
        (lambda a: a.replace("-t123-", "-e123-"), ReplyToken("e", 123, "p", False)),
        (lambda a: a.replace("-t123-", "-t0123-"), ReplyToken("t", 123, "p", False)),
        (lambda a: a.replace("+p-", "+q-"), ReplyToken("t", 123, "q", False)),
        (lambda a: _flip_last_mac_char(a), ReplyToken("t", 123, "p", False)),
        (lambda a: a.replace("@", "x@"), ReplyToken("t", 123, "p", False)),
        (lambda a: a.split("-")[0] + "-" + a.split("-")[1] + "-abc@helpline.example",
         ReplyToken("t", 123, "p", False)),
    ],
    ids=[
        "ident",
        "role",
        "kind",
        "leading-zero",
        "unknown-role",
        "mac",
        "mac-longer",
        "mac-shorter",
    ],
)  # fmt: skip
def test_tampered_tokens_are_invalid(tamper: object, expected: ReplyToken) -> None:
    assert parse(tamper(make())) == expected  # type: ignore[operator]


def _flip_last_mac_char(addr: str) -> str:
    local, _, domain = addr.partition("@")
    last = "b" if local[-1] != "b" else "c"
    return f"{local[:-1]}{last}@{domain}"


def test_other_secret_does_not_verify() -> None:
    assert parse(make(), secret=b"another secret") == ReplyToken("t", 123, "p", False)
    assert parse(make(secret=b"another secret")) == ReplyToken("t", 123, "p", False)


def test_empty_secret_never_verifies() -> None:
    assert parse(make(), secret=b"") == ReplyToken("t", 123, "p", False)


@pytest.mark.parametrize(
    "addr",
    [
        "helpline@helpline.example",
        "jo@school.example",
        "helpline+p-t123-abcdefghij@evil.example",
        "other+p-t123-abcdefghij@helpline.example",
        "helpline+newsletter@helpline.example",
        "helpline+p-t-abcdefghij@helpline.example",
        "helplinex+p-t123-abcdefghij@helpline.example",
        "not an address",
        "",
    ],
    ids=[
        "plain-helpline",
        "stranger",
        "foreign-domain",
        "other-mailbox",
        "other-sub-address",
        "no-ident",
        "longer-local",
        "garbage",
        "empty",
    ],
)
def test_not_a_reply_address(addr: str) -> None:
    assert parse(addr) is None


def test_foreign_domain_with_a_valid_token_is_not_ours() -> None:
    addr = make().replace("@helpline.example", "@evil.example")
    assert parse(addr) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "x"},
        {"role": "z"},
        {"ident": -1},
        {"ident": True},
        {"secret": b""},
        {"local": "Help Line"},
        {"local": "a" * 50},
    ],
    ids=["kind", "role", "negative-ident", "bool-ident", "empty-secret", "space", "too-long"],
)
def test_make_rejects_bad_parts(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "local": "helpline", "domain": "helpline.example", "kind": "t", "ident": 1,
        "role": "p", "secret": SECRET,
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(ValueError):
        make_reply_address(**args)  # type: ignore[arg-type]


def test_redact_tokens_hides_the_mac() -> None:
    addr = make()
    line = f"rejected mail to {addr} from jo@school.example"
    redacted = redact_tokens(line)
    assert addr.split("-")[-1].split("@")[0] not in redacted
    assert "helpline+p-t123-…@helpline.example" in redacted
    assert "jo@school.example" in redacted


@given(
    kind=st.sampled_from("te"),
    role=st.sampled_from("rpx"),
    ident=st.integers(min_value=0, max_value=10**12),
    secret=st.binary(min_size=1, max_size=64),
)
def test_round_trip_property(kind: str, role: str, ident: int, secret: bytes) -> None:
    addr = make(kind, ident, role, secret)
    assert addr == addr.lower()
    assert re.fullmatch(r"[a-z0-9+\-.]+@[a-z0-9.\-]+", addr)
    assert parse(addr.upper(), secret=secret) == ReplyToken(kind, ident, role, True)


def bound(who: str, day: int = 20_500, ident: int = 123) -> str:
    return make_reply_address(local="helpline", domain="helpline.example", kind="t",
                              ident=ident, role="p", secret=SECRET, bound=who, issued=day)


def test_a_bound_token_says_its_day_and_is_valid_only_for_its_practitioner() -> None:
    addr = bound("anna@helpline.example")
    assert re.fullmatch(r"helpline\+p-t123-0ftg[a-z2-7]{10}@helpline\.example", addr)
    token = parse(addr)
    assert token is not None and token.bound and token.issued == 20_500 and not token.valid
    assert verify_binding(token, SECRET, "anna@helpline.example")
    assert verify_binding(token, SECRET, "ANNA@helpline.example")
    assert not verify_binding(token, SECRET, "ben@helpline.example")
    assert not verify_binding(token, SECRET, TEAM)
    assert not verify_binding(token, b"other" * 8, "anna@helpline.example")


def test_a_team_token_is_not_a_practitioners() -> None:
    token = parse(bound(TEAM))
    assert token is not None and verify_binding(token, SECRET, TEAM)
    assert not verify_binding(token, SECRET, "anna@helpline.example")


@pytest.mark.parametrize("tamper", [
    lambda a: a.replace("-0ftg", "-0fth"),  # a later day
    lambda a: a.replace("-t123-", "-t124-"),
    lambda a: a.replace("+p-", "+r-"),
], ids=["day", "ident", "role"])
def test_a_tampered_bound_token_verifies_for_nobody(tamper: object) -> None:
    token = parse(tamper(bound("anna@helpline.example")))  # type: ignore[operator]
    assert token is not None
    assert not verify_binding(token, SECRET, "anna@helpline.example")


def test_a_bound_token_needs_its_day() -> None:
    with pytest.raises(ValueError, match="issue day"):
        make_reply_address(local="helpline", domain="helpline.example", kind="t", ident=1,
                           role="p", secret=SECRET, bound="anna@helpline.example")
