"""Serving the console with uvicorn, in a thread of ``mailroom run`` or of ``mailroom web``.

The listening socket is bound before the server starts, so a ``listen`` with port
0 gets a free port that :attr:`ConsoleServer.port` reports (the tests' way), and
the sign-in links name the console's real address when ``web.base_url`` is not
set. With ``web.tls_cert`` and ``web.tls_key`` it serves TLS itself. Before it
listens, the key file of the second-factor secrets is checked against them, and
secrets an earlier release kept in the clear are encrypted
(:func:`mailroom.web.totp.seal_clear_secrets`).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import uvicorn

from mailroom.app import App
from mailroom.errors import ConfigError
from mailroom.vocabulary import StaffRole
from mailroom.web.console import build_console
from mailroom.web.metrics import StatusSource
from mailroom.web.totp import seal_clear_secrets

log = logging.getLogger("mailroom.web")


class ConsoleServer:
    """The console on ``web.listen``; :meth:`start` in a thread, :meth:`stop` to end."""

    def __init__(self, app: App, on_queued: Callable[[], None],
                 status: StatusSource | None = None) -> None:
        settings = app.settings
        check_roles(settings.web_totp_roles)
        seal_clear_secrets(settings, app.sessions)  # a wrong key file stops the start, in one line
        self.socket = bind(settings.web_host, settings.web_port)
        self.port: int = self.socket.getsockname()[1]
        tls = settings.web_tls_cert is not None and settings.web_tls_key is not None
        host = settings.web_host if ":" not in settings.web_host else f"[{settings.web_host}]"
        self.base_url = settings.web_base_url or (
            f"{'https' if tls else 'http'}://{host}:{self.port}")
        config = uvicorn.Config(
            build_console(app, self.base_url, on_queued, status), lifespan="off", access_log=False,
            log_level="warning", server_header=False, proxy_headers=False,
            ssl_certfile=str(settings.web_tls_cert) if tls else None,
            ssl_keyfile=str(settings.web_tls_key) if tls else None)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="mailroom-console", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.socket.close()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError([f"web.listen: cannot listen on {host}:{port} ({exc.strerror})"]
                          ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def check_roles(roles: tuple[str, ...]) -> None:
    unknown = [role for role in roles if role not in tuple(StaffRole)]
    if unknown:
        raise ConfigError([f"web.totp_required_roles: unknown role {unknown[0]!r} "
                           f"(one of: {', '.join(StaffRole)})"])
