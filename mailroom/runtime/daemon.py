"""The daemon (``mailroom run``): the SMTP door, the IMAP doors, the inbox worker
and the scheduler together.

Each part runs in its own thread; the stop event (SIGTERM or SIGINT, see
:mod:`mailroom.cli.run`) makes every part wind down. One driver for each piece
of work (:mod:`mailroom.runtime.jobs`): the worker processes the inbox and
sends the outbox, woken as soon as a door stored a message and every few
seconds otherwise; the scheduler runs the scheduled jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mailroom.app import App
from mailroom.doors.imap import ImapPoller
from mailroom.doors.smtp import HelplineHandler, SmtpDoor
from mailroom.errors import StoreUnavailable
from mailroom.pipeline import process_inbox
from mailroom.runtime.jobs import SCHEDULED
from mailroom.runtime.scheduler import start_background
from mailroom.sending.sender import send_due
from mailroom.settings import ImapAccount
from mailroom.store.imap_state import DatabaseImapState
from mailroom.store.inbox import store_raw
from mailroom.store.locks import ProcessLock

log = logging.getLogger("mailroom.runtime.daemon")

WORKER_IDLE_SECONDS = 5.0
STORE_RETRY_SECONDS = 5.0
LOCK_RETRY_SECONDS = 5.0
LOCK_CHECK_SECONDS = 5.0


class Daemon:
    """Starts the parts, waits for the stop event, stops them in reverse order."""

    def __init__(self, app: App, stop: threading.Event) -> None:
        self.app = app
        self.stop = stop
        self.wake = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stoppers: list[Callable[[], None]] = []
        self.smtp_port: int | None = None  # the port the listener got (``listen`` may say 0)

    def run(self) -> None:
        try:
            self.start()
            log.info("mailroom running (%s)", ", ".join(self.describe()))
            self.stop.wait()
        finally:
            self.shutdown()

    def start(self) -> None:
        self._start_thread("worker", self._work)
        scheduler = start_background(self.app, SCHEDULED)
        self.stoppers.append(lambda: scheduler.shutdown(wait=True))
        if self.app.settings.smtp_enabled:
            self._start_smtp()
        for account in self.app.settings.imap_accounts:
            self._start_imap(account)

    def describe(self) -> list[str]:
        s = self.app.settings
        parts = ["inbox worker", "scheduler"]
        if s.smtp_enabled:
            parts.append(f"SMTP on {s.smtp_host}:{self.smtp_port or s.smtp_port}")
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

    def accept(self, raw: bytes, mail_from: str | None, rcpt_to: list[str]) -> None:
        store_raw(self.app.door_sessions, raw, door="smtp", mail_from=mail_from, rcpt_to=rcpt_to)

    def _start_smtp(self) -> None:
        s = self.app.settings
        handler = HelplineHandler(self.accept, s.domains, on_stored=self.wake.set,
                                  max_recipients=s.smtp_max_recipients)
        door = SmtpDoor(handler, host=s.smtp_host, port=s.smtp_port, max_size=s.smtp_max_size,
                        hostname=s.domain,
                        max_connections_per_client=s.smtp_max_connections_per_client,
                        idle_timeout=s.smtp_idle_timeout)
        door.start()
        self.smtp_port = door.port
        self.stoppers.append(door.stop)

    def _start_imap(self, account: ImapAccount) -> None:
        def accept(raw: bytes, door_ref: str) -> None:
            store_raw(self.app.door_sessions, raw, door="imap", door_ref=door_ref)
            self.wake.set()

        poller = ImapPoller(account, accept, DatabaseImapState(self.app.sessions))
        self._start_thread(f"imap-{account.name}", lambda: self._poll_when_locked(
            account.name, poller))

    def _poll_when_locked(self, name: str, poller: ImapPoller) -> None:
        """Poll the account only while this process holds its lock (one poller per
        account across every mailroom process); wait and retry otherwise."""
        lock = ProcessLock(self.app.engine, f"imap:{name}", self.app.settings.var_dir / "locks")
        while not self.stop.is_set():
            try:
                acquired = lock.acquire()
            except Exception as exc:  # noqa: BLE001 - database down: try again later
                log.warning("imap %s: cannot take the poller lock: %s", name, exc)
                acquired = False
            if not acquired:
                self.stop.wait(LOCK_RETRY_SECONDS)
                continue
            log.info("imap %s: this process polls the account", name)
            lost = threading.Event()
            watcher = threading.Thread(target=self._watch_lock, args=(lock, lost), daemon=True)
            watcher.start()
            try:
                poller.run(lost)
            finally:
                lost.set()
                watcher.join(timeout=5)
                lock.release()

    def _watch_lock(self, lock: ProcessLock, lost: threading.Event) -> None:
        while not lost.is_set():
            if self.stop.is_set() or not lock.held():
                lost.set()
                return
            lost.wait(LOCK_CHECK_SECONDS)

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
