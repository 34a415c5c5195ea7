"""A practitioner's reply runs only from the practitioner its address was given to.

Attacks: a reply with another practitioner's address (a forwarded notification),
a forged From of the practitioner whose domain fails DMARC, an address of a
case closed long ago, an address issued before addresses were bound, and a
practitioner's automatic reply. In each, nothing runs, the requester receives
nothing, and the practitioner (the real mailbox of the From address) gets a
fresh link, never anyone else.
"""

from __future__ import annotations

from mailroom.addresses import make_reply_address
from tests.security.helpline import ANNA, BEN, Helpline, Sent

TEACHER = "teacher@school.example"
ATTACKER = "mallory@evil.example"
DMARC_FAIL = ("mx.helpline.example; dkim=none; spf=fail smtp.mailfrom=helpline.example; "
              "dmarc=fail (p=none) header.from=helpline.example")


def open_assigned_case(helpline: Helpline) -> Sent:
    """A case that Anna took: its notifications go to her alone; return the last one."""
    helpline.write(sender=TEACHER, message_id="case@school.example", subject="Our pupil",
                   body="A fake account: https://www.tiktok.com/@x1\n")
    helpline.reply(helpline.last_for(ANNA), sender=ANNA, body="#assign me\n")
    helpline.write(sender=TEACHER, subject="Re: Our pupil", in_reply_to="case@school.example",
                   body="It has posted again.\n")
    notice = helpline.last_for(ANNA, lambda s: "posted again" in s.text)
    assert notice.recipients == (ANNA,)
    return notice


def relayed(helpline: Helpline, words: str) -> list[Sent]:
    return [s for s in helpline.received(TEACHER) if words in s.text]


def test_another_practitioners_address_runs_nothing(helpline: Helpline) -> None:
    annas = open_assigned_case(helpline)
    helpline.reply(annas, sender=BEN, body="#close\n\nHi Jo, from Ben.\n")
    assert relayed(helpline, "from Ben") == []
    assert helpline.tickets()[0].status == "open"
    [link] = [s for s in helpline.received(BEN) if "was not acted on" in s.text]
    assert "given to another practitioner" in link.text and "from Ben" in link.text
    assert link.recipients == (BEN,)
    assert not [s for s in helpline.received(ANNA) if "from Ben" in s.text]
    helpline.reply(link, sender=BEN, body="#close\n\nHi Jo, from Ben.\n")
    assert [s.recipients for s in relayed(helpline, "from Ben")] == [(TEACHER,)]
    assert helpline.tickets()[0].status == "closed"


def test_a_forged_practitioner_failing_dmarc_runs_nothing(helpline: Helpline) -> None:
    annas = open_assigned_case(helpline)
    helpline.reply(annas, sender=ANNA, body="#close\n\nHi Jo, this is not Anna.\n",
                   headers={"Authentication-Results": DMARC_FAIL})
    assert relayed(helpline, "not Anna") == []
    assert helpline.tickets()[0].status == "open"
    notice = helpline.last_for(ANNA, lambda s: "not Anna" in s.text)
    assert "UNVERIFIED SENDER" in notice.text and "dmarc=fail" in notice.text


def test_an_address_of_a_case_closed_long_ago_has_expired(helpline: Helpline) -> None:
    annas = open_assigned_case(helpline)
    helpline.reply(annas, sender=ANNA, body="#close\n\nHi Jo, closing now.\n")
    helpline.app.clock.advance(days=91)  # type: ignore[attr-defined]
    helpline.reply(annas, sender=ANNA, body="#status open\n\nHi Jo, one more thing.\n")
    assert relayed(helpline, "one more thing") == []
    assert helpline.tickets()[0].status == "closed"
    link = helpline.last_for(ANNA, lambda s: "was not acted on" in s.text)
    assert "has expired" in link.text
    helpline.reply(link, sender=ANNA, body="#status open\n\nHi Jo, one more thing.\n")
    assert [s.recipients for s in relayed(helpline, "one more thing")] == [(TEACHER,)]


def test_an_address_issued_before_binding_runs_nothing(helpline: Helpline) -> None:
    open_assigned_case(helpline)
    s = helpline.app.settings
    old = make_reply_address(local=s.local_part, domain=s.domain, kind="t", ident=1, role="p",
                             secret=s.secret)
    helpline.write(sender=ANNA, to=[old], subject="Re: [Helpline #1] Our pupil",
                   body="#close\n\nHi Jo, from an old notification.\n")
    assert relayed(helpline, "old notification") == []
    link = helpline.last_for(ANNA, lambda s: "was not acted on" in s.text)
    assert "issued before" in link.text


def test_a_stranger_with_a_practitioners_address_is_an_ordinary_sender(
    helpline: Helpline,
) -> None:
    annas = open_assigned_case(helpline)
    helpline.reply(annas, sender=ATTACKER, body="#close\n\nHi Jo, from Mallory.\n")
    assert relayed(helpline, "from Mallory") == []
    assert helpline.received(ATTACKER) == []
    notice = helpline.last_for(ANNA, lambda s: "from Mallory" in s.text)
    assert f"NEW SENDER, not on this case: {ATTACKER}" in notice.text


def test_a_practitioners_automatic_reply_is_never_relayed(helpline: Helpline) -> None:
    annas = open_assigned_case(helpline)
    helpline.reply(annas, sender=ANNA, body="I am out of the office. Call me on 07700 900123.\n",
                   headers={"Auto-Submitted": "auto-replied"})
    assert relayed(helpline, "07700") == []
    [told] = [s for s in helpline.received(ANNA) if "automatic reply" in s.text]
    assert told.recipients == (ANNA,)
    helpline.reply(annas, sender=ANNA, body="I am out of the office. Call me on 07700 900123.\n",
                   headers={"Auto-Submitted": "auto-replied"})
    assert len([s for s in helpline.received(ANNA) if "automatic reply" in s.text]) == 1


def test_a_practitioners_vacation_notice_without_headers_is_never_relayed(
    helpline: Helpline,
) -> None:
    annas = open_assigned_case(helpline)
    helpline.reply(annas, sender=ANNA, body="I am out of the office until Monday 9 March with "
                   "limited access to email.\nFor urgent matters call me on 07700 900123.\n")
    assert relayed(helpline, "07700") == []
    [told] = [s for s in helpline.received(ANNA) if "automatic reply" in s.text]
    assert told.recipients == (ANNA,)
    helpline.reply(annas, sender=ANNA, body="#status waiting\n\nHi Jo, I am away next week, "
                   "so Ben will pick this up.\n")
    assert [s.recipients for s in relayed(helpline, "Ben will pick")] == [(TEACHER,)]
