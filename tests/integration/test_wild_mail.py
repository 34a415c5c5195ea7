"""Mail from the wild through the whole inbound pipeline (SQLite and PostgreSQL).

A message whose header block is broken and whose header text is raw GBK opens
a ticket with its subject and requester read right; a message without any
sender field opens one for its envelope sender, who alone is acknowledged (the
person whose server handed us the message: the only address we have for them).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mailroom.store.models import AttachmentRow, OutboxItem
from tests.factories import deliver, tickets

WILD = Path(__file__).resolve().parents[1] / "fixtures" / "wild"

NO_SENDER_FIELD = (
    "Received: from mail.example.cn (mail.example.cn [192.0.2.8])\r\n"
    "by mx.helpline.example with ESMTP id 7A\r\n"
    "To: report@helpline.example\r\n"
    "Subject: 视频举报\r\n"
    "Message-ID: <no-from-1@example.cn>\r\n"
    "Content-Type: text/plain; charset=gbk\r\n"
    "\r\n"
    "请删除这个视频。\r\n"
).encode("gbk")


def test_broken_header_block_with_raw_gbk_opens_a_ticket(app) -> None:
    assert deliver(app, (WILD / "gbk-headers-gb2312-body.eml").read_bytes()) == "created"
    assert deliver(app, (WILD / "stray-line-and-lost-folds.eml").read_bytes()) == "created"
    first, second = tickets(app)
    assert (first.subject, first.requester, first.requester_name) == (
        "关于我孩子的视频举报", "zhang.wei@example.cn", "张伟")
    assert (second.subject, second.requester) == ("Threats in a group chat", "lee.wong@example.com")


def test_without_a_sender_field_the_envelope_sender_is_the_requester(app) -> None:
    assert deliver(app, NO_SENDER_FIELD, door="smtp", mail_from="Parent@Example.cn") == "created"
    [ticket] = tickets(app)
    assert (ticket.subject, ticket.requester) == ("视频举报", "parent@example.cn")
    with app.sessions() as session:
        acknowledged = [row.rcpt_to for row in session.execute(select(OutboxItem)).scalars()
                        if "parent@example.cn" in row.rcpt_to]
    assert acknowledged == [["parent@example.cn"]]


def test_attachments_keep_the_names_their_sender_gave(app) -> None:
    assert deliver(app, (WILD / "raw-8bit-file-names-shift-jis.eml").read_bytes()) == "created"
    assert deliver(app, (WILD / "spaced-file-names.eml").read_bytes()) == "created"
    with app.sessions() as session:
        names = [row.filename for row in session.execute(
            select(AttachmentRow).order_by(AttachmentRow.id)).scalars()]
    assert names == ["見積書 最終版.pdf", "写真.jpg", "Screen Shot  2024-05-21 at  10.02.11 .png",
                     "chat   log part  2.pdf", "notes  —  copy.txt"]
