"""The staff console in a real browser (Playwright driving Debian's Chromium): a
practitioner signs in through the mailed link, finds a case by a reported URL, reads
its timeline and replies, and the requester receives the relay; and what is refused
(a signed-out visitor, a forwarded link, a form without its CSRF token, a
practitioner opening the audit, a withheld file). Screenshots go to the test's
tmp dir (and to ``$MAILROOM_CONSOLE_SCREENSHOTS`` when set: docs/console/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.sending.sender import send_due
from mailroom.store.models import AttachmentRow
from mailroom.web.server import ConsoleServer
from tests.chromium import launched_chromium
from tests.factories import deliver, mail, tickets
from tests.web.console import mail_to, sent_mail, sign_in_link, text_of

pytest.importorskip("playwright.sync_api")

ANNA = "anna@helpline.example"
TEACHER = "teacher@school.example"


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(clock=None, safeguarding={"illegal_keywords": ["indecent images"]})


@pytest.fixture
def console(app: App) -> Iterator[str]:
    """The console served by uvicorn on a free port; its base URL."""
    server = ConsoleServer(app, on_queued=lambda: send_due(app))
    server.start()
    yield server.base_url
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched_chromium() as browser:
        yield browser


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    target = os.environ.get("MAILROOM_CONSOLE_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)


def sign_in(app: App, page: Any, base: str, address: str = ANNA) -> None:
    page.goto(f"{base}/")
    assert page.url == f"{base}/signin"
    page.fill("input[name=address]", address)
    page.click("text=Mail me a sign-in link")
    page.wait_for_selector("text=Check your mail")
    page.goto(sign_in_link(app, address))
    page.click("text=Sign in to the console")
    page.wait_for_selector("h1:has-text('Queue')")


def test_a_practitioner_finds_a_case_reads_it_and_replies(
        app: App, console: str, chromium: Any, tmp_path: Path) -> None:
    deliver(app, mail(message_id="first@school.example"))
    deliver(app, mail(sender="parent@home.example", name="A Parent", subject="Group chat",
                      body="Nasty messages in a WhatsApp group about my son.\n"))
    reference = tickets(app)[0].reference
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{console}/signin")
    shoot(page, tmp_path, "console-signin")
    sign_in(app, page, console)
    shoot(page, tmp_path, "console-queue")

    page.fill("input[name=q]", "tiktok.com/@fakehead")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("text=1 cases match")
    assert page.locator(f"a:has-text('{reference}')").count() == 1
    assert "Group chat" not in page.content()
    page.click(f"a:has-text('{reference}')")
    page.wait_for_selector("h2:has-text('Timeline')")
    assert "Someone made a fake TikTok account" in page.inner_text("section.timeline")
    assert "ticket.created" in page.inner_text("section.timeline")

    page.fill("textarea[name=text]", "Thank you: we have reported the account to TikTok.")
    page.click("text=Send to requester")
    page.wait_for_selector("p.done")
    shoot(page, tmp_path, "console-case")
    relays = [m for m in mail_to(app, TEACHER) if "reported the account to TikTok" in text_of(m)]
    assert len(relays) == 1 and relays[0]["In-Reply-To"] == "<first@school.example>"
    context.close()


def attached(message: Any) -> dict[str, bytes]:
    return {str(part.get_filename()): part.get_payload(decode=True)
            for part in message.iter_attachments()}


def test_a_practitioner_attaches_files_to_a_reply_and_to_a_note(
        app: App, console: str, chromium: Any, tmp_path: Path) -> None:
    deliver(app, mail(cc=["nosy@school.example"], message_id="first@school.example"))
    reference = tickets(app)[0].reference
    advice = b"%PDF-1.4 what the school can do next\n" + bytes(range(256)) * 40
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(app, page, console)
    page.goto(f"{console}/cases/{reference}")
    page.fill("textarea[name=text]", "Here is our advice, as a letter you can keep.")
    page.set_input_files("input[name=files]", files=[
        {"name": "advice.pdf", "mimeType": "application/pdf", "buffer": advice}])
    page.click("text=Send to requester")
    page.wait_for_selector("p.done")
    [relay] = [m for m in mail_to(app, TEACHER) if "Here is our advice" in text_of(m)]
    assert attached(relay) == {"advice.pdf": advice}
    assert relay["In-Reply-To"] == "<first@school.example>" and relay["Cc"] is None
    carrying = [m["Message-ID"] for m in sent_mail(app) if advice in attached(m).values()]
    assert carrying == [relay["Message-ID"]]  # not the pending Cc, not the practitioners

    internal = b"%PDF-1.4 the school's own report, for the helpline only"
    page.fill("textarea[name=text]", "The school's report, for us.")
    page.set_input_files("input[name=files]", files=[
        {"name": "school report.pdf", "mimeType": "application/pdf", "buffer": internal}])
    page.click("text=Add internal note")
    page.wait_for_selector("p.done")
    assert not [m for m in sent_mail(app) if internal in attached(m).values()]
    assert not [m for m in sent_mail(app) if "school's report, for us" in text_of(m)]
    timeline = page.inner_text("section.timeline")
    assert "advice.pdf" in timeline and "school report.pdf" in timeline
    shoot(page, tmp_path, "console-reply-files")
    with page.expect_download() as download:
        page.click("a:has-text('advice.pdf')")
    assert Path(download.value.path()).read_bytes() == advice
    context.close()


def test_what_the_console_refuses(app: App, console: str, chromium: Any) -> None:
    deliver(app, mail(body="A pupil received indecent images.\n",
                      attachments=[("shot.png", "image/png", b"\x89PNG fake")]))
    reference = tickets(app)[0].reference

    stranger = chromium.new_context()
    visit = stranger.new_page()
    visit.goto(f"{console}/cases/{reference}")
    assert visit.url == f"{console}/signin" and "indecent" not in visit.content()

    asking = chromium.new_context()
    page = asking.new_page()
    page.goto(f"{console}/signin")
    page.fill("input[name=address]", ANNA)
    page.click("text=Mail me a sign-in link")
    page.wait_for_selector("text=Check your mail")
    forwarded = stranger.new_page()
    forwarded.goto(sign_in_link(app, ANNA))
    forwarded.click("text=Sign in to the console")
    assert "does not work" in forwarded.content()
    forwarded.goto(f"{console}/")
    assert forwarded.url == f"{console}/signin"

    page.goto(sign_in_link(app, ANNA))  # the same link, in the browser that asked: works
    page.click("text=Sign in to the console")
    page.wait_for_selector("h1:has-text('Queue')")

    no_token = asking.request.post(f"{console}/cases/{reference}/status",
                                   form={"status": "closed"})
    assert no_token.status == 403
    assert tickets(app)[0].status == "open"

    assert page.goto(f"{console}/audit").status == 403
    with app.sessions() as session:
        file_id = session.execute(select(AttachmentRow.id)).scalar_one()
    refused = page.goto(f"{console}/cases/{reference}/files/{file_id}")
    assert refused.status == 403 and "PNG fake" not in page.content()
    for context in (stranger, asking):
        context.close()
