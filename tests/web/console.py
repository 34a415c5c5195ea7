"""Helpers for the console's tests: a visitor, the mail the file transport wrote, sign-in
links."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.sending.sender import send_due
from mailroom.web.console import build_console

BASE = "http://testserver"
LINK = re.compile(r"https?://[^\s]+/signin/link/[A-Za-z0-9_-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sent_mail(app: App) -> list[EmailMessage]:
    """Every mail the file transport wrote, oldest first."""
    folder = Path(app.settings.outbound_url.removeprefix("file://"))
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        parsed = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(parsed, EmailMessage)
        found.append(parsed)
    return found


def mail_to(app: App, address: str) -> list[EmailMessage]:
    return [m for m in sent_mail(app) if address in str(m.get("To", ""))]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def sign_in_link(app: App, address: str) -> str:
    """The link in the newest sign-in mail to ``address``."""
    links = [m for m in mail_to(app, address) if "sign-in link" in str(m["Subject"])]
    assert links, f"no sign-in mail to {address}"
    found = LINK.search(text_of(links[-1]))
    assert found, "no link in the sign-in mail"
    return found.group(0)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def browser(app: App) -> TestClient:
    """A visitor of the console (in-process, no redirects followed); what it queues is
    sent at once, as the daemon's sender would."""
    return TestClient(build_console(app, BASE, on_queued=lambda: send_due(app)),
                      base_url=BASE, follow_redirects=False)
