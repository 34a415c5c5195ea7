"""Signed reply addresses: ``helpline+p-t123-k3v9q2m7xa@example.org``.

The sub-address after ``+`` names who is speaking (role), about what (kind and
id), and carries a MAC so that nobody can forge a practitioner's or a
platform's address by editing a number. Pure: the secret is passed in.

Token grammar (all lower case, so it survives mail systems that fold local
parts to lower case)::

    token = role "-" kind ident "-" mac
    role  = "r" (requester) / "p" (practitioner) / "x" (platform)
    kind  = "t" (ticket) / "e" (escalation)
    ident = decimal, no leading zeros
    mac   = first 10 characters of base32(HMAC-SHA256(secret, "kind:ident:role")),
            lower case, no padding (50 bits)

A practitioner's address is **bound**: to the one practitioner it was sent to,
or to ``team`` when one mail went to the team mailbox or to several
practitioners, and it carries the day it was issued::

    bound mac = day mac10
    day       = days since 1970-01-01 (UTC), base 36, 4 characters
    mac10     = as above, over "kind:ident:role:bound:day"

A bound token cannot be checked on its own: :func:`verify_binding` tells
whether it was issued for a given binding (the From address of the reply, or
``team``), so a token sent to Anna is not Ben's, and the day lets the caller
expire it (see :mod:`mailroom.pipeline`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class TokenKind(StrEnum):
    """What a token is about (``kind`` of the grammar above)."""

    TICKET = "t"
    ESCALATION = "e"


class TokenRole(StrEnum):
    """Who a token is for (``role`` of the grammar above)."""

    REQUESTER = "r"
    PRACTITIONER = "p"
    PLATFORM = "x"


# As plain strings: a token read from an address holds strings, and errors list them.
KINDS = frozenset(kind.value for kind in TokenKind)
ROLES = frozenset(role.value for role in TokenRole)

SEPARATOR = "+"
MAC_LENGTH = 10
DAY_LENGTH = 4
TEAM = "team"  # the binding of a practitioner address sent to several practitioners
MAX_LOCAL_PART = 64  # RFC 5321 section 4.5.3.1.1

# Loose on purpose: anything of this shape is "a token", valid or not, so a
# tampered address is reported as invalid rather than treated as plain mail.
_TOKEN_RE = re.compile(r"([a-z])-([a-z])(\d{1,18})-([a-z0-9]{1,32})")
_LOCAL_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
# For log lines: hide the MAC of anything token-shaped after a "+".
_REDACT_RE = re.compile(r"(\+[a-z]-[a-z]\d{1,18}-)[a-z0-9]{1,32}(?=@)", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyToken:
    """What a reply address says; trust it only when ``valid``.

    A bound token (``issued`` is not None) is never ``valid`` by itself: ask
    :func:`verify_binding` who it was issued to."""

    kind: str
    ident: int
    role: str
    valid: bool
    mac: str = field(default="", compare=False, repr=False)
    issued: int | None = field(default=None, compare=False)  # day number, bound tokens

    @property
    def bound(self) -> bool:
        return self.issued is not None


def make_reply_address(
    *, local: str, domain: str, kind: str, ident: int, role: str, secret: bytes,
    bound: str | None = None, issued: int | None = None,
) -> str:
    """Build ``local+role-kindident-mac@domain`` for a ticket or escalation; with
    ``bound`` (an address, or :data:`TEAM`) and ``issued`` (a day number) a bound one."""
    _check_parts(kind=kind, ident=ident, role=role, secret=secret)
    local = local.strip().lower()
    if not _LOCAL_RE.fullmatch(local):
        raise ValueError(f"unsuitable local part for reply addresses: {local!r}")
    if bound is not None:
        if issued is None or not 0 <= issued < 36**DAY_LENGTH:
            raise ValueError(f"a bound token needs its issue day, got {issued!r}")
        day = _base36(issued).rjust(DAY_LENGTH, "0")
        mac = day + _mac(kind, ident, role, secret, f":{bound.lower()}:{day}")
    else:
        mac = _mac(kind, ident, role, secret)
    token = f"{role}-{kind}{ident}-{mac}"
    local_part = f"{local}{SEPARATOR}{token}"
    if len(local_part) > MAX_LOCAL_PART:
        raise ValueError(f"reply address local part is longer than {MAX_LOCAL_PART} characters")
    return f"{local_part}@{domain.strip().lower()}"


def parse_reply_address(
    addr: str, *, local: str, domains: Sequence[str], secret: bytes
) -> ReplyToken | None:
    """Read the token of a reply address.

    None when ``addr`` is not ``local+<token>@<one of domains>`` at all (a
    plain address, another mailbox, a foreign domain); a ``ReplyToken`` when
    it has the shape of one, with ``valid`` False when the MAC does not verify.
    """
    local_part, _, domain = addr.strip().strip("<>").lower().rpartition("@")
    if domain not in {d.strip().lower() for d in domains}:
        return None
    prefix = local.strip().lower() + SEPARATOR
    if not local_part.startswith(prefix):
        return None
    match = _TOKEN_RE.fullmatch(local_part[len(prefix) :])
    if match is None:
        return None
    role, kind, digits, mac = match.groups()
    ident = int(digits)
    if len(mac) == DAY_LENGTH + MAC_LENGTH and _is_base36(mac[:DAY_LENGTH]):
        return ReplyToken(kind=kind, ident=ident, role=role, valid=False, mac=mac,
                          issued=int(mac[:DAY_LENGTH], 36))
    return ReplyToken(kind=kind, ident=ident, role=role, valid=_verifies(match, secret),
                      mac=mac)


def verify_binding(token: ReplyToken, secret: bytes, bound: str) -> bool:
    """Whether a bound token was issued for ``bound`` (an address, or :data:`TEAM`)."""
    if token.issued is None or not secret or token.kind not in KINDS or token.role not in ROLES:
        return False
    day = token.mac[:DAY_LENGTH]
    expected = _mac(token.kind, token.ident, token.role, secret, f":{bound.lower()}:{day}")
    return hmac.compare_digest(expected, token.mac[DAY_LENGTH:])


def redact_tokens(text: str) -> str:
    """Hide the MACs of reply addresses in ``text`` (for log lines)."""
    return _REDACT_RE.sub(r"\1…", text)


def _verifies(match: re.Match[str], secret: bytes) -> bool:
    role, kind, digits, mac = match.groups()
    if kind not in KINDS or role not in ROLES or digits != str(int(digits)) or not secret:
        return False
    expected = _mac(kind, int(digits), role, secret)
    return hmac.compare_digest(expected, mac)


def _mac(kind: str, ident: int, role: str, secret: bytes, binding: str = "") -> str:
    message = f"{kind}:{ident}:{role}{binding}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:MAC_LENGTH]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _is_base36(text: str) -> bool:
    return all(ch in "0123456789abcdefghijklmnopqrstuvwxyz" for ch in text)


def _check_parts(*, kind: str, ident: int, role: str, secret: bytes) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}")
    if isinstance(ident, bool) or not isinstance(ident, int) or ident < 0:
        raise ValueError(f"ident must be a non-negative integer, got {ident!r}")
    if not secret:
        raise ValueError("the signing secret must not be empty")
