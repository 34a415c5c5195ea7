"""Did the From domain pass DKIM or DMARC? Read from ``Authentication-Results``.

With ``practitioners.require_authentication`` a practitioner's reply runs
commands only when the receiving side vouches for its From domain: an
``Authentication-Results`` header (RFC 8601) that says ``dmarc=pass`` for
``header.from`` = the From domain, or ``dkim=pass`` for a signing domain
(``header.d``, else the domain of ``header.i``) aligned with it (the same
domain, or one a parent of the other: DMARC's relaxed alignment without the
public-suffix list; a bare top-level domain never aligns).

Which header is trusted. Anyone can write an ``Authentication-Results`` header
into the mail they send, so only one header is read: **the topmost one whose
authserv-id is trusted** (equal to a trusted name, or a host under it, so
``mx1.helpline.example`` is trusted through ``helpline.example``). Receiving
servers prepend their header, so the topmost trusted one is the one our own
border added last; headers below it, and headers from other authserv-ids, are
ignored (RFC 8601 section 5). If that header cannot be parsed the answer is
"no": a lower, possibly forged, header is never used in its place.

This is only sound when the receiving MTA (or the mailbox provider behind the
IMAP door) adds such a header to every message and removes ones that arrive
with its own authserv-id, as RFC 8601 section 5 asks. The built-in SMTP door
does not check DKIM itself: put a verifying MTA in front of it before turning
``require_authentication`` on.

Pure: the caller passes the header values (top first), the From address and
the trusted authserv-ids.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import authres

__all__ = ["AuthVerdict", "authentication_failure", "check_authentication",
           "is_trusted_authserv_id"]

PASS = "pass"


@dataclass(frozen=True)
class AuthVerdict:
    """The answer and why: ``dkim``/``dmarc`` when it passed, else the reason it did not."""

    passed: bool
    reason: str  # dkim, dmarc, no-sender, no-trusted-header, unparseable, no-pass
    authserv_id: str | None = None


def check_authentication(
    headers: Sequence[str], from_address: str | None, *, trusted: Collection[str]
) -> AuthVerdict:
    """Read the topmost trusted header (``headers`` top first) for a pass for ``from_address``."""
    domain = _domain(from_address or "")
    if not domain:
        return AuthVerdict(False, "no-sender")
    for value in headers:
        authserv_id = _authserv_id(value)
        if not is_trusted_authserv_id(authserv_id, trusted):
            continue
        parsed = _parse(value)
        if parsed is None:
            return AuthVerdict(False, "unparseable", authserv_id)
        method = passing_method(parsed.results, domain)
        return AuthVerdict(method is not None, method or "no-pass", authserv_id)
    return AuthVerdict(False, "no-trusted-header")


def authentication_failure(
    headers: Sequence[str], from_address: str | None, *, trusted: Collection[str]
) -> str | None:
    """Why the topmost trusted header says the From domain failed, or None.

    A failure is ``dmarc=fail`` for the From domain, or no aligned DKIM pass
    together with ``spf=fail`` for an envelope domain aligned with it (SPF
    failing for some other domain says nothing about the From). A header that
    cannot be parsed, or none from a trusted authserv-id, is no verdict: None.
    """
    domain = _domain(from_address or "")
    if not domain:
        return None
    for value in headers:
        if not is_trusted_authserv_id(_authserv_id(value), trusted):
            continue
        if "fail" not in value.lower():
            return None  # no result in it fails (what failing_reason would find), unparsed
        parsed = _parse(value)
        return failing_reason(parsed.results, domain) if parsed is not None else None
    return None


def failing_reason(results: Sequence[object], domain: str) -> str | None:
    """``dmarc=fail`` or ``dkim and spf failed`` for ``domain``, else None."""
    found = [r for r in results if isinstance(r, authres.AuthenticationResult)]
    for result in found:
        if (_has_result(result, "dmarc", "fail")
                and _domain(_prop(result, "header", "from")) == domain):
            return "dmarc=fail"
    if passing_method(found, domain) is not None:
        return None
    for result in found:
        mailfrom = _domain(_prop(result, "smtp", "mailfrom") or _prop(result, "smtp", "helo"))
        if _has_result(result, "spf", "fail") and (not mailfrom or is_aligned(mailfrom, domain)):
            return "dkim and spf failed"
    return None


def _has_result(result: authres.AuthenticationResult, method: str, value: str) -> bool:
    return str(result.method).lower() == method and str(result.result).lower() == value


def is_trusted_authserv_id(authserv_id: str | None, trusted: Collection[str]) -> bool:
    """Equal to a trusted name or a host under it (case-insensitive)."""
    if not authserv_id:
        return False
    name = authserv_id.lower().rstrip(".")
    for entry in trusted:
        entry = entry.lower().strip().rstrip(".")
        if entry and (name == entry or name.endswith("." + entry)):
            return True
    return False


def passing_method(results: Sequence[object], domain: str) -> str | None:
    """``dmarc`` or ``dkim`` when a result passes for ``domain``, else None."""
    found = [r for r in results if isinstance(r, authres.AuthenticationResult)]
    for result in found:
        if _is_pass(result, "dmarc") and _domain(_prop(result, "header", "from")) == domain:
            return "dmarc"
    for result in found:
        if _is_pass(result, "dkim") and is_aligned(_dkim_domain(result), domain):
            return "dkim"
    return None


def is_aligned(signer: str, domain: str) -> bool:
    """The same domain, or one is a parent of the other (never a bare TLD)."""
    if not signer or not domain or "." not in signer or "." not in domain:
        return False
    return signer == domain or domain.endswith("." + signer) or signer.endswith("." + domain)


def _is_pass(result: authres.AuthenticationResult, method: str) -> bool:
    return str(result.method).lower() == method and str(result.result).lower() == PASS


def _dkim_domain(result: authres.AuthenticationResult) -> str:
    signer = _prop(result, "header", "d")
    return _domain(signer) if signer else _domain(_prop(result, "header", "i"))


def _prop(result: authres.AuthenticationResult, ptype: str, name: str) -> str:
    for prop in result.properties:
        if str(prop.type).lower() == ptype and str(prop.name).lower() == name:
            return str(prop.value or "")
    return ""


def _domain(value: str) -> str:
    """``Anna <a@X.org>`` / ``@x.org`` / ``x.org`` → ``x.org``."""
    text = value.strip().strip("<>").rsplit("@", 1)[-1]
    return text.strip().strip("<>").lower().rstrip(".")


def _authserv_id(value: str) -> str | None:
    """The authserv-id, read leniently (also from a header authres cannot parse)."""
    head = value.split(";", 1)[0].strip()
    words = head.split()
    return words[0].lower() if words else None


def _parse(value: str) -> authres.AuthenticationResultsHeader | None:
    try:
        return authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    except (authres.AuthResError, ValueError, IndexError, AttributeError):
        return None
