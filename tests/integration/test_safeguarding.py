"""Safeguarding (SPEC section 8): what must never be forwarded, on every path."""

from __future__ import annotations

import email
import hashlib
import os
from email.message import EmailMessage
from email.policy import default

import pytest
from sqlalchemy import select

from mailroom.cases.escalations import open_escalation
from mailroom.store.models import AttachmentRow, OutboxItem, Ticket
from tests.factories import as_sent, deliver, mail
from tests.integration.test_practitioner import (
    open_case,
    outbox,
    plain_body,
    practitioner_reply,
)

SCREENSHOT = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
URL = "https://www.tiktok.com/@fake_head"


def with_attachment(raw: bytes, data: bytes = SCREENSHOT, filename: str = "shot.png",
                    maintype: str = "image", subtype: str = "png") -> bytes:
    msg = email.message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def attachments_of(app) -> list[AttachmentRow]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return list(session.execute(select(AttachmentRow).order_by(AttachmentRow.id)).scalars())


def all_outgoing(app) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        rows = list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())
    return [as_sent(app, row) for row in rows]


def test_keywords_flag_the_case_and_nothing_carries_its_attachment(make_app) -> None:
    app = make_app(safeguarding={"illegal_keywords": ["indecent images"]})
    raw = with_attachment(mail(message_id="k1@school.example",
                               body=f"A pupil was sent indecent images: {URL}\n"))
    deliver(app, raw)
    with app.sessions() as session:
        ticket = session.get(Ticket, 1)
        assert ticket.category == "illegal_images" and "illegal" in ticket.flags
    kinds = [o.kind for o in _rows(app)]
    assert kinds == ["acknowledgement", "signposting", "notification"]
    [signposting] = [m for m, o in zip(all_outgoing(app), _rows(app), strict=True)
                     if o.kind == "signposting"]
    assert "report.iwf.org.uk" in plain_body(signposting)
    [notice] = outbox(app, "notification")
    assert list(notice.iter_attachments()) == []
    assert "1 attachment" in plain_body(notice) and "illegal" in plain_body(notice)
    # the practitioner answers and escalates with evidence: still nothing attached
    deliver(app, practitioner_reply(notice, "Hi Jo, we are on it.\n"))
    with app.sessions.begin() as session:
        open_escalation(app, session, session.get(Ticket, 1), "tiktok", urls=None,
                        context=None, actor="anna@helpline.example", evidence=True)
    assert all(list(m.iter_attachments()) == [] for m in all_outgoing(app))
    assert len(outbox(app, "relay")) == 1 and len(outbox(app, "escalation")) == 1


def _rows(app) -> list[OutboxItem]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())


def test_category_set_by_practitioner_withholds_from_then_on(app) -> None:
    notification = open_case(app)
    deliver(app, practitioner_reply(notification, "#category illegal_images\n#note\n"))
    follow_up = with_attachment(mail(message_id="f1@school.example", subject="Re: more",
                                     in_reply_to="case@school.example"))
    deliver(app, follow_up)
    notices = outbox(app, "notification")
    assert list(notices[-1].iter_attachments()) == []
    assert "never forwarded" in plain_body(notices[-1])


def test_hash_only_option_keeps_no_bytes(make_app) -> None:
    app = make_app(safeguarding={"illegal_keywords": ["csam"],
                                 "store_illegal_attachments": False})
    deliver(app, with_attachment(mail(message_id="h1@school.example", body="csam report\n")))
    [row] = attachments_of(app)
    assert row.stored is False and not app.blobs.exists(row.sha256)
    assert row.sha256 == hashlib.sha256(SCREENSHOT).hexdigest()
    assert row.md5 == hashlib.md5(SCREENSHOT, usedforsecurity=False).hexdigest()
    assert row.filename == f"withheld-{row.sha256[:8]}.png"  # "shot.png" could name a child


def test_keeping_illegal_files_is_the_admins_choice(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(safeguarding={"store_illegal_attachments": True})
    deliver(app, with_attachment(mail(message_id="h2@school.example", body="csam report\n")))
    [row] = attachments_of(app)
    assert row.stored and app.blobs.exists(row.sha256) and row.filename == "shot.png"
    assert list(outbox(app, "notification")[0].iter_attachments()) == []


def test_hash_only_option_drops_bytes_when_the_category_is_set_later(make_app) -> None:
    app = make_app(safeguarding={"store_illegal_attachments": False})
    raw = with_attachment(mail(message_id="case@school.example"))
    deliver(app, raw)
    [row] = attachments_of(app)
    assert row.stored and app.blobs.exists(row.sha256)
    notice = outbox(app, "notification")[0]
    deliver(app, practitioner_reply(notice, "#category illegal_images\n#note\n"))
    [row] = attachments_of(app)
    assert row.stored is False and not app.blobs.exists(row.sha256)


def test_dangerous_files_are_stored_but_never_forwarded(app) -> None:
    raw = with_attachment(mail(message_id="exe@school.example"), data=b"MZ\x90\x00evil",
                          filename="invoice.pdf.exe", maintype="application",
                          subtype="x-msdownload")
    deliver(app, raw)
    [row] = attachments_of(app)
    assert row.stored and app.blobs.exists(row.sha256)
    [notice] = outbox(app, "notification")
    assert list(notice.iter_attachments()) == []
    assert "could run programs" in plain_body(notice)


def test_attachments_over_the_size_limit_keep_only_their_hash(make_app) -> None:
    app = make_app(safeguarding={"max_attachment_size": 1000})
    deliver(app, with_attachment(mail(message_id="big@school.example")))
    [row] = attachments_of(app)
    assert row.stored is False and row.size == len(SCREENSHOT)


HOSTILE_NAMES = {
    "traversal": "../../etc/passwd",
    "nul": "evil\x00.png",
    "long": "a" * 500 + ".png",
    "rtl-override": "photo\u202egnp.exe",
    "windows-device": "CON.txt",
    "absolute": "/etc/shadow",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_attachment_names_are_stored_safely(app, name: str, tmp_path) -> None:
    msg = email.message_from_bytes(mail(message_id="n@school.example"), policy=default)
    assert isinstance(msg, EmailMessage)
    part = EmailMessage()
    part.set_content(b"data", maintype="application", subtype="octet-stream")
    part["Content-Disposition"] = "attachment"
    part.set_param("filename", name, header="Content-Disposition")
    msg.make_mixed()
    msg.attach(part)
    deliver(app, msg.as_bytes())
    [row] = attachments_of(app)
    assert "/" not in row.filename and "\x00" not in row.filename
    assert "\u202e" not in row.filename and len(row.filename) <= 255
    assert not row.filename.startswith(".")
    store = app.settings.attachments_dir.resolve()
    path = app.blobs.path_for(row.sha256).resolve()
    assert path.is_relative_to(store) and path.read_bytes() == b"data"
    assert not (tmp_path / "etc").exists()
