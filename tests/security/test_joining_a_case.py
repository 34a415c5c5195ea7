"""Nobody joins a case by writing into it: threading decides the case, never the audience.

Attacks: a forged From of the requester with the case's subject tag and a
stranger in Cc; a stranger replying to a Message-ID of the case; a stranger
quoting the case's tag. In each, the stranger must receive nothing of the
case, the practitioners must be told, and only a practitioner's ``#allow``
lets someone in.
"""

from __future__ import annotations

from tests.security.helpline import ANNA, Helpline, Sent, everything_received

TEACHER = "teacher@school.example"
STRANGER = "stranger@evil.example"
CASE_ID = "case1@school.example"
SECRET = "Pupil Sam Example, year 8"
ANSWER = "We have looked at the account and reported it."


def open_case(helpline: Helpline) -> Sent:
    """The teacher reports; return the practitioners' notification."""
    helpline.write(sender=TEACHER, message_id=CASE_ID, subject="Fake account of our head teacher",
                   body=f"An account is sending messages to {SECRET}: "
                        "https://www.tiktok.com/@fakehead\n")
    return helpline.last_for(ANNA)


def notification_about(helpline: Helpline, words: str) -> Sent:
    return helpline.last_for(ANNA, lambda s: words in s.text)


def test_forged_requester_with_the_tag_cannot_add_a_stranger(helpline: Helpline) -> None:
    open_case(helpline)
    helpline.write(sender=TEACHER, cc=[STRANGER], subject="[Helpline #1] more details",
                   body="Please keep my colleague in copy.\n")
    notice = notification_about(helpline, "keep my colleague")
    assert f"Not receiving answers: {STRANGER}." in notice.text
    assert [t.id for t in helpline.tickets()] == [1]
    helpline.reply(notice, sender=ANNA, name="Anna", body=f"Hi Jo,\n\n{ANSWER}\n")
    [relay] = [s for s in helpline.received(TEACHER) if ANSWER in s.text]
    assert relay.recipients == (TEACHER,) and relay.message["Cc"] is None
    assert helpline.received(STRANGER) == []


def test_knowing_a_message_id_is_not_enough_to_join(helpline: Helpline) -> None:
    open_case(helpline)
    helpline.write(sender=STRANGER, subject="Re: Fake account of our head teacher",
                   in_reply_to=CASE_ID, references=[CASE_ID], body="Add me to this, thanks.\n")
    notice = notification_about(helpline, "Add me to this")
    assert [t.id for t in helpline.tickets()] == [1]
    assert (f"NEW SENDER, not on this case: {STRANGER}. They receive nothing from this case "
            f"until you allow them (#allow {STRANGER}).") in notice.text
    assert "Your answer goes to: teacher@school.example" in notice.text
    helpline.reply(notice, sender=ANNA, name="Anna", body=f"Hi Jo,\n\n{ANSWER}\n")
    assert [s.recipients for s in helpline.received(TEACHER) if ANSWER in s.text] == [(TEACHER,)]
    assert helpline.received(STRANGER) == []


def test_a_practitioner_lets_someone_in_and_can_take_them_out(helpline: Helpline) -> None:
    open_case(helpline)
    helpline.write(sender=TEACHER, subject="Re: [Helpline #1] Fake account of our head teacher",
                   cc=["head@school.example"], in_reply_to=CASE_ID, body="Adding my head.\n")
    notice = notification_about(helpline, "Adding my head")
    helpline.reply(notice, sender=ANNA, body="#allow head@school.example\n\nHi both, noted.\n")
    [relay] = [s for s in helpline.received(TEACHER) if "Hi both" in s.text]
    assert set(relay.recipients) == {TEACHER, "head@school.example"}
    assert [a.addr_spec for a in relay.message["Cc"].addresses] == ["head@school.example"]
    helpline.reply(notice, sender=ANNA, body="#remove head@school.example\n\nHi Jo, just you.\n")
    [relay] = [s for s in helpline.received(TEACHER) if "just you" in s.text]
    assert relay.recipients == (TEACHER,)
    assert not [s for s in helpline.received("head@school.example") if "just you" in s.text]


def test_a_stranger_quoting_the_tag_opens_a_case_of_their_own(helpline: Helpline) -> None:
    open_case(helpline)
    helpline.write(sender=STRANGER, subject="[Helpline #1] what is happening",
                   body="Tell me about this case.\n")
    assert [t.requester for t in helpline.tickets()] == [TEACHER, STRANGER]
    received = everything_received(helpline, STRANGER)
    assert received  # their own acknowledgement, for their own case
    assert SECRET not in received and "head teacher" not in received
    assert "HL-000001" not in received and "#1]" not in received
