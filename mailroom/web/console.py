"""The console as an ASGI application: its routes, each with the role it needs, and the
headers every answer carries (a strict Content-Security-Policy: nothing but the
console's own stylesheet; no script, no frame, forms only to itself)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailroom.app import App
from mailroom.vocabulary import StaffRole
from mailroom.web import cases, manage, signin
from mailroom.web.context import (
    TEMPLATES,
    Console,
    Handler,
    console_environment,
    endpoint,
    security_headers,
)
from mailroom.web.metrics import StatusSource, metrics_endpoint

log = logging.getLogger("mailroom.web")

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
STATIC = TEMPLATES.parent / "static"
P, M, A = StaffRole.PRACTITIONER, StaffRole.MANAGER, StaffRole.ADMIN


class SecurityHeaders:
    """Adds the security headers to every answer that has not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in security_headers(CSP).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in self.headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


def build_console(app: App, base_url: str, on_queued: Callable[[], None],
                  status: StatusSource | None = None) -> Starlette:
    """The console for ``app``, reached at ``base_url``; ``on_queued`` is called once a
    page queued mail (a sign-in link, a reply). ``status``: the status report behind
    ``/metrics`` (given by the runtime; without it there is no ``/metrics``)."""
    console = Console(app, base_url.rstrip("/"), on_queued,
                      console_environment(app.settings.timezone))

    def page(path: str, handler: Handler, role: StaffRole | None, *,
             methods: tuple[str, ...] = ("GET",), second_factor: bool = True,
             uploads: bool = False) -> Route:
        return Route(path, endpoint(handler, console, role=role, second_factor=second_factor,
                                    uploads=uploads), methods=list(methods))

    def healthz(request: Request) -> Response:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return PlainTextResponse("ok\n")

    routes = [
        Route("/healthz", healthz),
        *([Route("/metrics", metrics_endpoint(status, app.settings.web_metrics_from))]
          if status is not None else []),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        page("/signin", signin.signin_form, None),
        page("/signin", signin.signin_request, None, methods=("POST",)),
        page("/signin/link/{token}", signin.link_landing, None),
        page("/signin/link", signin.link_use, None, methods=("POST",)),
        page("/signin/code", signin.code_form, P, second_factor=False),
        page("/signin/code", signin.code_check, P, methods=("POST",), second_factor=False),
        page("/signout", signin.signout, None, methods=("POST",)),
        page("/", cases.queue, P),
        page("/search", cases.search, P),
        page("/cases/{ref}", cases.case_page, P),
        page("/cases/{ref}/reply", cases.reply, P, methods=("POST",), uploads=True),
        page("/cases/{ref}/assign", cases.assign, P, methods=("POST",)),
        page("/cases/{ref}/status", cases.change_status, P, methods=("POST",)),
        page("/cases/{ref}/country", cases.change_country, P, methods=("POST",)),
        page("/cases/{ref}/set", cases.set_value, P, methods=("POST",)),
        page("/cases/{ref}/escalate", cases.escalate, P, methods=("POST",)),
        page("/cases/{ref}/escalations/{escalation:int}/outcome", cases.record_outcome, P,
             methods=("POST",)),
        page("/cases/{ref}/merge", cases.merge, P, methods=("POST",)),
        page("/cases/{ref}/participant", cases.participant, P, methods=("POST",)),
        page("/cases/{ref}/withhold", cases.withhold, P, methods=("POST",)),
        page("/cases/{ref}/files/{file_id:int}", cases.download, P),
        page("/escalations", manage.escalations, P),
        page("/reports", manage.reports, M),
        page("/audit", manage.audit, M),
        page("/users", manage.users, A),
        page("/users/add", manage.users_add, A, methods=("POST",)),
        page("/users/remove", manage.users_remove, A, methods=("POST",)),
        page("/account", manage.account, P),
        page("/account/code", manage.account_code, P, methods=("POST",)),
    ]

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("console error on %s: %s", request.url.path, type(exc).__name__,
                  exc_info=exc)
        return HTMLResponse("<!doctype html><title>Error</title><p>Something went wrong on "
                            "our side; it has been logged. Go back and try again.</p>",
                            status_code=500)

    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                     exception_handlers={Exception: internal_error})
