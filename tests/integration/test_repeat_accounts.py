"""The same account reported in several cases: who is told what.

Three professionals at three schools report one fake TikTok account, each in
another form of its URL. Practitioners learn of the other cases (references
only); the platform learns how many professionals reported it and since when
(no reference, name or address); requesters learn nothing of other cases.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.escalations import open_escalation
from mailroom.cases.views import ticket_detail
from mailroom.privacy.dataprotection import erase_requester
from mailroom.privacy.retention import purge_tickets
from mailroom.reports.cases import case_report
from mailroom.reports.data import Period, build_report
from mailroom.reports.formats import FORMATS, render
from mailroom.store.models import MessageTarget, OutboxItem, Ticket
from tests.factories import FixedClock, as_sent, deliver, mail, ticket_of

REPORTS = [  # who, and how they wrote the account's address
    ("jo@stmarys.example", "https://www.tiktok.com/@FakeHead?lang=en"),
    ("sam@oakfield.example", "tiktok.com/@fakehead/video/7300000000000000001"),
    ("lee@riverside.example", "https://m.tiktok.com/@fakehead/"),
]


def report_all(app: App, clock: FixedClock) -> list[Ticket]:
    for number, (sender, url) in enumerate(REPORTS):
        raw = mail(sender=sender, name="", message_id=f"r{number}@school.example",
                   subject=f"Fake account, school {number}",
                   body=f"Someone is pretending to be our head teacher: {url}\n")
        assert deliver(app, raw) == "created"
        clock.advance(days=1)
    with app.sessions() as session:
        return list(session.execute(select(Ticket).order_by(Ticket.id)).scalars())


def mail_to(app: App, address: str, kind: str) -> list[str]:
    """The plain text of every mail of ``kind`` queued to ``address``."""
    with app.sessions() as session:
        items = session.execute(select(OutboxItem).where(OutboxItem.kind == kind)
                                .order_by(OutboxItem.id)).scalars().all()
    return [str(as_sent(app, i).get_body(("plain",)).get_content()).replace("\r\n", "\n")
            for i in items
            if address in (i.rcpt_to or [])]


def test_practitioners_are_told_of_the_other_cases_and_requesters_are_not(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    app = make_app(clock=clock)
    first, second, third = report_all(app, clock)
    notes = mail_to(app, "anna@helpline.example", "notification")
    assert "reported in" not in notes[0]
    assert (f"This account was reported in 1 other case ({first.reference}): "
            "https://www.tiktok.com/@fakehead") in notes[1]
    assert (f"This account was reported in 2 other cases ({first.reference}, "
            f"{second.reference}): https://www.tiktok.com/@fakehead") in notes[2]
    for sender, _ in REPORTS:
        for text in mail_to(app, sender, "acknowledgement"):
            assert first.reference not in text or sender == REPORTS[0][0]
            assert "reported in" not in text and "other case" not in text
    with app.sessions() as session:
        third_view = ticket_detail(session, session.get(Ticket, third.id))
    assert third_view["repeats"] == [{
        "target": "tiktok:account:fakehead", "url": "https://www.tiktok.com/@fakehead",
        "references": [first.reference, second.reference]}]


def test_the_platform_reads_counts_and_a_date_never_who(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    app = make_app(clock=clock)
    first, second, third = report_all(app, clock)
    with app.sessions.begin() as session:
        ticket = session.get(Ticket, third.id)
        open_escalation(app, session, ticket, "tiktok", urls=None, context=None,
                        actor="anna@helpline.example")
    [text] = mail_to(app, "tiktok-escalations@example.org", "escalation")
    assert ("Reported to us by more than one professional:\n"
            "- https://www.tiktok.com/@fakehead: 3 professionals since Monday 2 March 2026"
            ) in text
    for sender, _ in REPORTS:
        assert sender not in text
    assert first.reference not in text and second.reference not in text


def test_a_single_report_says_nothing_of_repeats(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    assert deliver(app, mail(body="https://www.tiktok.com/@lonely\n")) == "created"
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        open_escalation(app, session, ticket, "tiktok", urls=None, context=None,
                        actor="anna@helpline.example")
    [text] = mail_to(app, "tiktok-escalations@example.org", "escalation")
    assert "more than one professional" not in text


def test_practitioners_urls_are_not_reports(make_app) -> None:  # type: ignore[no-untyped-def]
    """Only what a requester (or anyone writing into a case) sent counts as a report."""
    clock = FixedClock(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    app = make_app(clock=clock)
    report_all(app, clock)
    with app.sessions() as session:
        rows = session.execute(select(MessageTarget.target)).scalars().all()
    assert sorted(rows) == ["tiktok:account:fakehead", "tiktok:account:fakehead",
                            "tiktok:account:fakehead", "tiktok:video:7300000000000000001"]


def test_erasure_and_retention_take_the_reports_with_the_messages(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    app = make_app(clock=clock)
    first, second, third = report_all(app, clock)
    result = erase_requester(app, REPORTS[0][0], actor="admin")
    assert result.counts.reported_targets == 1
    with app.sessions.begin() as session:
        view = ticket_detail(session, session.get(Ticket, third.id))
        assert view["repeats"][0]["references"] == [second.reference]
        counts = purge_tickets(session, [second.id], now=clock())
    assert counts.reported_targets == 2
    with app.sessions() as session:
        assert ticket_detail(session, session.get(Ticket, third.id))["repeats"] == []
    assert ticket_of(app, "r2@school.example") == third.id


def test_the_report_counts_repeat_accounts_and_names_them_only_when_asked(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    app = make_app(clock=clock)
    report_all(app, clock)
    assert deliver(app, mail(sender="kim@elm.example", body="x.com/other_one\n")) == "created"
    period = Period(date(2026, 3, 1), date(2026, 3, 31))
    counted = json.loads(render(case_report(build_report(app, period)), "json",
                                app.settings.template_dirs))
    assert counted["repeat_accounts"] == [
        {"platform": "tiktok", "name": "TikTok", "accounts": 1, "cases": 3}]
    assert "repeated_accounts" not in counted
    for fmt in FORMATS:
        assert "fakehead" not in render(case_report(build_report(app, period)), fmt,
                                        app.settings.template_dirs)
    named = case_report(build_report(app, period, with_accounts=True))
    text = render(named, "text", app.settings.template_dirs)
    assert "https://www.tiktok.com/@fakehead" in text and "other_one" not in text
    assert "Not for publication" in render(named, "html", app.settings.template_dirs)
    listed = json.loads(render(named, "json", app.settings.template_dirs))["repeated_accounts"]
    assert listed == [{"url": "https://www.tiktok.com/@fakehead", "platform": "TikTok",
                       "cases": 3, "first": "2026-03-02", "last": "2026-03-04"}]


def test_cases_set_aside_are_counted_apart_and_nowhere_else(make_app) -> None:  # type: ignore[no-untyped-def]
    """Spam and out-of-remit cases are not the helpline's cases: the report says how many
    were set aside, and leaves them out of every figure, repeat accounts included."""
    clock = FixedClock(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    app = make_app(clock=clock)
    first, second, third = report_all(app, clock)
    with app.sessions.begin() as session:
        session.get(Ticket, first.id).status = "spam"
        session.get(Ticket, second.id).status = "out_of_remit"
    period = Period(date(2026, 3, 1), date(2026, 3, 31))
    report = build_report(app, period)
    assert report.cases.current == 1 and report.by_platform.current == {"tiktok": 1}
    assert report.contacts.current == 1  # the live case's message, not the two set aside
    assert report.set_aside == {"spam": 1, "out_of_remit": 1, "test": 0}
    assert report.repeats == []  # one live case reported the account
    text = render(case_report(report), "text", app.settings.template_dirs)
    assert "2 more cases were set aside (spam 1, out of remit 1) and are not counted." in (
        " ".join(text.split()))
    data = json.loads(render(case_report(report), "json", app.settings.template_dirs))
    assert data["set_aside"] == {"spam": 1, "out_of_remit": 1, "test": 0}
    assert "set_aside,all,spam,1" in render(case_report(report), "csv",
                                            app.settings.template_dirs)
