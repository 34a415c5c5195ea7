"""The IMAP door: one poller per configured mailbox (SPEC section 4).

``ImapPoller`` logs in with imapclient, fetches what is new in the account's
folder in batches (``BODY.PEEK[]``: nothing is marked seen before it is
stored), hands each raw message to the inbox (the door contract,
:mod:`mailroom.doors.contract`: the bytes, with ``imap:<account>:<uidvalidity>:<uid>``
as its reference) and, only after the inbox committed it, moves it to the
processed folder (``MOVE``, else ``COPY`` + ``\\Deleted`` + expunge). A crash
between the two is harmless: the message stays in the folder, is fetched
again, and the inbox finds it a duplicate. A store that cannot be reached
leaves the message, and those after it, in the folder.

The cursor (UIDVALIDITY, last UID) is kept through an :class:`ImapStateStore`
and advances only past messages that were stored and moved. When the folder's
UIDVALIDITY changes the cursor starts again at zero and the folder is rescanned.

``poll_once()`` drains the folder once (``mailroom tick``, tests); ``run(stop)``
is the daemon loop: IDLE when the server offers it, with a fresh search at
least every ``poll_interval`` all the same (else just poll at that interval);
reconnect with exponential back-off after any failure; never raise, never exit
the process. Passwords are never logged.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailroom.doors.contract import Arrival, Envelope, Inbox
from mailroom.errors import StoreUnavailable
from mailroom.settings import ImapAccount

log = logging.getLogger("mailroom.imap")

NAME = "imap"  # the door's name in the envelope

BODY = b"BODY[]"
IDLE_RENEW_LIMIT = 25 * 60  # RFC 2177: servers may drop an IDLE older than 30 minutes


class ImapStateStore(Protocol):
    """Where a poller keeps its cursor, per account name."""

    def load(self, account: str) -> tuple[int, int] | None:
        """``(uidvalidity, last_uid)``, or None when the account was never polled."""

    def save(self, account: str, uidvalidity: int, last_uid: int) -> None:
        """Remember the cursor; called after the messages up to ``last_uid`` left the folder."""

    def polled(self, account: str) -> None:
        """Remember that the folder was just drained (``mailroom status`` shows when)."""


class MemoryImapState:
    """An :class:`ImapStateStore` in memory (tests, and running without a database)."""

    def __init__(self) -> None:
        self._cursors: dict[str, tuple[int, int]] = {}
        self.polls: dict[str, int] = {}  # successful drains per account
        self._lock = threading.Lock()

    def load(self, account: str) -> tuple[int, int] | None:
        with self._lock:
            return self._cursors.get(account)

    def save(self, account: str, uidvalidity: int, last_uid: int) -> None:
        with self._lock:
            self._cursors[account] = (uidvalidity, last_uid)

    def polled(self, account: str) -> None:
        with self._lock:
            self.polls[account] = self.polls.get(account, 0) + 1


@dataclass(frozen=True)
class PollerTiming:
    """How long the daemon loop waits for what (seconds)."""

    idle_check: float = 1.0  # one idle_check() call: how soon a stop request is noticed
    idle_renew: float = 20 * 60  # end and re-issue IDLE this often (at most 25 minutes)
    backoff_initial: float = 1.0  # first wait after a failure; doubles per failure
    backoff_cap: float = 300.0
    timeout: float = 60.0  # socket timeout of every command but IDLE

    def __post_init__(self) -> None:
        if not 0 < self.idle_renew <= IDLE_RENEW_LIMIT:
            raise ValueError(f"idle_renew must be in (0, {IDLE_RENEW_LIMIT}] seconds")


class ConnectionLost(Exception):
    """The server said BYE or closed the connection while we were idling."""


@dataclass
class _Cursor:
    uidvalidity: int
    last_uid: int


class _Backoff:
    """Exponential back-off: initial, 2×, 4× … up to the cap; reset after a success."""

    def __init__(self, initial: float, cap: float) -> None:
        self._initial = initial
        self._cap = cap
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self._initial


def door_ref(account: str, uidvalidity: int, uid: int) -> str:
    """The reference a stored message keeps of where it came from."""
    return f"imap:{account}:{uidvalidity}:{uid}"


def connect(
    account: ImapAccount, *, timeout: float = 60.0, ssl_context: ssl.SSLContext | None = None
) -> IMAPClient:
    """A logged-in connection to the account's server (the caller closes it)."""
    implicit_tls = account.security == "tls"
    client = IMAPClient(
        account.host, port=account.port, ssl=implicit_tls,
        ssl_context=ssl_context if implicit_tls else None, timeout=timeout,
    )
    try:
        if account.security == "starttls":
            client.starttls(ssl_context or ssl.create_default_context())
        client.login(account.username, account.password)
    except BaseException:
        disconnect(client)
        raise
    return client


def disconnect(client: IMAPClient) -> None:
    """Log out if the connection still works; close the socket in any case."""
    try:
        client.logout()
    except (IMAPClientError, OSError):
        with suppress(IMAPClientError, OSError):
            client.shutdown()


class ImapPoller:
    """The IMAP door for one account."""

    def __init__(
        self,
        account: ImapAccount,
        inbox: Inbox,
        state: ImapStateStore,
        *,
        timing: PollerTiming | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if account.folder == account.processed_folder:
            raise ValueError(f"imap {account.name}: folder and processed_folder must differ")
        self.account = account
        self.inbox = inbox
        self.state = state
        self.timing = timing or PollerTiming()
        self.ssl_context = ssl_context

    # --- public --------------------------------------------------------------

    def poll_once(self) -> int:
        """Store and move everything new in the folder once; return how many.

        Errors propagate: ``StoreUnavailable`` (the message it hit and those
        after it stay in the folder), imapclient and socket errors.
        """
        client = self._open()
        try:
            stored = self._drain(client, self._select(client))
            self.state.polled(self.account.name)
            return stored
        finally:
            disconnect(client)

    def run(self, stop: threading.Event) -> None:
        """The daemon loop: serve until ``stop`` is set, surviving every failure."""
        log.info("imap %s: polling %s on %s:%s", self.account.name, self.account.folder,
                 self.account.host, self.account.port)
        backoff = _Backoff(self.timing.backoff_initial, self.timing.backoff_cap)
        while not stop.is_set():
            try:
                self._serve(stop, backoff)
            except Exception as exc:  # noqa: BLE001 - the door thread must survive anything
                delay = backoff.next_delay()
                self._log_failure(exc, delay)
                stop.wait(delay)
        log.info("imap %s: stopped", self.account.name)

    # --- connection ----------------------------------------------------------

    def _open(self) -> IMAPClient:
        client = connect(self.account, timeout=self.timing.timeout, ssl_context=self.ssl_context)
        try:
            if _ensure_folder(client, self.account.processed_folder):
                log.info("imap %s: created folder %s", self.account.name,
                         self.account.processed_folder)
        except BaseException:
            disconnect(client)
            raise
        return client

    def _serve(self, stop: threading.Event, backoff: _Backoff) -> None:
        """One connection's life: drain, wait for news, drain again … until stop or failure."""
        client = self._open()
        log.info("imap %s: connected", self.account.name)
        try:
            cursor = self._select(client)
            while not stop.is_set():
                self._drain(client, cursor, stop)
                self.state.polled(self.account.name)
                backoff.reset()
                if not _new_mail_announced(client):
                    self._wait_for_mail(client, stop)
        finally:
            disconnect(client)

    def _log_failure(self, exc: Exception, delay: float) -> None:
        name, where = self.account.name, f"{self.account.host}:{self.account.port}"
        if isinstance(exc, StoreUnavailable):
            log.warning("imap %s: store unavailable (%s); messages stay in %s, retry in %.1f s",
                        name, exc, self.account.folder, delay)
        elif isinstance(exc, LoginError):
            log.error("imap %s: login to %s as %s failed (%s); retry in %.1f s",
                      name, where, self.account.username, exc, delay)
        elif isinstance(exc, IMAPClientError | OSError | ConnectionLost):
            log.warning("imap %s: connection to %s failed or lost (%s: %s); retry in %.1f s",
                        name, where, type(exc).__name__, exc, delay)
        else:
            log.exception("imap %s: unexpected error; retry in %.1f s", name, delay)

    # --- fetching ------------------------------------------------------------

    def _drain(
        self, client: IMAPClient, cursor: _Cursor, stop: threading.Event | None = None
    ) -> int:
        """Store every message above the cursor, batch by batch; return how many."""
        _new_mail_announced(client)  # the searches below cover whatever was announced so far
        stored = 0
        while stop is None or not stop.is_set():
            uids = self._new_uids(client, cursor.last_uid)
            if not uids:
                break
            stored += self._store_batch(client, cursor, uids[: self.account.batch_size])
        if stored:
            log.info("imap %s: stored %d message(s)", self.account.name, stored)
        return stored

    def _select(self, client: IMAPClient) -> _Cursor:
        """Select the folder and return the saved cursor, reset when UIDVALIDITY changed."""
        selected = client.select_folder(self.account.folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        saved = self.state.load(self.account.name)
        if saved is not None and saved[0] == uidvalidity:
            return _Cursor(uidvalidity, saved[1])
        if saved is None:
            log.info("imap %s: first poll of %s", self.account.name, self.account.folder)
        else:
            log.warning("imap %s: UIDVALIDITY of %s changed from %d to %d; rescanning the folder",
                        self.account.name, self.account.folder, saved[0], uidvalidity)
        self.state.save(self.account.name, uidvalidity, 0)
        return _Cursor(uidvalidity, 0)

    def _new_uids(self, client: IMAPClient, last_uid: int) -> list[int]:
        # "UID n:*" always matches the highest UID, even when it is below n: filter.
        found = client.search(["UID", f"{last_uid + 1}:*", "NOT", "DELETED"])
        return sorted(uid for uid in found if uid > last_uid)

    def _store_batch(self, client: IMAPClient, cursor: _Cursor, uids: list[int]) -> int:
        """Hand in then move each message of one batch; save how far we got."""
        fetched: dict[int, dict[bytes, Any]] = client.fetch(uids, ["BODY.PEEK[]"])
        start, stored = cursor.last_uid, 0
        try:
            for uid in uids:
                raw = fetched.get(uid, {}).get(BODY)
                if raw is None:  # expunged by someone else since the search
                    continue
                ref = door_ref(self.account.name, cursor.uidvalidity, uid)
                self.inbox.receive(Arrival(raw, Envelope(NAME, ref=ref)))
                self._file_away(client, uid)
                cursor.last_uid, stored = uid, stored + 1
            cursor.last_uid = max(uids)
        finally:
            if cursor.last_uid != start:
                self.state.save(self.account.name, cursor.uidvalidity, cursor.last_uid)
        return stored

    def _file_away(self, client: IMAPClient, uid: int) -> None:
        """Move one stored message to the processed folder."""
        target = self.account.processed_folder
        if client.has_capability("MOVE"):
            client.move([uid], target)
            return
        client.copy([uid], target)
        client.delete_messages([uid], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()  # also removes what others flagged \Deleted in this folder

    # --- waiting -------------------------------------------------------------

    def _wait_for_mail(self, client: IMAPClient, stop: threading.Event) -> None:
        """Return when new mail may have arrived, or after ``poll_interval`` at the latest.

        IDLE makes delivery fast, but is not trusted alone: Dovecot 2.3 was
        seen never to announce a message appended while IDLE was starting, so
        the folder is searched again every ``poll_interval`` (and IDLE renewed
        every ``idle_renew``) even when no announcement came.
        """
        if self.account.idle and client.has_capability("IDLE"):
            limit = min(self.timing.idle_renew, self.account.poll_interval)
            client.idle()
            self._idle_until_news(client, stop, limit)
            client.idle_done()
        else:
            stop.wait(self.account.poll_interval)

    def _idle_until_news(self, client: IMAPClient, stop: threading.Event, limit: float) -> None:
        deadline = time.monotonic() + limit
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            responses = client.idle_check(timeout=self.timing.idle_check)
            if any(_is_bye(r) for r in responses):
                raise ConnectionLost("the server said BYE")
            if any(_is_exists(r) for r in responses):
                return
            if not responses and time.monotonic() - started < self.timing.idle_check / 2:
                # The socket was readable but held no response: the server hung up.
                raise ConnectionLost("the server closed the connection")


def _ensure_folder(client: IMAPClient, folder: str) -> bool:
    """Create (and subscribe) ``folder`` unless it exists; True when we created it."""
    if client.folder_exists(folder):
        return False
    try:
        client.create_folder(folder)
    except IMAPClientError:
        if client.folder_exists(folder):  # another poller was quicker
            return False
        raise
    with suppress(IMAPClientError):
        client.subscribe_folder(folder)
    return True


def _new_mail_announced(client: IMAPClient) -> bool:
    """Did the server announce messages (``* n EXISTS``) during our commands? Forget it.

    imapclient leaves the untagged responses it does not consume in imaplib's
    ``untagged_responses``. A message that arrives while a SEARCH or MOVE runs
    is announced there, and not again when IDLE starts: without this check it
    would wait for the next search, up to ``poll_interval`` later.
    """
    pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    return isinstance(pending, dict) and bool(pending.pop("EXISTS", None))


def _is_exists(response: tuple[Any, ...]) -> bool:
    return len(response) >= 2 and response[1] == b"EXISTS"


def _is_bye(response: tuple[Any, ...]) -> bool:
    return bool(response) and response[0] == b"BYE"
