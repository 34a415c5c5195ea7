"""Programs' addresses never get an acknowledgement, whatever the classifier said:
every form the helpline must never answer, and the reason recorded for each."""

from __future__ import annotations

import pytest

from mailroom.cases.replies import address_refusal

PROGRAMS = {
    "mailer-daemon": ("MAILER-DAEMON@mx.example.org", "sam@example.net", "noreply"),
    "mailer-daemon-bare": ("mailer-daemon", None, "noreply"),
    "postmaster": ("postmaster@example.org", None, "noreply"),
    "Postmaster-capitals": ("Postmaster@Example.org", None, "noreply"),
    "list-admin": ("parents-admin@lists.example.org", None, "list-role"),
    "list-bounces": ("parents-bounces@lists.example.org", None, "noreply"),
    "list-bounces-verp": ("parents-bounces+jo=school.example@lists.example.org", None, "noreply"),
    "list-request": ("parents-request@lists.example.org", None, "list-role"),
    "list-owner": ("parents-owner@lists.example.org", None, "list-role"),
    "noreply": ("noreply@platform.example.com", None, "noreply"),
    "no-reply": ("no-reply@sns.amazonaws.com", None, "noreply"),
    "no_reply": ("no_reply@example.com", None, "noreply"),
    "donotreply": ("do-not-reply@example.com", None, "noreply"),
    "exchange-online": ("MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@school.example", None,
                        "noreply"),
    "listserv": ("LISTSERV@LISTSERV.UNI.EXAMPLE.EDU", None, "list-role"),
    "majordomo": ("Majordomo@lists.example.org", None, "list-role"),
    "mailman": ("mailman@lists.example.org", None, "list-role"),
    "sympa": ("sympa@lists.example.fr", None, "list-role"),
    "empty-envelope": ("jo@school.example", "", "null-sender"),
    "angle-envelope": ("jo@school.example", "<>", "null-sender"),
    "spaced-angle-envelope": ("jo@school.example", " <> ", "null-sender"),
    "envelope-mailer-daemon": ("jo@school.example", "MAILER-DAEMON@mx.example.org",
                               "envelope-noreply"),
    "envelope-postmaster": ("jo@school.example", "postmaster@example.org", "envelope-noreply"),
    "envelope-bounces": ("jo@school.example", "parents-bounces@lists.example.org",
                         "envelope-noreply"),
    "envelope-request": ("jo@school.example", "parents-request@lists.example.org",
                         "envelope-list-role"),
    "envelope-admin": ("jo@school.example", "parents-admin@lists.example.org",
                       "envelope-list-role"),
    "envelope-noreply": ("jo@school.example", "no-reply@example.com", "envelope-noreply"),
}


@pytest.mark.parametrize(("sender", "envelope", "reason"), PROGRAMS.values(), ids=PROGRAMS.keys())
def test_a_programs_address_is_refused_with_its_reason(
    sender: str, envelope: str | None, reason: str
) -> None:
    assert address_refusal(sender, envelope) == reason


@pytest.mark.parametrize(
    ("sender", "envelope"),
    [
        ("jo@school.example", None),
        ("jo@school.example", "jo@school.example"),
        ("admin@school.example", "admin@school.example"),  # a person called admin
        ("request@example.org", None),
        ("sam.noreplyson@example.net", None),
        ("listservice.team@example.org", None),
    ],
)
def test_a_persons_address_is_not_refused(sender: str, envelope: str | None) -> None:
    assert address_refusal(sender, envelope) is None
