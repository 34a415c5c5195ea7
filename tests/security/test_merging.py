"""Merging never widens a case's audience, and no case disappears through a merge.

Attacks: a reply on the attacker's own case naming a Message-ID of the
victim's case (it used to merge the victim's case into the attacker's, whose
answers then went to the attacker); replies to an absorbed case (they used to
reopen it, and could merge two cases into each other); an illegal-content
case merged into an ordinary one (the flag used to be lost).
"""

from __future__ import annotations

import base64
from pathlib import Path

from mailroom.cases.replies import reply_address
from mailroom.cli.main import main as mailroom
from mailroom.store.models import Ticket
from tests.factories import mail
from tests.security.helpline import ANNA, Helpline, everything_received

TEACHER = "teacher@school.example"
ATTACKER = "mallory@evil.example"
SECRET = "Pupil Sam Example, year 8"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def live(tickets: list[Ticket]) -> list[int]:
    return [t.id for t in tickets if t.merged_into is None]


def test_a_reply_naming_the_victims_message_does_not_merge_their_case(
    helpline: Helpline,
) -> None:
    helpline.write(sender=TEACHER, message_id="victim1@school.example", subject="Our pupil",
                   body=f"A fake account is messaging {SECRET}: https://www.tiktok.com/@x1\n")
    helpline.write(sender=ATTACKER, message_id="att1@evil.example", subject="My own problem",
                   body="Someone is posting about me.\n")
    [ack] = helpline.received(ATTACKER)
    helpline.reply(ack, sender=ATTACKER, body="More about my problem.\n",
                   references=["att1@evil.example", "victim1@school.example"])
    assert live(helpline.tickets()) == [1, 2]
    notice = helpline.last_for(ANNA, lambda s: "More about my problem" in s.text)
    assert "also belongs to case HL-000001" in notice.text and "#merge HL-000001" in notice.text

    victims = helpline.last_for(ANNA, lambda s: SECRET in s.text)
    helpline.reply(victims, sender=ANNA, body=f"Hi Jo,\n\nAbout {SECRET}: we reported it.\n")
    helpline.reply(notice, sender=ANNA, body="Hi, we will look at your problem.\n")
    assert SECRET not in everything_received(helpline, ATTACKER)
    assert [s.recipients for s in helpline.received(TEACHER) if "we reported it" in s.text] == [
        (TEACHER,)]

    [relay] = [s for s in helpline.received(TEACHER) if "we reported it" in s.text]
    helpline.reply(relay, sender=TEACHER, body="Thank you, it is still there.\n")
    by_id = {t.id: t for t in helpline.tickets()}
    assert by_id[1].merged_into is None and by_id[1].status == "open"
    assert by_id[2].merged_into is None


def test_replies_to_an_absorbed_case_land_on_the_survivor(start_helpline) -> None:  # type: ignore[no-untyped-def]
    helpline = start_helpline(acknowledgements={"per_window": 10})
    # One conversation of one person in three messages; the third arrives before the
    # second, which is the one joining it to the first: two cases, merged.
    helpline.write(sender=TEACHER, message_id="first@school.example", subject="Our pupil",
                   body="A fake account: https://www.tiktok.com/@x1\n")
    helpline.write(sender=TEACHER, message_id="third@school.example", subject="Re: Our pupil",
                   in_reply_to="second@school.example", references=["second@school.example"],
                   body="Also this: https://www.tiktok.com/@x2\n")
    helpline.write(sender=TEACHER, message_id="second@school.example", subject="Re: Our pupil",
                   in_reply_to="first@school.example", references=["first@school.example"],
                   body="And this: https://www.tiktok.com/@x3\n")
    tickets = helpline.tickets()
    assert live(tickets) == [1] and tickets[1].merged_into == 1 and tickets[1].status == "closed"
    # One case, one acknowledgement: case 2's, waiting (its message came before its
    # parent), was withdrawn by the merge.
    assert [s for s in helpline.received(TEACHER) if "HL-000002" in s.text] == []
    # Mail addressed with case 2's own reply address (as any mail of case 2 carried it)
    # lands on case 1, and case 2 stays closed.
    absorbed = reply_address(helpline.app.settings, 2, "r").addr
    helpline.write(sender=TEACHER, to=[absorbed], subject="Re: Our pupil", body="Any news?\n")
    tickets = helpline.tickets()
    assert live(tickets) == [1] and tickets[1].status == "closed"
    assert tickets[1].merged_into == 1 and tickets[0].merged_into is None


def test_a_merged_case_keeps_the_strictest_safeguarding_state(
    helpline: Helpline, tmp_path: Path,
) -> None:
    helpline.write(sender=TEACHER, subject="Images of a pupil", message_id="img@school.example",
                   body="These images are going round: https://www.tiktok.com/@x3\n")
    notice = helpline.last_for(ANNA)
    helpline.reply(notice, sender=ANNA, body="#category illegal_images\n#note reported to IWF\n")
    helpline.write(sender=TEACHER, subject="Fake account", message_id="fake@school.example",
                   body="And a fake account: https://www.tiktok.com/@x4\n",
                   attachments=[("screenshot.png", "image/png", PNG)])
    ordinary = helpline.last_for(ANNA, lambda s: "And a fake account" in s.text)
    assert ordinary.attachments() == ["screenshot.png"]
    helpline.reply(ordinary, sender=ANNA, body="#merge HL-000001\n")
    [case] = [t for t in helpline.tickets() if t.merged_into is None]
    assert case.id == 2 and "illegal" in case.flags
    config = str(helpline.app.settings.source)
    assert mailroom(["--config", config, "escalate", "HL-000002", "--platform", "tiktok",
                     "--evidence"]) == 0
    helpline.app.clock.advance(minutes=1)  # type: ignore[attr-defined] # queued by the CLI's clock
    helpline.settle()
    [escalation] = [s for s in helpline.sent() if s.message["Subject"] and "Escalation" in
                    s.subject]
    assert escalation.attachments() == []
    helpline.send(mail(sender=TEACHER, subject="Re: Fake account", body="Another one.\n",
                       in_reply_to="fake@school.example",
                       attachments=[("again.png", "image/png", PNG)]), mail_from=TEACHER)
    helpline.settle()
    follow_up = helpline.last_for(ANNA, lambda s: "Another one" in s.text)
    assert follow_up.attachments() == [] and "withheld" in follow_up.text
