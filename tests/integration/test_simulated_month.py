"""A helpline's month through the real interfaces: the SMTP door and ``mailroom tick``.

March 2026 (the helpline opens 10:00–16:00, Monday to Friday, in London). A teacher
writes from Gmail about a fake account of her on TikTok; a police officer writes from
Outlook about the sextortion of a pupil on Instagram; a foster carer writes from her
phone about bullying on Facebook, with the social worker in copy; a colleague sends a
test mail; a parent writes about a game. The practitioners answer from their mail
client with commands; TikTok answers with its case number and an outcome; Instagram
never answers. Every message goes through the SMTP door over loopback; every piece of
work is done by ``mailroom tick --now`` at the simulated time, which processes the
inbox, chases platforms, sends reminders and the daily digest, and delivers the outbox
into the file transport.

What is asserted is what each person received, read from the delivered files by their
envelope recipients: that everybody got what they should, and nobody got what they
should not (the professionals never see each other's cases, the practitioners' notes or
commands; the platforms never see a professional's address). At the end, the month's
report gives the figures of what happened.
"""

from __future__ import annotations

import email
import json
import smtplib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from mailroom.app import App
from mailroom.doors.smtp import SmtpDoor
from tests.factories import PRACTITIONERS, mail
from tests.integration.test_delivery_failures import dsn
from tests.integration.test_smtp_door import start_door

HELPLINE = "helpline@helpline.example"
ANNA, BEN = PRACTITIONERS
TARA = "tara.jones@gmail.example"  # a teacher, from Gmail
OFFICER = "pc.khan@police.example"  # a police officer, from Outlook
CARER = "mel.foster@icloud.example"  # a foster carer, from her phone
SOCIAL_WORKER = "sam.worker@council.example"  # in copy of the carer's mail; the address is dead
COLLEAGUE = "it@helpline.example"  # a test mail
PARENT = "worried.parent@home.example"
SUPERVISOR = "head.of.service@helpline.example"  # gets a copy when an answer is late
TIKTOK = "tiktok-escalations@example.org"
INSTAGRAM = "instagram-escalations@example.org"
TIKTOK_SAFETY = "safety@tiktok.example"  # where TikTok's answers come from

FAKE_ACCOUNT = "https://www.tiktok.com/@mrs.jones.teacher"
BLACKMAILER = "https://www.instagram.com/pay.or.else.2026"
BULLYING_POST = "https://www.facebook.com/groups/4455/posts/7788"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March 2026 (London is on GMT until the 29th)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


class Month:
    """The helpline's mail, as its users see it: they send through the door and read
    what reached them."""

    def __init__(self, app: App, door: SmtpDoor, cli: Callable[..., tuple[int, str, str]],
                 sent: Path) -> None:
        self.app, self.door, self.cli, self.sent = app, door, cli, sent
        self.seen: set[str] = set()
        self.mailbox: dict[str, list[EmailMessage]] = defaultdict(list)
        self.now = at(1, 12)

    def send(self, raw: bytes, *, mail_from: str, rcpt_to: tuple[str, ...] = (HELPLINE,)
             ) -> None:
        with smtplib.SMTP("127.0.0.1", self.door.port) as client:
            assert client.sendmail(mail_from, list(rcpt_to), raw) == {}

    def tick(self, moment: datetime) -> dict[str, list[EmailMessage]]:
        """Run every due job at ``moment``; what each address received, by address."""
        self.now = moment
        status, out, err = self.cli("tick", "--now", moment.isoformat(), "--json")
        assert status == 0, err
        return self.delivered()

    def delivered(self) -> dict[str, list[EmailMessage]]:
        new: dict[str, list[EmailMessage]] = defaultdict(list)
        for path in sorted(self.sent.glob("*.eml")) if self.sent.exists() else []:
            if path.name in self.seen:
                continue
            self.seen.add(path.name)
            msg = email.message_from_bytes(path.read_bytes(), policy=default)
            assert isinstance(msg, EmailMessage)
            for rcpt in str(msg["X-Mailroom-Rcpt-To"]).split(","):
                new[rcpt.strip()].append(msg)
                self.mailbox[rcpt.strip()].append(msg)
        return new

    def everything_to(self, address: str) -> str:
        """All that ``address`` ever received, headers and text, as one string."""
        return "\n".join(str(m) + text(m) for m in self.mailbox[address])


def text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None, msg
    return str(part.get_content()).replace("\r\n", "\n")


def text_of_all(month: Month, address: str) -> str:
    return "\n".join(text(m) for m in month.mailbox[address])


def reply_to(msg: EmailMessage) -> str:
    return str(msg["Reply-To"].addresses[0].addr_spec)


def answer(msg: EmailMessage, body: str, *, sender: str, name: str, when: datetime,
           **kwargs: Any) -> bytes:
    """``sender`` replies to ``msg`` from a mail client (to its Reply-To, threaded)."""
    subject = str(msg["Subject"]).strip()
    subject = subject if subject.startswith("Re:") else f"Re: {subject}"
    return mail(sender=sender, name=name, to=reply_to(msg), subject=subject,
                body=body, in_reply_to=msg["Message-ID"].strip("<>"), date=when, **kwargs)


def only(received: dict[str, list[EmailMessage]], address: str) -> EmailMessage:
    [msg] = received[address]
    return msg


def subjects(received: dict[str, list[EmailMessage]]) -> dict[str, list[str]]:
    return {who: [str(m["Subject"]) for m in msgs] for who, msgs in received.items()}


@pytest.fixture
def month(make_app, tmp_path: Path, cli) -> Iterator[Month]:  # type: ignore[no-untyped-def]
    app = make_app(digest={"enabled": True}, sla={"supervisor": SUPERVISOR})
    # the cli fixture reads the config the app above wrote (the same file)
    door = start_door(app)
    try:
        yield Month(app, door, cli, tmp_path / "var" / "outbox-sent")
    finally:
        door.stop()


def test_a_month_of_helpline_work(month: Month) -> None:
    # --- Monday 2 March: a teacher writes from Gmail about a fake account of her ----------
    month.send(mail(sender=TARA, name="Tara Jones",
                    subject="Fake TikTok account pretending to be me",
                    body=f"Hello,\n\nSomeone has made a TikTok account using my name and photo "
                         f"and is posting about my pupils: {FAKE_ACCOUNT}\n\nI am a teacher at "
                         "Hillside Primary. What can I do?\n\nTara\n",
                    message_id="tara1@gmail.example", date=at(2, 9, 15)), mail_from=TARA)
    got = month.tick(at(2, 9, 20))
    print(subjects(got))
    ack = only(got, TARA)
    notification = only(got, ANNA)
    assert got[BEN] == [notification]
    assert "999" in text(ack)

    # --- 10:40: Anna answers from Outlook: assigns, categorises, escalates with context -----
    month.send(answer(notification, "#assign me\n#category impersonation\n#escalate tiktok\n"
                      "#context The account uses her staff photo from the school website and "
                      "names three of her pupils.\n\nHi Tara,\n\nThank you for telling us. We "
                      "have reported the account to TikTok and will let you know what they "
                      "say.\n\nAnna\n", sender=ANNA, name="Anna Smith", when=at(2, 10, 40)),
               mail_from=ANNA)
    got = month.tick(at(2, 10, 45))
    [relay] = [m for m in got[TARA] if "Thank you for telling us" in text(m)]
    assert "#" not in text(relay) and "staff photo" not in text(relay)
    tiktok = only(got, TIKTOK)
    assert FAKE_ACCOUNT in text(tiktok) and "staff photo from the school website" in text(tiktok)
    digest_monday = only(got, ANNA)
    assert got[BEN] == [digest_monday] and "day's work" in str(digest_monday["Subject"])

    # --- Tuesday 3 March: a police officer writes from Outlook about sextortion ------------
    month.send(mail(sender=OFFICER, name="PC Asha Khan", subject="Pupil being blackmailed",
                    body="Good morning,\n\nI am the schools liaison officer for Eastbrook. A "
                         "year 9 pupil is being blackmailed with nude images by this Instagram "
                         f"account: {BLACKMAILER}\nThe account demands money. We have opened "
                         "an investigation and need the account preserved and removed.\n\n"
                         "PC Asha Khan\nEastbrook Police\n",
                    message_id="khan1@police.example", date=at(3, 8, 50)), mail_from=OFFICER)
    got = month.tick(at(3, 9, 0))
    assert len(got[OFFICER]) == 2  # the acknowledgement, and what to do about sextortion
    ack, signposting = got[OFFICER]
    assert "HL-000002" in text(ack) and "999" in text(ack)
    assert "Do not pay" in text(signposting) and "CEOP" in text(signposting)
    notification, warning = got[ANNA]
    assert got[BEN] == [notification, warning]
    assert "category: sextortion" in text(notification) and "priority: URGENT" in text(notification)
    # urgent: the answer is due an opening hour after opening, so the warning goes at once
    assert "Due soon: first answer of HL-000002" in str(warning["Subject"])
    assert "HL-000002: the first answer is due Tuesday 3 March 2026 at 11:00 GMT" in text(warning)
    assert OFFICER not in text(warning) and "blackmailed with" not in text(warning)

    # --- 10:30: Ben takes it, escalates to Instagram with the local context -----------------
    month.send(answer(notification, "#assign me\n#escalate instagram\n#context A police "
                      "investigation is open; the pupil is 14. Please preserve the account's "
                      "data for the police.\n\nDear PC Khan,\n\nWe have escalated the account "
                      "to Instagram as a priority and asked them to preserve its data.\n\nBen\n",
                      sender=BEN, name="Ben Okafor", when=at(3, 10, 30)), mail_from=BEN)
    got = month.tick(at(3, 10, 35))
    instagram = only(got, INSTAGRAM)
    assert BLACKMAILER in text(instagram) and "preserve the account's data" in text(instagram)
    assert "Category: sextortion" in text(instagram)
    [relay] = [m for m in got[OFFICER] if "escalated the account" in text(m)]
    assert "#" not in text(relay) and "the pupil is 14" not in text(relay)

    # --- Wednesday 4 March, evening: a foster carer writes from her phone -----------------
    month.send(mail(sender=CARER, name="Mel Foster", cc=[SOCIAL_WORKER],
                    subject="My foster daughter is being bullied",
                    body="Hi, the girl I foster (13) is being bullied in a Facebook group, they "
                         f"post pictures of her with nasty comments {BULLYING_POST} she won't go "
                         "to school. Her social worker Sam is copied in.\n\nMel\n\nSent from "
                         "my iPhone\n", message_id="mel1@icloud.example", date=at(4, 20, 10)),
               mail_from=CARER, rcpt_to=(HELPLINE,))
    got = month.tick(at(4, 20, 15))
    assert set(got) == {CARER, ANNA, BEN}  # the social worker in copy is not sent anything yet
    assert "HL-000003" in text(only(got, CARER))
    carer_notification = only(got, ANNA)
    assert f"Not receiving answers: {SOCIAL_WORKER}" in text(carer_notification)

    # --- Thursday 5 March: the digest at opening time; TikTok answers -----------------------
    got = month.tick(at(5, 10, 0))
    assert set(got) == {ANNA, BEN}
    digest_thursday = only(got, ANNA)
    assert "day's work, Thursday 5 March" in str(digest_thursday["Subject"])
    assert ("OPEN, DUE LATER (1)\n- HL-000003  My foster daughter is being bullied  | "
            "unassigned | first answer due Friday 6 March 2026 at 12:00 GMT"
            ) in text(digest_thursday)
    assert CARER not in text(digest_thursday)  # references, subjects and assignees only
    [escalation] = month.mailbox[TIKTOK]
    month.send(answer(escalation, "Hello,\n\nThank you for your report. Your case number is "
                      "7788123456.\n\nWe have reviewed the account and removed it for "
                      "violating our policy on impersonation.\n\nTikTok Trust and Safety\n",
                      sender=TIKTOK_SAFETY, name="TikTok Trust and Safety", when=at(5, 10, 50)),
               mail_from=TIKTOK_SAFETY)
    got = month.tick(at(5, 11, 0))
    assert set(got) == {ANNA}  # the assignee
    tiktok_answered = only(got, ANNA)
    assert "TikTok answered" in str(tiktok_answered["Subject"])
    assert "7788123456" in text(tiktok_answered)

    # --- 11:20: Anna records the outcome, tells Tara and closes the case --------------------
    month.send(answer(tiktok_answered, "#outcome removed\n#close\n\nHi Tara,\n\nTikTok has "
                      "removed the account. Please tell us if it comes back.\n\nAnna\n",
                      sender=ANNA, name="Anna Smith", when=at(5, 11, 20)), mail_from=ANNA)
    got = month.tick(at(5, 11, 25))
    assert set(got) == {ANNA, TARA}
    assert "Outcome removed recorded" in str(only(got, ANNA)["Subject"])
    relay, closure = got[TARA]
    assert "TikTok has removed the account" in text(relay) and "#" not in text(relay)
    assert "We have now closed case HL-000001" in text(closure)

    # --- 11:30: Anna answers the carer and lets the social worker receive the answers -------
    month.send(answer(carer_notification, f"#allow {SOCIAL_WORKER}\n#category bullying\n\n"
                      "Dear Mel,\n\nI am sorry to hear this. Please do not reply to the posts; "
                      "we will look at the group today.\n\nAnna\n",
                      sender=ANNA, name="Anna Smith", when=at(5, 11, 30)), mail_from=ANNA)
    got = month.tick(at(5, 11, 35))
    assert set(got) == {CARER, SOCIAL_WORKER}
    [to_carer] = got[CARER]
    assert got[SOCIAL_WORKER] == [to_carer]  # one mail, the worker in copy
    assert "please do not reply to the posts" in text(to_carer).lower()

    # --- 11:50: the copy bounces (the social worker has left) -----------------------------
    month.send(dsn(to_carer, SOCIAL_WORKER), mail_from="")
    got = month.tick(at(5, 11, 55))
    assert set(got) == {ANNA, BEN}  # nobody is assigned: the team is told, once
    failed = only(got, ANNA)
    assert f"could not be delivered to {SOCIAL_WORKER}" in text(failed)

    # --- Friday 6 March: the carer writes again from her phone ------------------------------
    month.send(answer(to_carer, "Thank you. They have posted another one today "
                      "https://www.facebook.com/groups/4455/posts/7799\n\nSent from my iPhone\n",
                      sender=CARER, name="Mel Foster", when=at(6, 9, 40)), mail_from=CARER)
    got = month.tick(at(6, 10, 0))
    follow_up = [m for m in got[ANNA] if "Follow-up on HL-000003" in text(m)][0]
    assert f"Your answer goes to: {CARER}\n" in text(follow_up)
    assert f"Mail bounces, sent nothing: {SOCIAL_WORKER}" in text(follow_up)
    assert "SLA due: Tuesday 10 March 2026 at 14:00 GMT" in text(follow_up)
    digest_friday = [m for m in got[ANNA] if "day's work" in str(m["Subject"])][0]
    assert f"{SOCIAL_WORKER} since Thursday 5 March" in text(digest_friday)
    assert SOCIAL_WORKER not in got  # nothing more to the address that bounces

    # --- a colleague's test mail, and a parent's question about a game ----------------------
    month.send(mail(sender=COLLEAGUE, name="IT Support", subject="test",
                    body="test, please ignore\n", message_id="test1@school-it.example",
                    date=at(6, 10, 30)), mail_from=COLLEAGUE)
    month.send(mail(sender=PARENT, name="A Parent", subject="Roblox question",
                    body="My son spends too long on Roblox, how do I set limits?\n",
                    message_id="parent1@home.example", date=at(6, 10, 31)), mail_from=PARENT)
    got = month.tick(at(6, 10, 35))
    [test_notification] = [m for m in got[BEN] if "test, please ignore" in text(m)]
    [parent_notification] = [m for m in got[BEN] if "Roblox" in text(m)]
    month.send(answer(test_notification, "#spam\n", sender=BEN, name="Ben Okafor",
                      when=at(6, 10, 40)), mail_from=BEN)
    month.send(answer(parent_notification, "#out-of-remit\n#reply out_of_remit\n\nDear parent,"
                      "\n", sender=BEN, name="Ben Okafor", when=at(6, 10, 41)), mail_from=BEN)
    got = month.tick(at(6, 10, 45))
    assert set(got) == {PARENT}  # the test mail is set aside as spam: nothing more is sent
    to_parent = only(got, PARENT)
    assert text(to_parent).startswith("Dear parent,\n\nTest Helpline supports professionals")
    assert "We have closed case HL-000005" in text(to_parent)

    # --- Monday 9 March: a typo in a command does not lose Ben's words ----------------------
    [police_case] = [m for m in month.mailbox[BEN] if "New case HL-000002" in text(m)]
    month.send(answer(police_case, "#role police\n#category sextortin\n\nDear PC Khan,\n\n"
                      "Instagram has not answered yet; we will chase them tomorrow.\n\nBen\n",
                      sender=BEN, name="Ben Okafor", when=at(9, 11, 0)), mail_from=BEN)
    got = month.tick(at(9, 11, 5))
    assert OFFICER not in got
    [report] = [m for m in got[BEN] if "a command was refused" in text(m)]
    assert '"sextortin" is not a category (one of: ' in text(report)
    assert "> Instagram has not answered yet; we will chase them tomorrow." in text(report)
    assert all(m["Subject"] != report["Subject"] for m in got[ANNA])  # only to who wrote it
    month.send(answer(report, "#send\n", sender=BEN, name="Ben Okafor", when=at(9, 11, 10)),
               mail_from=BEN)
    got = month.tick(at(9, 11, 15))
    relay = only(got, OFFICER)  # the answer held back, sent as it was
    assert text(relay).startswith("Dear PC Khan,\n\nInstagram has not answered yet")

    # --- Tuesday 10 March: Instagram is chased; the carer's answer is late -------------------
    got = month.tick(at(10, 10, 40))
    digest_tuesday = [m for m in got[ANNA] if "day's work" in str(m["Subject"])][0]
    assert ("ANSWER DUE TODAY (1)\n- HL-000003  My foster daughter is being bullied  | "
            "unassigned | next answer due 14:00") in text(digest_tuesday)
    chase = only(got, INSTAGRAM)
    assert "We are following up on the content" in text(chase) and BLACKMAILER in text(chase)
    # an hour before the next answer is due, the team is warned (nobody is assigned) ...
    got = month.tick(at(10, 13, 5))
    assert set(got) == {ANNA, BEN}
    warning = only(got, ANNA)
    assert "Due soon: next answer of HL-000003" in str(warning["Subject"])
    # ... and at the breach, told again, and the supervisor gets a copy
    got = month.tick(at(10, 14, 5))
    assert set(got) == {ANNA, BEN, SUPERVISOR}
    breach = only(got, SUPERVISOR)
    assert "Overdue: next answer of HL-000003" in str(breach["Subject"])
    assert "Tuesday 10 March 2026 at 14:00 GMT" in text(breach)
    for private in (CARER, SOCIAL_WORKER, "another one today", "facebook.com"):
        assert private not in str(breach) + text(breach)
    assert breach["Reply-To"] is None  # a reply is kept on the case, not relayed
    [carer_follow_up] = [m for m in month.mailbox[ANNA] if "Follow-up on HL-000003" in text(m)]
    month.send(answer(carer_follow_up, "#reply screenshots\n#remind 2026-03-16\n\nDear Mel,"
                      "\n\nSorry for the wait. We have reported both posts to Facebook.\n\nAnna\n",
                      sender=ANNA, name="Anna Smith", when=at(10, 15, 0)), mail_from=ANNA)
    got = month.tick(at(10, 15, 5))
    assert set(got) == {CARER}  # not the social worker, whose mail bounces
    to_carer = only(got, CARER)
    assert "reported both posts to Facebook" in text(to_carer)
    assert "please keep evidence of it: take screenshots" in text(to_carer)

    # --- Wednesday 11 March: Ben closes the police case from his phone ----------------------
    month.send(answer(police_case, "#close\n\nBen\n\nSent from my iPhone\n", sender=BEN,
                      name="Ben Okafor", when=at(11, 10, 30)), mail_from=BEN)
    got = month.tick(at(11, 10, 35))
    closure = only(got, OFFICER)  # the closure notice; a sign-off alone is never relayed
    assert "We have now closed case HL-000002" in text(closure)
    digest_wednesday = [m for m in got[BEN] if "day's work" in str(m["Subject"])][0]
    assert "the case is closed: not chased" in text(digest_wednesday)

    # --- the rest of the month: a tick each business day ---------------------------------
    reminders: list[EmailMessage] = []
    for day in (12, 13, 16, 17, 18, 19, 20, 23, 24, 25, 26, 27, 30, 31):
        got = month.tick(at(day, 11, 0))
        assert set(got) <= {ANNA, BEN}, subjects(got)
        reminders += [m for m in got[ANNA] if "Reminder:" in str(m["Subject"])]
        assert all("day's work" in str(m["Subject"]) for m in got[BEN])
        assert len(got[BEN]) == 1  # one digest a day
    [reminder] = reminders
    assert "You asked to be reminded of case HL-000003 today" in text(reminder)
    assert "Monday 16 March" in str(reminder["Date"]) or "16 Mar 2026" in str(reminder["Date"])

    # --- what each person received over the month ---------------------------------------
    def kinds(address: str) -> list[str]:
        return [str(m["Subject"]).strip() for m in month.mailbox[address]]

    assert len(month.mailbox[INSTAGRAM]) == 2  # the escalation, one chase: none once closed
    assert len(month.mailbox[TIKTOK]) == 1  # answered: never chased
    assert len(month.mailbox[SOCIAL_WORKER]) == 1  # the one answer before the bounce
    assert month.mailbox[COLLEAGUE] == []  # the helpline's own domain is never acknowledged
    assert len(month.mailbox[PARENT]) == 2  # the acknowledgement and the answer
    assert len(month.mailbox[TARA]) == 5, kinds(TARA)  # ack, relay, signposting, relay, closure
    assert len(month.mailbox[OFFICER]) == 5, kinds(OFFICER)  # ack, signposting, 2 relays, closure
    assert len(month.mailbox[CARER]) == 3, kinds(CARER)  # ack, 2 relays
    assert kinds(SUPERVISOR) == [str(breach["Subject"]).strip()]  # the one late answer
    # nobody outside the helpline sees another case, a practitioner's command or context
    cases = {TARA: "HL-000001", OFFICER: "HL-000002", CARER: "HL-000003",
             SOCIAL_WORKER: "HL-000003", COLLEAGUE: "HL-000004", PARENT: "HL-000005"}
    for person, case in cases.items():
        everything = month.everything_to(person)
        for other in set(cases.values()) - {case}:
            assert other not in everything, (person, other)
        for private in ("#", "staff photo", "investigation is open", "sextortin"):
            assert private not in text_of_all(month, person), (person, private)
    for platform in (TIKTOK, INSTAGRAM):
        everything = month.everything_to(platform)
        for person in cases:
            assert person not in everything
        for name in ("Tara", "Khan", "Mel Foster", "Hillside", "Eastbrook"):
            assert name not in everything
    practitioners_only = ("day's work", "Mail undeliverable", "Reminder:", "answered:",
                          "Outcome removed recorded", "Due soon", "Overdue")
    for person in (*cases, TIKTOK, INSTAGRAM):
        assert not any(k in s for s in kinds(person) for k in practitioners_only), person

    # --- the month's report --------------------------------------------------------------
    status, out, err = month.cli("report", "--from", "2026-03-01", "--to", "2026-03-31",
                                 "--format", "json")
    assert status == 0, err
    report = json.loads(out)
    assert report["cases"]["opened"] == 3  # the test mail and the parent's are not cases
    assert report["set_aside"] == {"spam": 1, "out_of_remit": 1, "test": 0}
    assert {row["category"]: row["cases"] for row in report["by_category"]} == {
        "bullying": 1, "impersonation": 1, "sextortion": 1}
    assert {row["platform"]: row["cases"] for row in report["by_platform"]} == {
        "facebook": 1, "instagram": 1, "tiktok": 1}
    assert report["first_response"]["answered"] == 3
    platforms = {row["platform"]: row for row in report["escalations"]}
    assert platforms["tiktok"]["opened"] == platforms["tiktok"]["answered"] == 1
    assert platforms["tiktok"]["outcomes"]["removed"] == 1
    assert platforms["instagram"]["opened"] == 1 and platforms["instagram"]["answered"] == 0
    assert platforms["instagram"]["removal_rate"] is None  # never answered: no rate
    assert platforms["instagram"]["no_response"] == 1
    status, out, err = month.cli("escalations", "list", "--json")
    assert status == 0, err
    tiktok_row, instagram_row = json.loads(out)
    assert (tiktok_row["platform"], tiktok_row["outcome"]) == ("tiktok", "removed")
    assert tiktok_row["platform_ref"] == "7788123456"  # "Your case number is 7788123456."
    assert (instagram_row["status"], instagram_row["follow_ups"]) == ("sent", 1)
