"""More of the work by email: each command through the real pipeline, on both databases,
read from what each person was sent (the professional, the practitioner, the other
practitioner, the platform)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.reminders import send_due_reminders
from mailroom.reports.cases import case_report
from mailroom.reports.data import Period, build_report
from mailroom.reports.formats import render
from mailroom.runtime.jobs import EVERY_JOB, SCHEDULED
from mailroom.store.models import Escalation, Event, Reminder
from tests.factories import deliver, mail
from tests.integration.test_practitioner import (
    ANNA,
    TEACHER,
    events,
    open_case,
    outbox,
    outbox_rows,
    plain_body,
    practitioner_reply,
    the_ticket,
)

BEN = "ben@helpline.example"
TIKTOK = "tiktok-escalations@example.org"
FAKE = "https://www.tiktok.com/@fakehead"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def tiktok_case(app: App, **kwargs: object):  # type: ignore[no-untyped-def]
    """A professional reports a fake TikTok account; the practitioners' notification."""
    deliver(app, mail(message_id="case@school.example", subject="Fake account of our head",
                      body=f"Hello,\n\nSomeone made a fake account: {FAKE}\n\nJo\n",
                      **kwargs))  # type: ignore[arg-type]
    [notification] = outbox(app, "notification")
    return notification


def sent_to(app: App, address: str) -> list[str]:
    return [row.kind for row in outbox_rows(app) if address in row.rcpt_to]


def reply(app: App, notification, body: str, **kwargs: object) -> None:  # type: ignore[no-untyped-def]
    deliver(app, practitioner_reply(notification, body, **kwargs))  # type: ignore[arg-type]


# --- priority, spam, out of remit --------------------------------------------------------


def test_priority_is_set_and_audited(app: App) -> None:
    reply(app, open_case(app), "#priority urgent\n")
    assert the_ticket(app).priority == "urgent"
    [event] = events(app, "ticket.priority")
    assert event.detail == {"before": "normal", "after": "urgent"} and event.actor == ANNA
    assert sent_to(app, TEACHER) == ["acknowledgement"]  # nothing relayed


def test_spam_sets_the_case_aside_and_sends_nothing(app: App) -> None:
    reply(app, open_case(app), "#spam\n\nThis is a marketing mail, not a case.\n")
    ticket = the_ticket(app)
    assert ticket.status == "spam" and ticket.closed_at is not None
    assert sent_to(app, TEACHER) == ["acknowledgement"]  # no relay, no closure notice
    assert outbox(app, "command_done") == [] and outbox(app, "command_error") == []


def test_a_test_case_is_set_aside_sends_nothing_and_counts_apart(app: App) -> None:
    notification = open_case(app)
    reply(app, notification, "#test\n\nJust checking the new address works.\n")
    ticket = the_ticket(app)
    assert ticket.status == "test" and ticket.closed_at is not None
    assert sent_to(app, TEACHER) == ["acknowledgement"]  # no relay, no closure notice
    assert outbox(app, "command_done") == [] and outbox(app, "command_error") == []
    today = app.now().astimezone(app.settings.timezone).date()
    report = build_report(app, Period(today, today))
    assert (report.cases.current, report.contacts.current) == (0, 0)
    assert report.set_aside == {"spam": 0, "out_of_remit": 0, "test": 1}
    text = render(case_report(report), "text", app.settings.template_dirs)
    assert "1 more case was set aside (test 1) and is not counted." in " ".join(text.split())


def test_out_of_remit_relays_the_canned_answer_without_a_closure_notice(app: App) -> None:
    reply(app, open_case(app), "#out-of-remit\n#reply out_of_remit\n\nHi Jo,\n")
    assert the_ticket(app).status == "out_of_remit"
    assert sent_to(app, TEACHER) == ["acknowledgement", "relay"]
    [relay] = outbox(app, "relay")
    body = " ".join(plain_body(relay).split())
    assert body.startswith("Hi Jo, Test Helpline supports professionals who work with children")
    assert "We have closed case HL-000001." in body and "#reply" not in body


def test_an_unknown_canned_answer_is_refused_with_the_ones_there_are(app: App) -> None:
    reply(app, open_case(app), "#reply sextortion\n\nHi Jo, see below.\n")
    assert outbox(app, "relay") == []
    [report] = outbox(app, "command_error")
    assert ('#reply: there is no canned answer "sextortion" (one of: out_of_remit, '
            "report_in_app, screenshots)") in plain_body(report)
    assert "> Hi Jo, see below." in plain_body(report)


def test_help_lists_the_commands_and_the_canned_answers_to_the_asker_only(app: App) -> None:
    reply(app, open_case(app), "#help\n")
    [help_mail] = outbox(app, "help")
    assert [a.addr_spec for a in help_mail["To"].addresses] == [ANNA]
    body = plain_body(help_mail)
    assert "  #remind DATE " in body and "  #reply NAME " in body
    assert "  screenshots           Before you report anything" in body
    assert sent_to(app, BEN) == ["notification"] and sent_to(app, TEACHER) == ["acknowledgement"]


# --- merge ---------------------------------------------------------------------------------


def test_merge_of_a_case_that_does_not_exist_is_refused_and_the_answer_held(app: App) -> None:
    reply(app, open_case(app), "#merge HL-000099\n#assign me\n\nHi Jo, an answer.\n")
    assert the_ticket(app).assignee == ANNA
    assert outbox(app, "relay") == []
    [report] = outbox(app, "command_error")
    body = plain_body(report)
    assert "- #merge HL-000099: there is no case HL-000099" in body
    assert "> Hi Jo, an answer." in body


# --- context and evidence for an escalation ----------------------------------------------


def test_context_waits_for_the_next_escalation_and_the_answer_still_goes(app: App) -> None:
    notification = tiktok_case(app)
    reply(app, notification, "#context The account uses the head teacher's photo\n\n"
                             "Hi Jo, we will look at it today.\n")
    [relay] = outbox(app, "relay")
    assert "we will look at it today" in plain_body(relay)
    assert "photo" not in plain_body(relay)  # the context is not for the professional
    assert outbox(app, "escalation") == []

    reply(app, notification, "#escalate tiktok\n")
    [escalation] = outbox(app, "escalation")
    assert [a.addr_spec for a in escalation["To"].addresses] == [TIKTOK]
    body = plain_body(escalation)
    assert "The account uses the head teacher's photo" in body
    assert "we will look at it today" not in body and "Jo" not in body.replace("Jo ", "")
    assert the_ticket(app).escalation_context is None  # used up
    assert sent_to(app, TIKTOK) == ["escalation"]


def test_evidence_attaches_only_the_named_file(app: App) -> None:
    notification = tiktok_case(app, attachments=[
        ("screenshot.png", "image/png", PNG), ("letter.pdf", "application/pdf", b"%PDF-1.4 x")])
    reply(app, notification, "#escalate tiktok\n#evidence Screenshot.PNG\n#note\n")
    [escalation] = outbox(app, "escalation")
    assert [part.get_filename() for part in escalation.iter_attachments()] == ["evidence-1.png"]
    assert sent_to(app, TEACHER) == ["acknowledgement"]


def test_evidence_never_sends_a_withheld_file(app: App) -> None:
    notification = tiktok_case(app, attachments=[("screenshot.png", "image/png", PNG)])
    reply(app, notification, "#withhold\n")
    reply(app, notification, "#escalate tiktok\n#evidence screenshot.png\n#note\n")
    assert outbox(app, "escalation") == [] and sent_to(app, TIKTOK) == []
    [report] = outbox(app, "command_done")
    assert [a.addr_spec for a in report["To"].addresses] == [ANNA]
    assert ("screenshot.png: not a file of the case that may be sent (withheld files never are; "
            "files that may: none)") in " ".join(plain_body(report).split())
    with app.sessions() as session:
        assert session.execute(select(Escalation)).first() is None  # nothing half-opened

    reply(app, notification, "#escalate tiktok\n#evidence\n#note\n")  # all it may: none
    [escalation] = outbox(app, "escalation")
    assert list(escalation.iter_attachments()) == []


def test_withhold_in_the_reply_that_escalates_with_evidence_keeps_the_file_back(
        app: App) -> None:
    notification = tiktok_case(app, attachments=[("screenshot.png", "image/png", PNG)])
    reply(app, notification, "#escalate tiktok\n#evidence screenshot.png\n#withhold\n#note\n")
    [escalation] = outbox(app, "escalation")
    assert list(escalation.iter_attachments()) == []  # decided with it, sent without it
    with app.sessions() as session:
        [withheld] = session.execute(
            select(Event).where(Event.action == "files.withheld")).scalars()
    # The notification of the case, still queued, and the escalation, queued after the command.
    assert withheld.detail["queued_mail"] == 2


def test_evidence_without_an_escalation_says_so(app: App) -> None:
    reply(app, tiktok_case(app), "#evidence\n")
    [report] = outbox(app, "command_done")
    assert "#evidence: there was no #escalate in your reply" in plain_body(report)


# --- reminders ---------------------------------------------------------------------------


def test_remind_mails_the_practitioner_on_the_day_once(app: App) -> None:
    assert any(job.name == "reminders" for job in EVERY_JOB)
    assert any(job.name == "reminders" for job in SCHEDULED)
    reply(app, open_case(app), "#remind tomorrow\n#priority high\n",
          message_id="remind@helpline.example")
    with app.sessions() as session:
        [reminder] = session.execute(select(Reminder)).scalars()
    # Monday 2 March 2026; Tuesday at opening time (10:00 in London, on GMT)
    assert reminder.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert reminder.practitioner == ANNA
    assert send_due_reminders(app) == {}
    app.clock.now = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    assert send_due_reminders(app) == {"sent": 1}
    assert send_due_reminders(app) == {}
    [sent] = outbox(app, "reminder")
    assert [a.addr_spec for a in sent["To"].addresses] == [ANNA]
    assert sent["In-Reply-To"] == "<remind@helpline.example>"
    body = plain_body(sent)
    assert "You asked to be reminded of case HL-000001 today" in body
    assert "priority: high" in body
    assert sent["Reply-To"].addresses[0].addr_spec.startswith("helpline+p-t1-")
    assert sent_to(app, BEN) == ["notification"] and sent_to(app, TEACHER) == ["acknowledgement"]


def test_a_day_that_is_not_one_is_refused(app: App) -> None:
    notification = open_case(app)
    reply(app, notification, "#remind someday\n")
    [report] = outbox(app, "command_error")
    assert '#remind: "someday" is not a day (one of: 2026-03-10, tomorrow' in plain_body(report)
    reply(app, notification, "#remind 2020-01-01\n")
    [_, past] = outbox(app, "command_error")
    assert "#remind 2020-01-01: not a day from today to 366 days ahead" in plain_body(past)
    with app.sessions() as session:
        assert session.execute(select(Reminder)).first() is None
