"""The inbound pipeline on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from mailroom import pipeline
from mailroom.cases.tickets import set_status
from mailroom.store.models import AttachmentRow, InboxItem, Message, OutboxItem, Ticket
from tests.factories import deliver, inbox_rows, mail, ticket_of, tickets


def test_new_mail_opens_a_ticket(app) -> None:
    assert deliver(app, mail(message_id="first@school.example", cc=["deputy@school.example"])) \
        == "created"
    [ticket] = tickets(app)
    assert ticket.reference == "HL-000001" and ticket.status == "open"
    assert ticket.requester == "teacher@school.example"
    with app.sessions() as session:
        ticket = session.get(Ticket, ticket.id)
        roles = {p.address: p.role for p in ticket.participants}
        [message] = [m for m in ticket.messages if m.direction == "in"]
    assert roles == {"teacher@school.example": "requester", "deputy@school.example": "cc"}
    assert message.kind == "requester" and message.direction == "in"
    assert "fake TikTok account" in message.text
    assert message.urls == ["https://www.tiktok.com/@fakehead"]


def test_attachments_go_to_the_store(app) -> None:
    from email import message_from_bytes
    from email.policy import default

    msg = message_from_bytes(mail(message_id="att@school.example"), policy=default)
    msg.add_attachment(b"\x89PNG fake screenshot", maintype="image", subtype="png",
                       filename="../../etc/screenshot.png")
    assert deliver(app, msg.as_bytes()) == "created"
    with app.sessions() as session:
        [row] = session.execute(select(AttachmentRow)).scalars()
    assert row.filename == "screenshot.png" and row.content_type == "image/png"
    assert app.blobs.get(row.sha256) == b"\x89PNG fake screenshot"


@pytest.mark.parametrize("door", ["file", "smtp", "imap"])
def test_same_message_twice_creates_nothing_new(app, door: str) -> None:
    raw = mail(message_id="twice@school.example")
    assert deliver(app, raw) == "created"
    assert deliver(app, raw, door=door) == "duplicate"
    assert len(tickets(app)) == 1 and len(inbox_rows(app)) == 1


def test_message_without_message_id_deduplicates_by_hash(app) -> None:
    raw = b"From: a@school.example\r\nTo: helpline@helpline.example\r\nSubject: x\r\n\r\nhi\r\n"
    assert deliver(app, raw) == "created"
    assert deliver(app, raw) == "duplicate"
    assert deliver(app, raw + b"more\r\n") == "created"


def test_reply_threads_by_in_reply_to(app) -> None:
    deliver(app, mail(message_id="p@school.example"))
    outcome = deliver(app, mail(message_id="c@school.example", in_reply_to="p@school.example",
                                subject="Re: Fake account", body="More detail.\n"))
    assert outcome == "threaded"
    assert ticket_of(app, "c@school.example") == ticket_of(app, "p@school.example")


def test_reply_arriving_before_its_parent_joins_it(app) -> None:
    deliver(app, mail(message_id="child@school.example", in_reply_to="parent@school.example",
                      references=["parent@school.example"], subject="Re: x"))
    deliver(app, mail(message_id="parent@school.example", subject="x"))
    assert len(tickets(app)) == 1
    assert ticket_of(app, "parent@school.example") == ticket_of(app, "child@school.example")


def test_reply_naming_hundreds_of_ids_threads_by_the_oldest(app) -> None:
    """The ids are looked up 500 at a time, nearest first: the root is in the second lot."""
    deliver(app, mail(message_id="root@long.example"))
    refs = ["root@long.example", *(f"gone-{n}@long.example" for n in range(600))]
    assert deliver(app, mail(message_id="late@long.example", references=refs,
                             subject="Re: x")) == "threaded"
    assert ticket_of(app, "late@long.example") == ticket_of(app, "root@long.example")


def test_out_of_order_chain_with_partial_references_is_merged(app) -> None:
    a = mail(message_id="a@x.example", subject="s")
    b = mail(message_id="b@x.example", in_reply_to="a@x.example", references=["a@x.example"])
    c = mail(message_id="c@x.example", in_reply_to="b@x.example", references=["b@x.example"])
    for raw in (c, a, b):
        deliver(app, raw)
    assert len(tickets(app)) == 1
    assert {ticket_of(app, f"{n}@x.example") for n in "abc"} == {tickets(app)[0].id}


@pytest.mark.parametrize("order", ["abc", "bca", "cab", "cba"])
def test_a_message_linking_two_tickets_merges_them_in_any_order(app, order: str) -> None:
    """B is a root, C answers a message we never got, A names both: one conversation."""
    raws = {
        "a": mail(message_id="a@y.example", in_reply_to="c@y.example",
                  references=["b@y.example", "c@y.example"]),
        "b": mail(message_id="b@y.example", subject="root"),
        "c": mail(message_id="c@y.example", in_reply_to="ghost@y.example",
                  references=["ghost@y.example"]),
    }
    for name in order:
        deliver(app, raws[name])
    assert len(tickets(app)) == 1
    assert {ticket_of(app, f"{n}@y.example") for n in "abc"} == {tickets(app)[0].id}


def test_merged_tickets_keep_the_platforms_of_both(app) -> None:
    """The case a merge keeps names every platform either case named, and the
    practitioners' next notification says so."""
    deliver(app, mail(message_id="b@z.example", subject="root",
                      body="A fake profile: https://www.instagram.com/fake.head/\n"))
    deliver(app, mail(message_id="c@z.example", in_reply_to="ghost@z.example",
                      references=["ghost@z.example"]))  # the TikTok URL
    assert len(tickets(app)) == 2
    deliver(app, mail(message_id="a@z.example", in_reply_to="c@z.example",
                      references=["b@z.example", "c@z.example"], body="Both of them.\n"))
    [ticket] = tickets(app)
    assert sorted(ticket.platforms) == ["instagram", "tiktok"]
    with app.sessions() as session:
        last = session.execute(select(OutboxItem).where(OutboxItem.kind == "notification")
                               .order_by(OutboxItem.id.desc())).scalars().first()
    assert last is not None
    platforms = last.rendered["text"].split("platforms: ", 1)[1].split(" | ", 1)[0]
    assert sorted(platforms.split(" and ")) == ["Instagram", "TikTok"]


def test_auto_reply_arriving_before_its_parent_joins_the_ticket(app) -> None:
    ooo = mail(message_id="ooo@x.example", in_reply_to="p@x.example",
               headers={"Auto-Submitted": "auto-replied"}, subject="Out of office")
    assert deliver(app, ooo) == "automatic"
    deliver(app, mail(message_id="p@x.example"))
    assert ticket_of(app, "ooo@x.example") == ticket_of(app, "p@x.example") is not None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrival_order_does_not_matter(app, seed: int) -> None:
    ids = [f"n{i}@x.example" for i in range(8)]
    raws = [mail(message_id=ids[0], subject="root")]
    for i in range(1, 8):
        parent = ids[random.Random(i).randrange(i)]
        raws.append(mail(message_id=ids[i], in_reply_to=parent, references=[parent],
                         subject="Re: root"))
    raws.append(mail(message_id="other@x.example", subject="unrelated"))
    random.Random(seed).shuffle(raws)
    for raw in raws:
        deliver(app, raw)
    assert len(tickets(app)) == 2
    assert len({ticket_of(app, i) for i in ids}) == 1


def test_stranger_quoting_a_ticket_number_opens_a_new_ticket(app) -> None:
    deliver(app, mail(message_id="orig@school.example"))
    outcome = deliver(app, mail(sender="stranger@elsewhere.example", subject="[Helpline #1] hi",
                                message_id="s@elsewhere.example"))
    assert outcome == "created"
    with app.sessions() as session:
        flags = session.execute(select(Message.flags).where(
            Message.message_id == "s@elsewhere.example")).scalar_one()
    assert "quoted-ticket:1" in flags


def test_participant_with_subject_tag_joins_without_references(app) -> None:
    deliver(app, mail(message_id="orig@school.example"))
    outcome = deliver(app, mail(subject="Re: [Helpline #1] Fake account",
                                message_id="tagged@school.example"))
    assert outcome == "threaded"


def test_reply_all_from_a_cc_makes_them_a_participant(app) -> None:
    deliver(app, mail(message_id="orig@school.example"))
    deliver(app, mail(sender="head@school.example", message_id="ra@school.example",
                      in_reply_to="orig@school.example", cc=["teacher@school.example"]))
    with app.sessions() as session:
        ticket = session.get(Ticket, 1)
        assert "head@school.example" in {p.address for p in ticket.participants}


def test_requester_reply_reopens_but_auto_reply_does_not(app) -> None:
    deliver(app, mail(message_id="orig@school.example"))
    with app.sessions.begin() as session:
        set_status(session, session.get(Ticket, 1), "closed", actor="test", at=app.now())
    ooo = mail(message_id="ooo@school.example", in_reply_to="orig@school.example",
               subject="Out of Office: Fake account", headers={"Auto-Submitted": "auto-replied"})
    assert deliver(app, ooo) == "automatic"
    assert tickets(app)[0].status == "closed"
    deliver(app, mail(message_id="r@school.example", in_reply_to="orig@school.example"))
    assert tickets(app)[0].status == "open"


def test_unthreaded_automatic_mail_opens_no_ticket(app) -> None:
    raw = mail(message_id="news@list.example", headers={"Precedence": "bulk",
                                                         "List-Id": "<news.list.example>"})
    assert deliver(app, raw) == "automatic"
    assert tickets(app) == []


def test_bounce_is_linked_to_what_it_bounces_and_opens_no_ticket(app) -> None:
    deliver(app, mail(message_id="orig@school.example"))
    with app.sessions.begin() as session:
        session.add(Message(ticket_id=1, direction="out", kind="acknowledgement",
                            message_id="mailroom.ack1@helpline.example", subject="ack"))
    bounce = (
        b"From: MAILER-DAEMON@mx.school.example\r\nTo: helpline@helpline.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.school.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        b" boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nmailbox unavailable\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; teacher@school.example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"Message-ID: <mailroom.ack1@helpline.example>\r\nSubject: ack\r\n\r\n--B--\r\n"
    )
    assert deliver(app, bounce, mail_from="") == "bounce"
    assert len(tickets(app)) == 1
    with app.sessions() as session:
        ack = session.execute(select(Message).where(
            Message.message_id == "mailroom.ack1@helpline.example")).scalar_one()
        bounced = session.execute(select(Message).where(Message.kind == "bounce")).scalar_one()
    assert "bounced" in ack.flags and bounced.ticket_id == 1


def test_unparseable_message_is_kept_as_bad_and_retried(app) -> None:
    assert deliver(app, b"") == "bad"
    assert deliver(app, mail(message_id="next@school.example")) == "created"
    bad = inbox_rows(app)[0]
    assert bad.status == "bad" and bad.error and bad.raw == b""


def test_internal_error_shunts_and_writes_nothing(app, monkeypatch) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "after_message", explode)
    assert deliver(app, mail(message_id="s@school.example")) == "shunt"
    [row] = inbox_rows(app)
    assert row.status == "shunt" and "disk on fire" in row.error and row.raw
    with app.sessions() as session:
        assert session.execute(select(func.count()).select_from(Ticket)).scalar() == 0
    monkeypatch.undo()
    with app.sessions.begin() as session:
        session.get(InboxItem, row.id).status = "new"
    assert pipeline.process_item(app, row.id) == "created"
