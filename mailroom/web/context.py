"""What a console page is handed, and how pages answer.

Every route is a plain function ``(page: Page) -> Response`` run in a worker
thread (the database calls block); :func:`endpoint` wraps it: reads the form,
opens one database session (committed when the page answered without an
error), loads the browser's session, and refuses what the visitor may not do
before the page runs: no session (the sign-in page), a second factor owed, a
role too low (403), a POST without its CSRF token (403).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message, Receive

from mailroom.app import App
from mailroom.cases.tickets import record_event
from mailroom.vocabulary import StaffRole
from mailroom.web.auth import Visit, anonymous_csrf, load_session, same_token
from mailroom.web.totp import TotpKeyError

log = logging.getLogger("mailroom.web")

SESSION_COOKIE = "mailroom_session"
PRE_COOKIE = "mailroom_pre"  # before sign-in: the seed of the form token
NONCE_COOKIE = "mailroom_signin"  # the browser that asked for a sign-in link
TEMPLATES = Path(__file__).resolve().parent / "templates"
KEY_TROUBLE = ("Your second factor cannot be checked now: the console's key file is not "
               "the right one. The admins have been told in the log; try again later.")


@dataclass(frozen=True)
class Console:
    """What every page shares: the App, the console's own address, the templates,
    and what to call once mail was queued (the daemon's worker wakes)."""

    app: App
    base_url: str
    on_queued: Callable[[], None]
    env: Environment

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")


def console_environment(tz: tzinfo) -> Environment:
    """The console's templates: HTML-escaped, times in the helpline's zone."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["urlpart"] = lambda value: quote(str(value), safe="")

    def local(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""

    env.filters["local"] = local
    return env


class Refused(Exception):
    """The visitor may not do this: the status and the sentence to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Page:
    """One request, as a page sees it."""

    console: Console
    request: Request
    db: Session
    form: FormData | None
    visit: Visit | None
    pre_seed: str  # the anonymous form-token seed (a new one when the cookie was missing)
    new_cookies: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def app(self) -> App:
        return self.console.app

    @property
    def client(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    @property
    def actor(self) -> str:
        assert self.visit is not None
        return self.visit.staff.address

    @property
    def csrf(self) -> str:
        if self.visit is not None:
            return self.visit.row.csrf_token
        return anonymous_csrf(self.app.settings, self.pre_seed)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    def files(self, name: str) -> list[UploadFile]:
        """The files chosen in the form's file field ``name`` (none: an empty list)."""
        if self.form is None:
            return []
        return [value for value in self.form.getlist(name)
                if isinstance(value, UploadFile) and value.filename]

    def arg(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def audit(self, action: str, *, ticket_id: int | None = None, **detail: Any) -> None:
        record_event(self.db, action=action, actor=self.actor, at=self.app.now(),
                     ticket_id=ticket_id, **detail)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        staff = self.visit.staff if self.visit and not self.visit.needs_second_factor else None
        html = self.console.env.get_template(template).render(
            csrf=self.csrf, staff=staff, helpline=self.app.settings.helpline_name,
            roles=StaffRole, **context)
        return HTMLResponse(html, status_code=status)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        self.new_cookies[name] = (value, max_age)


Handler = Callable[[Page], Response]


def endpoint(handler: Handler, console: Console, *, role: StaffRole | None,
             second_factor: bool = True,
             uploads: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of a page; ``role`` None: open to anyone. ``uploads``: its
    form may carry files (``multipart/form-data``); no other page reads one."""

    async def run(request: Request) -> Response:
        form = None
        try:
            if request.method == "POST":
                form = await read_form(request, console, uploads)
            return await run_in_threadpool(_answer, handler, console, request, form, role,
                                           second_factor)
        except BodyRefused as refused:
            return bare_page(console, refused.status, refused.reason)
        finally:
            if form is not None:
                await form.close()

    return run


class BodyRefused(Exception):
    """A request body refused before it is read: the status and the sentence."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_form(request: Request, console: Console, uploads: bool) -> FormData | None:
    """The form of a POST. Files only where the page takes them, only from a browser
    signed in with its second factor (else nothing of the body is read, and the guard
    refuses the form for its missing token), and at most ``smtp.max_message_size``
    bytes in all: no more than a reply by mail may be."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        return await request.form()
    if not uploads:
        raise BodyRefused(415, "This form takes no files.")
    if not await run_in_threadpool(_signed_in, console, request):
        return None
    limit = console.app.settings.smtp_max_size
    declared = request.headers.get("content-length", "")
    too_large = BodyRefused(413, f"The files are too large together: a reply and its files "
                                 f"may be at most {megabytes(limit)} (smtp.max_message_size). "
                                 "Go back and send fewer.")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    try:
        return await Request(request.scope, _capped(request.receive, limit)).form()
    except _OverLimit:
        raise too_large from None


class _OverLimit(Exception):
    pass


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive``, stopping once the body passes ``limit`` bytes."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _OverLimit
        return message

    return capped


def _signed_in(console: Console, request: Request) -> bool:
    """Whether the browser's session is live and past its second factor (asked in a
    session of its own, which changes nothing)."""
    with console.app.sessions() as db:
        visit = load_session(console.app.settings, db, request.cookies.get(SESSION_COOKIE),
                             clock=console.app.clock)
        signed_in = visit is not None and not visit.needs_second_factor
        db.rollback()
    return signed_in


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.3g} MB"


def bare_page(console: Console, status: int, reason: str) -> HTMLResponse:
    """The refusal page, for a request refused before any session was looked at."""
    html = console.env.get_template("refused.html").render(
        csrf="", staff=None, helpline=console.app.settings.helpline_name, roles=StaffRole,
        reason=reason)
    return HTMLResponse(html, status_code=status)


def _answer(handler: Handler, console: Console, request: Request, form: FormData | None,
            role: StaffRole | None, second_factor: bool) -> Response:
    with console.app.sessions() as db:
        seed = request.cookies.get(PRE_COOKIE) or ""
        page = Page(console, request, db, form, None, seed or secrets.token_urlsafe(24))
        if not seed:
            page.set_cookie(PRE_COOKIE, page.pre_seed)
        page.visit = load_session(console.app.settings, db, request.cookies.get(SESSION_COOKIE),
                                  clock=console.app.clock)
        try:
            response = _guarded(handler, page, role, second_factor)
        except Refused as refused:
            db.rollback()
            if page.visit is not None:
                page.audit("console.refused", path=request.url.path, reason=refused.reason)
            response = page.render("refused.html", refused.status, reason=refused.reason)
        except TotpKeyError as problem:  # the admin's to fix: one line in the log
            db.rollback()
            log.error("%s", problem)
            response = page.render("refused.html", 503, reason=KEY_TROUBLE)
        db.commit()
    for then in page.after_commit:
        then()
    if (page.visit is None and request.cookies.get(SESSION_COOKIE)
            and SESSION_COOKIE not in page.new_cookies):
        response.delete_cookie(SESSION_COOKIE, path="/")
    for name, (value, max_age) in page.new_cookies.items():
        set_cookie(response, console, name, value, max_age)
    return response


def _guarded(handler: Handler, page: Page, role: StaffRole | None,
             second_factor: bool) -> Response:
    if page.request.method == "POST" and not same_token(page.csrf, page.field("csrf") or None):
        raise Refused(403, "This form has expired or did not come from the console: "
                           "go back, reload the page and try again.")
    if role is not None:
        if page.visit is None:
            return page.redirect("/signin")
        if second_factor and page.visit.needs_second_factor:
            return page.redirect("/signin/code")
        if not page.visit.staff.may(role):
            raise Refused(403, f"This page is for the {role} role and above.")
    return handler(page)


def set_cookie(response: Response, console: Console, name: str, value: str,
               max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, Secure when the console is served over TLS."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=console.secure)


def security_headers(csp: str) -> Mapping[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
