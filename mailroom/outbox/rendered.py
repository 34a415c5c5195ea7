"""A queued mail in its rendered form, composed into MIME when it is sent.

``queue_mail`` fixes everything a reader of the mail will see (text, HTML,
subject, addresses, Message-ID, Date, thread headers) and stores it as a
small JSON document in ``outbox.rendered``; building the MIME message with
the email package is left to the sender. The inbound pipeline, which queues
an acknowledgement and a notification for most messages, then does not pay
for composing mail inside its transaction, and a retry composes the same
mail again (only the MIME boundaries differ). It is the only form a queued
mail is kept in (migration 0011 read the older composed bytes back into it).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

from mailroom.mailtypes import Address
from mailroom.outbox.compose import check_values, compose_message


class HasContent(Protocol):
    """An outbox row."""

    @property
    def rendered(self) -> dict[str, Any] | None: ...


def rendered_form(
    *,
    from_addr: Address,
    to: Sequence[Address],
    cc: Sequence[Address],
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    reply_to: Address | None,
    auto_submitted: str | None,
    loop_token: str,
    extra_headers: Mapping[str, str],
    date: datetime,
) -> dict[str, Any]:
    """The JSON form of a mail, after the checks composing would make of our own values.

    Raises ValueError (as ``compose_message`` would) for an address no header
    can carry or a header name of ours that is not allowed, so a bad draft is
    refused when it is queued, not when it is sent.
    """
    check_values(from_addr=from_addr, to=to, cc=cc, reply_to=reply_to,
                 extra_headers=extra_headers, date=date)
    return {
        "from": _pair(from_addr), "to": [_pair(a) for a in to], "cc": [_pair(a) for a in cc],
        "reply_to": _pair(reply_to) if reply_to else None, "subject": subject, "text": text,
        "html": html, "message_id": message_id, "in_reply_to": in_reply_to,
        "references": list(references), "auto_submitted": auto_submitted,
        "loop_token": loop_token, "extra_headers": dict(extra_headers),
        "date": date.isoformat(),
    }


def compose_rendered(
    rendered: Mapping[str, Any], attachments: Sequence[tuple[str, str, bytes]] = ()
) -> EmailMessage:
    """The MIME message of a rendered form, with ``attachments`` (filename, type, data)."""
    return compose_message(
        from_addr=_address(rendered["from"]), to=[_address(p) for p in rendered["to"]],
        cc=[_address(p) for p in rendered["cc"]], subject=rendered["subject"],
        text=rendered["text"], html=rendered["html"], message_id=rendered["message_id"],
        in_reply_to=rendered["in_reply_to"], references=rendered["references"],
        reply_to=_address(rendered["reply_to"]) if rendered["reply_to"] else None,
        auto_submitted=rendered["auto_submitted"], loop_token=rendered["loop_token"],
        extra_headers=rendered["extra_headers"], date=datetime.fromisoformat(rendered["date"]),
        attachments=attachments,
    )


def with_note(rendered: Mapping[str, Any], note: str) -> dict[str, Any]:
    """The rendered form with a closing paragraph added to its text (and its HTML)."""
    text = str(rendered["text"]).rstrip("\n") + f"\n\n{note}\n"
    page = rendered["html"]
    if page is not None:
        paragraph = f"<p>{html.escape(note)}</p>\n"
        at = page.lower().rfind("</body>")
        page = page[:at] + paragraph + page[at:] if at >= 0 else page + paragraph
    return {**rendered, "text": text, "html": page}


def outgoing_bytes(item: HasContent) -> bytes | None:
    """The mail of an outbox row as it goes out without its files; None once erased."""
    if item.rendered is not None:
        return compose_rendered(item.rendered).as_bytes()
    return None


def _pair(address: Address) -> list[str]:
    return [address.addr, address.name]


def _address(pair: Sequence[str]) -> Address:
    return Address(pair[0], pair[1])
