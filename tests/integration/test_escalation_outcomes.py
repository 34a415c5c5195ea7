"""Outcomes bound to their escalation, through the real pipeline, on both databases.

A case is escalated twice to TikTok; TikTok answers both; each "TikTok answered"
notice carries a practitioner's reply address bound to its own escalation, so an
``#outcome`` in a reply to it applies to that escalation. Every outcome is
confirmed by mail to whoever recorded it, and a reply to the confirmation (or
``mailroom escalations outcome ID VALUE``) corrects it. What each person
received is read from the outbox: the professional, the practitioners, TikTok.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.escalations import open_escalation
from mailroom.store.models import Escalation, OutboxItem, Ticket
from tests.factories import PRACTITIONERS, as_sent, deliver, mail

ANNA, BEN = PRACTITIONERS
TEACHER = "teacher@school.example"
TIKTOK = "tiktok-escalations@example.org"
FIRST = "https://www.tiktok.com/@fakehead"
SECOND = "https://www.tiktok.com/@fakehead2"


# --- helpers that read like the domain ---------------------------------------------------


def rows(app: App, kind: str | None = None) -> list[OutboxItem]:
    with app.sessions() as session:
        found = session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars()
        return [row for row in found if kind in (None, row.kind)]


def received(app: App, address: str) -> list[str]:
    """The kinds of mail ``address`` was sent, oldest first."""
    return [row.kind for row in rows(app) if address in row.rcpt_to]


def text_of(app: App, row: OutboxItem) -> str:
    part = as_sent(app, row).get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def reply_to(app: App, row: OutboxItem) -> str:
    return str(as_sent(app, row)["Reply-To"].addresses[0].addr_spec)


def escalations(app: App) -> dict[int, tuple[str, str | None]]:
    with app.sessions() as session:
        return {e.id: (e.status, e.outcome)
                for e in session.execute(select(Escalation).order_by(Escalation.id)).scalars()}


def case_with_two_tiktok_escalations(app: App) -> tuple[int, int]:
    assert deliver(app, mail(message_id="case@school.example",
                             body=f"Two fake accounts:\n{FIRST}\n{SECOND}\n")) == "created"
    ids = []
    with app.sessions.begin() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        for url in (FIRST, SECOND):
            ids.append(open_escalation(app, session, ticket, "tiktok", urls=[url], context=None,
                                       actor=ANNA).id)
    return ids[0], ids[1]


def tiktok_answers(app: App, eid: int, body: str) -> OutboxItem:
    """TikTok replies to escalation ``eid``; return the practitioners' notice of it."""
    [sent] = [row for row in rows(app, "escalation") if row.escalation_id == eid]
    deliver(app, mail(sender="safety@tiktok.example", name="TikTok Trust and Safety",
                      to=reply_to(app, sent), subject=f"Re: {sent.subject}", body=body,
                      in_reply_to=sent.message_id))
    notice = [row for row in rows(app, "notification") if "TikTok answered" in row.subject][-1]
    return notice


def practitioner_answers(app: App, row: OutboxItem, body: str, *, sender: str = ANNA,
                         message_id: str | None = None) -> None:
    """A practitioner replies to the mail ``row`` (to its Reply-To, threaded to it)."""
    msg: EmailMessage = as_sent(app, row)
    deliver(app, mail(sender=sender, name="Anna Smith", to=reply_to(app, row),
                      subject=f"Re: {msg['Subject']}", body=body, message_id=message_id,
                      in_reply_to=msg["Message-ID"].strip("<>")))


# --- the tests ---------------------------------------------------------------------------


def test_each_outcome_applies_to_the_escalation_whose_notice_was_answered(app: App) -> None:
    first, second = case_with_two_tiktok_escalations(app)
    first_notice = tiktok_answers(app, first, "We removed @fakehead.\n")
    second_notice = tiktok_answers(app, second, "We found no violation on @fakehead2.\n")
    assert reply_to(app, first_notice).startswith(f"helpline+p-e{first}-")
    assert reply_to(app, second_notice).startswith(f"helpline+p-e{second}-")
    assert f"this escalation ({first}) only" in text_of(app, first_notice)

    # answered in the order that used to swap them: the latest escalation's notice last
    practitioner_answers(app, first_notice, "#outcome removed\n", message_id="o1@helpline.example")
    practitioner_answers(app, second_notice, "#outcome declined\n",
                         message_id="o2@helpline.example")
    assert escalations(app) == {first: ("resolved", "removed"), second: ("resolved", "declined")}

    confirmations = rows(app, "outcome")
    assert [row.rcpt_to for row in confirmations] == [[ANNA], [ANNA]]
    one, two = (as_sent(app, row) for row in confirmations)
    assert one["In-Reply-To"] == "<o1@helpline.example>"
    assert two["In-Reply-To"] == "<o2@helpline.example>"
    assert reply_to(app, confirmations[1]).startswith(f"helpline+p-e{second}-")
    assert (f"The outcome of escalation {second} of case HL-000001 to TikTok is recorded: "
            "declined, by anna@helpline.example.") in text_of(app, confirmations[1])
    lines = text_of(app, confirmations[1]).splitlines()
    assert f"- {SECOND}" in lines and f"- {FIRST}" not in lines

    # a correction, by replying to the confirmation
    practitioner_answers(app, confirmations[1], "#outcome restricted\n")
    assert escalations(app) == {first: ("resolved", "removed"),
                                second: ("resolved", "restricted")}
    correction = rows(app, "outcome")[2]
    assert correction.rcpt_to == [ANNA]
    assert "is now restricted (it was declined)" in text_of(app, correction)

    # who received what: nothing of the outcomes reached the professional or TikTok,
    # and the other practitioner only had the notices
    assert received(app, TEACHER) == ["acknowledgement"]
    assert received(app, TIKTOK) == ["escalation", "escalation"]
    assert received(app, BEN) == ["notification", "notification", "notification"]
    assert received(app, ANNA) == ["notification"] * 3 + ["outcome"] * 3


def test_the_case_address_never_guesses_between_two_escalations(app: App) -> None:
    first, second = case_with_two_tiktok_escalations(app)
    tiktok_answers(app, first, "We removed @fakehead.\n")
    tiktok_answers(app, second, "We removed @fakehead2 too.\n")
    [new_case] = [row for row in rows(app, "notification") if "answered" not in row.subject]
    practitioner_answers(app, new_case, "#outcome removed tiktok\n")
    assert escalations(app) == {first: ("responded", None), second: ("responded", None)}
    [report] = rows(app, "command_done")
    assert report.rcpt_to == [ANNA]
    body = " ".join(text_of(app, report).split())
    assert (f"has open escalations {first} (tiktok, responded), {second} (tiktok, responded): "
            "reply to the notice of the one you mean") in body
    assert rows(app, "outcome") == []


def test_a_correction_by_name_when_there_is_one_escalation(app: App) -> None:
    assert deliver(app, mail(body=f"Fake: {FIRST}\n")) == "created"
    with app.sessions.begin() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        eid = open_escalation(app, session, ticket, "tiktok", urls=None, context=None,
                              actor=ANNA).id
    [new_case] = rows(app, "notification")
    practitioner_answers(app, new_case, "#outcome declined tiktok\n")
    practitioner_answers(app, new_case, "#outcome removed tiktok\n")  # used to be refused
    assert escalations(app) == {eid: ("resolved", "removed")}
    assert len(rows(app, "outcome")) == 2 and rows(app, "command_done") == []


def test_cli_lists_escalations_and_corrects_an_outcome(app: App, cli: Any) -> None:
    first, second = case_with_two_tiktok_escalations(app)
    practitioner_answers(app, tiktok_answers(app, first, "Removed.\n"), "#outcome removed\n")

    status, out, err = cli("escalations", "list", "--ticket", "HL-000001", "--json")
    assert status == 0, err
    listed = json.loads(out)
    assert [(v["id"], v["reference"], v["platform"], v["status"], v["outcome"], v["urls"])
            for v in listed] == [(first, "HL-000001", "tiktok", "resolved", "removed", [FIRST]),
                                 (second, "HL-000001", "tiktok", "sent", None, [SECOND])]
    status, out, _ = cli("escalations", "list")
    assert status == 0
    assert out.splitlines()[0].split()[:5] == ["ID", "CASE", "PLATFORM", "STATUS", "OUTCOME"]
    assert len(out.splitlines()) == 3 and "removed" in out.splitlines()[1]

    status, out, err = cli("escalations", "outcome", str(first), "no-action")
    assert status == 0, err
    assert out.startswith(f"escalation {first} of HL-000001 to TikTok: outcome now no_action "
                          "(was removed)")
    assert escalations(app)[first] == ("resolved", "no_action")
    confirmation = rows(app, "outcome")[-1]
    assert sorted(confirmation.rcpt_to) == sorted(PRACTITIONERS)  # the case's practitioners
    assert "is now no action (it was removed), recorded by cli" in text_of(app, confirmation)
    assert reply_to(app, confirmation).startswith(f"helpline+p-e{first}-")


ERRORS = {
    "unknown-escalation": (("escalations", "outcome", "99", "removed"), "no escalation 99"),
    "unknown-outcome": (("escalations", "outcome", "1", "gone"), "unknown outcome 'gone'"),
    "unknown-ticket": (("escalations", "list", "--ticket", "HL-000042"), "no ticket HL-000042"),
}


@pytest.mark.parametrize("args, message", ERRORS.values(), ids=ERRORS.keys())
def test_cli_errors_are_one_line(app: App, cli: Any, args: tuple[str, ...], message: str) -> None:
    case_with_two_tiktok_escalations(app)
    status, out, err = cli(*args)
    assert (status, out) == (1, "") and message in err and err.count("\n") == 1
    assert rows(app, "outcome") == []


def test_a_stranger_with_the_notice_address_records_nothing(app: App) -> None:
    first, _ = case_with_two_tiktok_escalations(app)
    notice = tiktok_answers(app, first, "We removed @fakehead.\n")
    practitioner_answers(app, notice, "#outcome declined\n", sender="mallory@evil.example")
    assert escalations(app)[first] == ("responded", None)
    assert rows(app, "outcome") == [] and received(app, "mallory@evil.example") == []
    assert received(app, TEACHER) == ["acknowledgement"]


def test_a_reply_to_another_practitioners_notice_runs_nothing(app: App) -> None:
    first, _ = case_with_two_tiktok_escalations(app)
    with app.sessions.begin() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        ticket.assignee = ANNA  # the notice goes to Anna alone, bound to her
    notice = tiktok_answers(app, first, "We removed @fakehead.\n")
    assert notice.rcpt_to == [ANNA]
    practitioner_answers(app, notice, "#outcome removed\n", sender=BEN)
    assert escalations(app)[first] == ("responded", None)
    [link] = rows(app, "practitioner_link")
    assert link.rcpt_to == [BEN] and rows(app, "outcome") == []
