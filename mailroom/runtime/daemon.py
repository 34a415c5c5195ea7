"""The daemon (``mailroom run``): the SMTP door, the IMAP doors, the inbox worker,
the scheduler and the staff console together.

Each part runs in its own thread; the stop event (SIGTERM or SIGINT, see
:mod:`mailroom.cli.run`) makes every part wind down. One driver for each piece
of work (:mod:`mailroom.runtime.jobs`): the worker processes the inbox and
sends the outbox, woken as soon as a door stored a message and every few
seconds otherwise; the scheduler runs the scheduled jobs. The doors, their
inbox, the IMAP accounts' locks and the wake-up of the worker are wired in
:mod:`mailroom.runtime.doors`, which ``mailroom tick`` shares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

from mailroom.app import App
from mailroom.errors import StoreUnavailable
from mailroom.pipeline import process_inbox
from mailroom.runtime.doors import door_inbox, imap_doors, smtp_door
from mailroom.runtime.jobs import SCHEDULED
from mailroom.runtime.scheduler import start_background
from mailroom.runtime.status import collect_status
from mailroom.sending.sender import send_due
from mailroom.web.server import ConsoleServer

log = logging.getLogger("mailroom.runtime.daemon")

WORKER_IDLE_SECONDS = 5.0
STORE_RETRY_SECONDS = 5.0


class Daemon:
    """Starts the parts, waits for the stop event, stops them in reverse order."""

    def __init__(self, app: App, stop: threading.Event) -> None:
        self.app = app
        self.stop = stop
        self.wake = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stoppers: list[Callable[[], None]] = []
        self.smtp_port: int | None = None  # the port the listener got (``listen`` may say 0)
        self.console: ConsoleServer | None = None  # the staff console, when enabled

    def run(self, ready: Callable[[Daemon], None] = lambda daemon: None) -> None:
        """Start every part, call ``ready`` (every part is running), wait for the stop event."""
        try:
            self.start()
            log.info("mailroom running (%s)", ", ".join(self.describe()))
            ready(self)
            self.stop.wait()
        finally:
            self.shutdown()

    @property
    def smtp_address(self) -> str | None:
        """``HOST:PORT`` the SMTP listener listens on (the port it got), once started."""
        if self.smtp_port is None:
            return None
        host = self.app.settings.smtp_host
        return f"[{host}]:{self.smtp_port}" if ":" in host else f"{host}:{self.smtp_port}"

    def start(self) -> None:
        self._start_thread("worker", self._work)
        scheduler = start_background(self.app, SCHEDULED)
        self.stoppers.append(lambda: scheduler.shutdown(wait=True))
        inbox = door_inbox(self.app.door_sessions, wake=self.wake.set)
        if self.app.settings.smtp_enabled:
            door = smtp_door(self.app.settings, inbox)
            door.start()
            self.smtp_port = door.port
            self.stoppers.append(door.stop)
        if self.app.settings.web_enabled:
            self.console = ConsoleServer(self.app, on_queued=self.wake.set,
                                         status=partial(collect_status, self.app))
            self.console.start()
            self.stoppers.append(self.console.stop)
        for account_door in imap_doors(self.app, inbox):
            self._start_thread(f"imap-{account_door.name}",
                               partial(account_door.serve, self.stop))

    def describe(self) -> list[str]:
        s = self.app.settings
        parts = ["inbox worker", "scheduler"]
        if s.smtp_enabled:
            parts.append(f"SMTP on {self.smtp_address or f'{s.smtp_host}:{s.smtp_port}'}")
        if self.console is not None:
            parts.append(f"staff console on {self.console.base_url}")
        parts += [f"IMAP {a.name} ({a.username}@{a.host})" for a in s.imap_accounts]
        return parts

    def shutdown(self) -> None:
        self.stop.set()
        self.wake.set()
        for stopper in reversed(self.stoppers):
            try:
                stopper()
            except Exception:  # noqa: BLE001 - keep stopping the other parts
                log.exception("error while stopping")
        for thread in self.threads:
            thread.join(timeout=30)
        log.info("mailroom stopped")

    def _start_thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"mailroom-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _work(self) -> None:
        while not self.stop.is_set():
            self.wake.clear()
            try:
                counts = process_inbox(self.app)
                if counts:
                    log.info("processed inbox: %s", counts)
                send_due(self.app)
            except StoreUnavailable as exc:
                log.warning("database unavailable, worker waiting: %s", exc)
                self.stop.wait(STORE_RETRY_SECONDS)
                continue
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("inbox worker error")
            self.wake.wait(WORKER_IDLE_SECONDS)
