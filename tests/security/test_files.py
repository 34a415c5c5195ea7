"""A file withheld once is withheld everywhere: per file, not only per case.

Attacks: the same image bytes sent later in a new case without any keyword;
a police officer's sextortion report with the shipped defaults; a
practitioner's ``#withhold`` after a notification was queued. What each
person received is read from the mail as sent.
"""

from __future__ import annotations

import base64

from tests.security.helpline import ANNA, Helpline, Sent

TEACHER = "teacher@school.example"
OFFICER = "pc.jones@police.example"
IMAGE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def carries_image(mails: list[Sent]) -> bool:
    return any(IMAGE in s.message.as_bytes() or base64.b64encode(IMAGE)[:40] in
               s.message.as_bytes() for s in mails)


def test_the_same_bytes_in_a_new_case_are_withheld(helpline: Helpline) -> None:
    helpline.write(sender=TEACHER, subject="Pictures going round", body="See attached.\n",
                   attachments=[("pupil.png", "image/png", IMAGE)])
    helpline.reply(helpline.last_for(ANNA), sender=ANNA, body="#category illegal_images\n")
    helpline.new_for(ANNA)  # what went before the category was set
    helpline.write(sender="head@other-school.example", subject="Is this real?",
                   body="A parent sent us this picture, can you look at it?\n",
                   attachments=[("photo.png", "image/png", IMAGE)])
    notice = helpline.last_for(ANNA, lambda s: "A parent sent us" in s.text)
    assert notice.attachments() == []
    assert "withheld" in notice.text
    later = [s for s in helpline.sent() if s.path not in helpline._seen]
    assert later and not carries_image(later)


def test_a_sextortion_report_is_signposted_and_its_image_withheld(helpline: Helpline) -> None:
    helpline.write(sender=OFFICER, subject="Pupil being blackmailed",
                   body="A year 10 pupil is the victim of sextortion: someone threatens to "
                        "share an image unless he pays. Screenshot attached.\n",
                   attachments=[("screenshot.png", "image/png", IMAGE)])
    assert helpline.sent() and not carries_image(helpline.sent())
    notice = helpline.last_for(ANNA, lambda s: "year 10 pupil" in s.text)
    assert "category: sextortion" in notice.text.lower() or "Sextortion" in notice.text
    signposting = helpline.last_for(OFFICER, lambda s: "sextortion" in s.text.lower()
                                    and "Do not pay" in s.text)
    assert "999" in signposting.text and "101" in signposting.text


def test_withhold_holds_back_queued_and_later_mail(start_helpline) -> None:  # type: ignore[no-untyped-def]
    helpline = start_helpline(safeguarding={"illegal_keywords": [], "sextortion_keywords": []})
    helpline.write(sender=TEACHER, subject="Something I was sent", body="Attached.\n",
                   attachments=[("sent.png", "image/png", IMAGE)])
    notice = helpline.last_for(ANNA)
    assert notice.attachments() == ["sent.png"]  # no keyword list: it went, as configured
    helpline.reply(notice, sender=ANNA, body="#withhold\n")
    helpline.write(sender="parent@home.example", subject="Saw this online",
                   body="Is this allowed?\n", attachments=[("copy.png", "image/png", IMAGE)])
    later = helpline.last_for(ANNA, lambda s: "Is this allowed" in s.text)
    assert later.attachments() == [] and not carries_image([later])
