"""Authentication-Results: a DKIM or DMARC pass for the From domain, from our own header only."""

from __future__ import annotations

import pytest

from mailroom.intake.authresults import (
    authentication_failure,
    check_authentication,
    is_aligned,
    is_trusted_authserv_id,
)

TRUSTED = ("helpline.example",)
ANNA = "Anna Smith <anna@helpline.example>"
OURS = "mx.helpline.example"

CASES = {
    "dmarc-pass": ([f"{OURS}; dmarc=pass (p=reject dis=none) header.from=helpline.example"],
                   ANNA, True, "dmarc"),
    "dkim-pass-aligned": ([f"{OURS}; dkim=pass (2048-bit key; unprotected) "
                           "header.d=helpline.example header.s=sel1 header.b=AbCd"],
                          ANNA, True, "dkim"),
    "dkim-identity-only": ([f"{OURS}; dkim=pass header.i=@helpline.example"], ANNA, True,
                           "dkim"),
    "dkim-subdomain-signer": ([f"{OURS}; dkim=pass header.d=mail.helpline.example"], ANNA,
                              True, "dkim"),
    "dkim-parent-signer": ([f"{OURS}; dkim=pass header.d=helpline.example"],
                           "anna@staff.helpline.example", True, "dkim"),
    "second-signature-passes": ([f"{OURS}; dkim=fail header.d=helpline.example; "
                                 "dkim=pass header.d=helpline.example"], ANNA, True, "dkim"),
    "case-and-version": (["MX.Helpline.Example 1; DKIM=Pass header.d=HELPLINE.example"],
                         "ANNA@Helpline.Example", True, "dkim"),
    "folded-header": ([f"{OURS};\r\n\tdkim=pass\r\n\theader.d=helpline.example"], ANNA, True,
                      "dkim"),
    "gmail-style": ([f"{OURS}; dkim=pass header.i=@helpline.example header.s=google "
                     "header.b=Qx1; spf=pass (helpline.example: domain of anna@helpline.example"
                     " designates 209.85.220.41 as permitted sender) "
                     "smtp.mailfrom=anna@helpline.example; dmarc=pass (p=REJECT sp=REJECT "
                     "dis=NONE) header.from=helpline.example"], ANNA, True, "dmarc"),
    "dkim-other-domain": ([f"{OURS}; dkim=pass header.d=evil.example"], ANNA, False,
                          "no-pass"),
    "dkim-lookalike-domain": ([f"{OURS}; dkim=pass header.d=xhelpline.example"], ANNA, False,
                              "no-pass"),
    "dkim-top-level-domain": ([f"{OURS}; dkim=pass header.d=example"], ANNA, False, "no-pass"),
    "dmarc-other-domain": ([f"{OURS}; dmarc=pass header.from=evil.example"], ANNA, False,
                           "no-pass"),
    "dmarc-without-header-from": ([f"{OURS}; dmarc=pass"], ANNA, False, "no-pass"),
    "spf-only": ([f"{OURS}; spf=pass smtp.mailfrom=helpline.example"], ANNA, False, "no-pass"),
    "failures": ([f"{OURS}; dkim=fail header.d=helpline.example; "
                  "dmarc=fail header.from=helpline.example"], ANNA, False, "no-pass"),
    "none": ([f"{OURS}; none"], ANNA, False, "no-pass"),
    "no-headers": ([], ANNA, False, "no-trusted-header"),
    "untrusted-authserv-id": (["mx.evil.example; dkim=pass header.d=helpline.example"], ANNA,
                              False, "no-trusted-header"),
    "lookalike-authserv-id": (["mx.evilhelpline.example; dmarc=pass "
                               "header.from=helpline.example"], ANNA, False,
                              "no-trusted-header"),
    "forged-below-ours": ([f"{OURS}; dkim=none", f"{OURS}; dkim=pass header.d=helpline.example"],
                          ANNA, False, "no-pass"),
    "untrusted-above-ours": (["mx.evil.example; dkim=pass header.d=helpline.example",
                              f"{OURS}; dkim=fail header.d=helpline.example"], ANNA, False,
                             "no-pass"),
    "ours-below-an-untrusted-one": (["relay.other.example; dkim=fail",
                                     f"{OURS}; dkim=pass header.d=helpline.example"], ANNA,
                                    True, "dkim"),
    "ours-unparseable-never-falls-through": (
        [f"{OURS}; dkim=pass header.d=helpline.example ;;; ===",
         f"{OURS}; dkim=pass header.d=helpline.example"], ANNA, False, "unparseable"),
    "no-sender": ([f"{OURS}; dkim=pass header.d=helpline.example"], None, False, "no-sender"),
}


@pytest.mark.parametrize("headers, sender, passed, reason", CASES.values(), ids=CASES.keys())
def test_check_authentication(
    headers: list[str], sender: str | None, passed: bool, reason: str
) -> None:
    verdict = check_authentication(headers, sender, trusted=TRUSTED)
    assert (verdict.passed, verdict.reason) == (passed, reason)


def test_verdict_names_the_header_it_read() -> None:
    verdict = check_authentication(["relay.other.example; none", f"{OURS}; dkim=fail"], ANNA,
                                   trusted=TRUSTED)
    assert verdict.authserv_id == OURS


TRUST = {
    "exact": ("helpline.example", True),
    "host-under-it": ("mx1.helpline.example", True),
    "trailing-dot": ("mx.helpline.example.", True),
    "lookalike": ("evilhelpline.example", False),
    "parent": ("example", False),
    "empty": ("", False),
}


@pytest.mark.parametrize("authserv_id, trusted", TRUST.values(), ids=TRUST.keys())
def test_is_trusted_authserv_id(authserv_id: str, trusted: bool) -> None:
    assert is_trusted_authserv_id(authserv_id, TRUSTED) is trusted


ALIGNMENT = {
    "same": ("school.example", "school.example", True),
    "signer-parent": ("school.example", "mail.school.example", True),
    "signer-child": ("mail.school.example", "school.example", True),
    "sibling": ("a.school.example", "b.school.example", False),
    "bare-tld": ("example", "school.example", False),
    "empty": ("", "school.example", False),
}


@pytest.mark.parametrize("signer, domain, aligned", ALIGNMENT.values(), ids=ALIGNMENT.keys())
def test_is_aligned(signer: str, domain: str, aligned: bool) -> None:
    assert is_aligned(signer, domain) is aligned


JO = "Jo <jo@school.example>"
FAILURES = {
    "dmarc-fail": (f"{OURS}; dmarc=fail (p=none) header.from=school.example", "dmarc=fail"),
    "dkim-and-spf-fail": (f"{OURS}; dkim=fail header.d=school.example; "
                          "spf=fail smtp.mailfrom=school.example", "dkim and spf failed"),
    "unsigned-and-spf-fail": (f"{OURS}; spf=fail smtp.mailfrom=jo@school.example",
                              "dkim and spf failed"),
    "spf-fail-but-dkim-pass": (f"{OURS}; dkim=pass header.d=school.example; "
                               "spf=fail smtp.mailfrom=school.example", None),
    "spf-fail-for-another-domain": (f"{OURS}; spf=fail smtp.mailfrom=bulk.example", None),
    "softfail-is-not-fail": (f"{OURS}; dkim=none; spf=softfail smtp.mailfrom=school.example",
                             None),
    "dmarc-fail-of-another-domain": (f"{OURS}; dmarc=fail header.from=other.example", None),
    "untrusted-header": ("mx.evil.example; dmarc=fail header.from=school.example", None),
    "unparseable": (f"{OURS}; dmarc=fail header.from=school.example (((", None),
    "pass": (f"{OURS}; dmarc=pass header.from=school.example", None),
}


@pytest.mark.parametrize(("header", "reason"), FAILURES.values(), ids=FAILURES.keys())
def test_authentication_failure(header: str, reason: str | None) -> None:
    assert authentication_failure([header], JO, trusted=TRUSTED) == reason


def test_only_the_topmost_trusted_header_counts_for_a_failure() -> None:
    headers = [f"{OURS}; dmarc=pass header.from=school.example",
               f"{OURS}; dmarc=fail header.from=school.example"]
    assert authentication_failure(headers, JO, trusted=TRUSTED) is None
