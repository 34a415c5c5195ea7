"""Contacts and answers within target, from a case the pipeline ran: a professional writes
in and again, a practitioner answers by mail, and the report of the month counts what
happened; it holds figures only, none of the case's words or addresses, in any format."""

from __future__ import annotations

from datetime import date

import pytest

from mailroom.reports.cases import case_report
from mailroom.reports.data import Compliance, Period, build_report
from mailroom.reports.formats import FORMATS, render
from tests.factories import FixedClock, deliver, mail
from tests.integration.test_practitioner import CASE_ID, TEACHER, open_case, practitioner_reply

MARCH_2026 = Period(date(2026, 3, 1), date(2026, 3, 31))


def write_again(body: str) -> bytes:
    return mail(sender=TEACHER, in_reply_to=CASE_ID, subject="Re: Comments about me",
                body=body)


def test_contacts_and_answers_within_target_of_a_real_case(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()  # Monday 2 March 2026, 11:00 in London
    app = make_app(clock=clock)
    notification = open_case(app)  # contact 1; the first answer is due in 8 business hours
    clock.advance(hours=1)
    deliver(app, practitioner_reply(notification, "We are looking at it."))  # within
    clock.advance(hours=1)
    deliver(app, write_again("There is a second account now.\n"))  # contact 2: a clock
    clock.advance(hours=1)
    deliver(app, write_again("And a third one.\n"))  # contact 3: the same clock
    clock.advance(hours=1)
    deliver(app, practitioner_reply(notification, "We have reported both."))  # within
    clock.advance(hours=1)
    # someone not on the case writes into it (contact 4): pending, so no clock starts
    deliver(app, mail(sender="stranger@elsewhere.example", in_reply_to=CASE_ID,
                      subject="Re: Comments about me", body="I saw it too.\n"))
    clock.advance(days=7)
    deliver(app, practitioner_reply(notification, "Thank you all."))  # no clock ran
    clock.advance(hours=1)
    deliver(app, write_again("They are back.\n"))  # contact 5: a clock never answered
    clock.advance(days=7)  # its 16 business hours are long past

    report = build_report(app, MARCH_2026)
    assert (report.cases.current, report.contacts.current) == (1, 5)
    assert report.sla.first == Compliance(met=1, missed=0, pending=0)
    assert report.sla.next == Compliance(met=1, missed=1, pending=0)
    assert report.handling.current == {"advice_only": 1}

    document = case_report(report)
    for fmt in FORMATS:
        shown = render(document, fmt, app.settings.template_dirs)
        for private in ("Parents are posting", "second account", "They are back",
                        "looking at it", "school.example", "elsewhere.example", "HL-",
                        "facebook.com/groups"):
            assert private not in shown, (fmt, private)


@pytest.mark.parametrize("answered", [False, True], ids=["unanswered", "answered"])
def test_a_first_answer_not_yet_due_is_in_no_rate(make_app, answered: bool) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock()
    app = make_app(clock=clock)
    notification = open_case(app)
    clock.advance(hours=2)
    if answered:
        deliver(app, practitioner_reply(notification, "We are looking at it."))
    first = build_report(app, MARCH_2026).sla.first
    expected = Compliance(met=1) if answered else Compliance(pending=1)
    assert first == expected and first.rate == (1.0 if answered else None)
