"""The doors, wired in one place, for the daemon and for ``mailroom tick``.

What the settings ask for is built here and nowhere else:

- :func:`door_inbox`: the inbox every door hands its mail to (the door
  contract, :mod:`mailroom.doors.contract`), over the App's door sessions.
  The daemon's inbox wakes its worker each time a message was stored, so mail
  is processed at once whichever door it came through.
- :func:`smtp_door`: the SMTP listener (``[smtp]``), with STARTTLS when a
  certificate is set (:func:`smtp_tls_context`).
- :func:`imap_doors`: one :class:`AccountDoor` per ``[[imap]]`` account: its
  poller (cursor kept in the database) and its lock. The lock,
  :class:`~mailroom.store.locks.ProcessLock` ``imap:<name>``, is a PostgreSQL
  advisory lock (or a file lock under ``var/locks`` on SQLite): one process
  at a time polls an account, whatever command it runs.

An account is driven in one of two ways, through the same poller and the
same lock:

- :meth:`AccountDoor.serve` is the daemon's thread for the account. It takes
  the lock (and tries again every :data:`LOCK_RETRY_SECONDS` while another
  process holds it, or the database is down), runs the poller's loop (IDLE,
  reconnect with back-off) for as long as it holds the lock, and a watcher
  ends that loop when the lock is lost (its database connection died), so
  that another process can take over.
- :meth:`AccountDoor.poll_once` is ``mailroom tick``'s: it drains the folder
  once when it can take the lock at once, and leaves the account to the
  process that holds it otherwise (:func:`poll_accounts_once` says so in the
  tick's results).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from mailroom.app import App
from mailroom.doors.contract import Arrival, Inbox, StoreInbox
from mailroom.doors.imap import ImapPoller
from mailroom.doors.smtp import HelplineHandler, SmtpDoor
from mailroom.errors import ConfigError, StoreUnavailable
from mailroom.settings import ImapAccount, Settings
from mailroom.store.imap_state import DatabaseImapState
from mailroom.store.inbox import Stored
from mailroom.store.locks import ProcessLock

log = logging.getLogger("mailroom.runtime.doors")

LOCK_RETRY_SECONDS = 5.0  # how often a daemon asks again for a lock another process holds
LOCK_CHECK_SECONDS = 5.0  # how often a daemon checks that it still holds its lock
HELD_ELSEWHERE = "skipped: another mailroom process polls this account"


class WakingInbox:
    """An inbox that calls ``wake`` after each message it stored (the daemon's worker)."""

    def __init__(self, inbox: Inbox, wake: Callable[[], None]) -> None:
        self.inbox = inbox
        self.wake = wake

    def receive(self, arrival: Arrival) -> Stored:
        stored = self.inbox.receive(arrival)
        self.wake()
        return stored


def door_inbox(door_sessions: sessionmaker[Session],
               wake: Callable[[], None] | None = None) -> Inbox:
    """The inbox the doors hand mail to, stored through ``door_sessions`` (the App's);
    ``wake`` is called after each message stored."""
    inbox = file_inbox(door_sessions)
    return WakingInbox(inbox, wake) if wake is not None else inbox


def file_inbox(door_sessions: sessionmaker[Session]) -> StoreInbox:
    """The doors' inbox as ``mailroom ingest`` uses it: also by the batch
    (:meth:`StoreInbox.receive_many`)."""
    return StoreInbox(door_sessions)


def smtp_door(settings: Settings, inbox: Inbox) -> SmtpDoor:
    """The SMTP listener the settings describe (not started)."""
    handler = HelplineHandler(inbox, settings.domains, max_recipients=settings.smtp_max_recipients)
    return SmtpDoor(handler, host=settings.smtp_host, port=settings.smtp_port,
                    max_size=settings.smtp_max_size, hostname=settings.domain,
                    max_connections_per_client=settings.smtp_max_connections_per_client,
                    idle_timeout=settings.smtp_idle_timeout, tls_context=smtp_tls_context(settings),
                    require_starttls=settings.smtp_require_starttls)


def smtp_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context for STARTTLS, or None when no certificate is set.

    A certificate or key that cannot be loaded stops the start with a
    :class:`ConfigError` naming the key (TLS 1.2 at least).
    """
    cert, key = settings.smtp_tls_certificate, settings.smtp_tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError([f"smtp.tls_certificate: cannot read {exc.filename or cert}: "
                           "no such file"]) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"smtp.tls_certificate: cannot load {cert} with key {key} "
                           f"({getattr(exc, 'strerror', None) or exc})"]) from None
    return context


def imap_doors(app: App, inbox: Inbox) -> list[AccountDoor]:
    """One door per configured IMAP account, each with its poller and its lock."""
    return [account_door(app, account, inbox) for account in app.settings.imap_accounts]


def account_door(app: App, account: ImapAccount, inbox: Inbox) -> AccountDoor:
    poller = ImapPoller(account, inbox, DatabaseImapState(app.sessions))
    lock = ProcessLock(app.engine, f"imap:{account.name}", app.settings.var_dir / "locks")
    return AccountDoor(account.name, poller, lock)


class AccountDoor:
    """One IMAP account: its poller, run only while this process holds its lock."""

    def __init__(self, name: str, poller: ImapPoller, lock: ProcessLock) -> None:
        self.name = name
        self.poller = poller
        self.lock = lock

    def poll_once(self) -> int | None:
        """Drain the folder once under the lock; None when another process holds it.

        Raises ``StoreUnavailable`` when the database cannot be reached (the
        messages stay in the folder), and what the poller raises.
        """
        if not self.lock.acquire():
            log.info("imap %s: another process polls the account; skipped", self.name)
            return None
        try:
            return self.poller.poll_once()
        finally:
            self.lock.release()

    def serve(self, stop: threading.Event) -> None:
        """The daemon's thread: poll while this process holds the lock, until ``stop``."""
        while not stop.is_set():
            if not self._take_lock():
                stop.wait(LOCK_RETRY_SECONDS)
                continue
            log.info("imap %s: this process polls the account", self.name)
            lost = threading.Event()
            watcher = threading.Thread(target=self._watch_lock, args=(stop, lost),
                                       name=f"mailroom-imap-{self.name}-lock", daemon=True)
            watcher.start()
            try:
                self.poller.run(lost)
            finally:
                lost.set()
                watcher.join(timeout=5)
                self.lock.release()

    def _take_lock(self) -> bool:
        try:
            return self.lock.acquire()
        except Exception as exc:  # noqa: BLE001 - database down: try again later
            log.warning("imap %s: cannot take the poller lock: %s", self.name, exc)
            return False

    def _watch_lock(self, stop: threading.Event, lost: threading.Event) -> None:
        """Set ``lost`` (which ends the poller's loop) on ``stop`` or when the lock is gone."""
        while not lost.is_set():
            if stop.is_set() or not self.lock.held():
                lost.set()
                return
            lost.wait(LOCK_CHECK_SECONDS)


def poll_accounts_once(app: App) -> dict[str, int | str]:
    """``mailroom tick``: each IMAP account once, under its lock; results by ``imap:<name>``.

    An account another process polls is skipped and said so; an account that
    fails is reported and the others are polled all the same. A database
    that cannot be reached stops the tick (``StoreUnavailable``): every
    message stays in its folder for the next one.
    """
    results: dict[str, int | str] = {}
    for door in imap_doors(app, door_inbox(app.door_sessions)):
        key = f"imap:{door.name}"
        try:
            stored = door.poll_once()
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - report, keep going with the others
            results[key] = f"error: {type(exc).__name__}: {exc}"
            continue
        results[key] = HELD_ELSEWHERE if stored is None else stored
    return results
