"""The IMAP door against a real Dovecot on loopback: no mocks of imapclient.

Each test gets its own user on a shared server (``mailbox``); tests that stop
the server or need other capabilities get a server of their own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path

import pytest

from mailroom.doors.contract import Arrival
from mailroom.doors.imap import ImapPoller, MemoryImapState, PollerTiming, door_ref
from mailroom.errors import StoreUnavailable
from mailroom.store.inbox import Stored
from tests.dovecot import DovecotServer, ImapUser, Mailbox, make_message
from tests.imap.poller_child import FileStore

pytestmark = pytest.mark.imap

REPO = Path(__file__).resolve().parents[2]
FAST = PollerTiming(idle_check=0.2, backoff_initial=0.1, backoff_cap=0.5, timeout=10)
WAIT = 60.0  # seconds a test waits for the daemon to do something before it fails


class Crash(Exception):
    """Stands in for the process dying."""


class MessageStore:
    """An in-memory inbox (the door contract) that de-duplicates by Message-ID, like the real one.

    ``crash_after=n`` stores the n-th new message and then raises ``Crash``
    (committed, never moved); ``unavailable=n`` raises ``StoreUnavailable``
    for the first n calls without storing anything.
    """

    def __init__(self, *, crash_after: int | None = None, unavailable: int = 0) -> None:
        self.messages: dict[str, bytes] = {}
        self.refs: dict[str, str] = {}
        self.calls: list[str] = []
        self.crash_after = crash_after
        self.unavailable = unavailable
        self._lock = threading.Lock()

    def receive(self, arrival: Arrival) -> Stored:
        raw, ref = arrival.raw, str(arrival.envelope.ref)
        message_id = str(message_from_bytes(raw)["Message-ID"])
        with self._lock:
            self.calls.append(message_id)
            if self.unavailable > 0:
                self.unavailable -= 1
                raise StoreUnavailable("database is down")
            duplicate = message_id in self.messages
            self.messages.setdefault(message_id, raw)
            self.refs.setdefault(message_id, ref)
            if self.crash_after is not None and len(self.messages) >= self.crash_after:
                raise Crash(message_id)
            return Stored(list(self.messages).index(message_id) + 1, duplicate)

    @property
    def stored(self) -> list[str]:
        return sorted(self.messages)


def ids(numbers: range) -> list[str]:
    """The Message-IDs ``make_message`` gives messages ``numbers``, sorted."""
    return sorted(f"<test-{n}@mailroom.test>" for n in numbers)


def messages(numbers: range) -> list[bytes]:
    return [make_message(n) for n in numbers]


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Return once ``condition`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)


@contextmanager
def running(poller: ImapPoller) -> Iterator[threading.Thread]:
    """The poller's daemon loop in a thread, stopped (and checked to stop) on exit."""
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive(), "the poller did not stop within 5 s of stop being set"


# --- storing and moving ----------------------------------------------------------


def test_appended_messages_are_stored_once_and_moved(mailbox: Mailbox) -> None:
    mailbox.deliver(*messages(range(5)))
    store, state = MessageStore(), MemoryImapState()
    poller = ImapPoller(mailbox.account(batch_size=2), store, state, timing=FAST)

    assert poller.poll_once() == 5

    assert store.stored == ids(range(5))
    assert mailbox.message_ids("INBOX") == []
    assert sorted(mailbox.message_ids("Processed")) == ids(range(5))
    assert mailbox.search("Processed", "SEEN") == [], "fetching must not mark mail seen"
    uidvalidity, last_uid = state.load(mailbox.user.name) or (0, 0)
    assert last_uid == 5
    assert store.refs["<test-0@mailroom.test>"] == door_ref(mailbox.user.name, uidvalidity, 1)
    assert poller.poll_once() == 0
    assert len(store.calls) == 5


def test_raw_bytes_reach_accept_unchanged(mailbox: Mailbox) -> None:
    raw = (
        b"From: Ana <ana@example.org>\r\nTo: helpline@mailroom.test\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <raw-1@mailroom.test>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"\r\nGr\xc3\xbc\xc3\x9fe \xe2\x80\x93 8-bit body, trailing space \r\n"
    )
    mailbox.deliver(raw)
    store = MessageStore()

    ImapPoller(mailbox.account(), store, MemoryImapState(), timing=FAST).poll_once()

    assert store.messages["<raw-1@mailroom.test>"] == raw


def test_crash_mid_batch_then_a_fresh_poller_loses_and_duplicates_nothing(
    mailbox: Mailbox,
) -> None:
    mailbox.deliver(*messages(range(7)))
    store, state = MessageStore(crash_after=4), MemoryImapState()
    account = mailbox.account(batch_size=3)

    with pytest.raises(Crash):
        ImapPoller(account, store, state, timing=FAST).poll_once()
    assert len(mailbox.message_ids("INBOX")) == 4, "the crashed message stays in the folder"

    store.crash_after = None
    ImapPoller(account, store, state, timing=FAST).poll_once()

    assert store.stored == ids(range(7))
    assert mailbox.message_ids("INBOX") == []
    assert sorted(mailbox.message_ids("Processed")) == ids(range(7)), "each moved exactly once"
    assert len(store.calls) - len(set(store.calls)) == 1, "only the message in flight repeats"


def test_a_poller_killed_with_sigkill_loses_nothing(mailbox: Mailbox, tmp_path: Path) -> None:
    mailbox.deliver(*messages(range(12)))
    store = FileStore(tmp_path / "store")
    account = mailbox.account()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.imap.poller_child", account.host, str(account.port),
         account.username, account.password, str(store.root), "0.1"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: len(store.stored()) >= 4 or child.poll() is not None)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        _, errors = child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL, errors.decode()
    assert 4 <= len(store.stored()) < 12, "the child was killed mid-run"

    ImapPoller(account, store, MemoryImapState(), timing=FAST).poll_once()

    assert store.stored() == ids(range(12))
    assert mailbox.message_ids("INBOX") == []
    assert sorted(mailbox.message_ids("Processed")) == ids(range(12))
    calls = store.calls()
    assert len(calls) - len({call.split()[0] for call in calls}) <= 1


def test_a_changed_uidvalidity_rescans_the_folder(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox.deliver(*messages(range(5)), folder="Helpline")
    store, state = MessageStore(), MemoryImapState()
    poller = ImapPoller(mailbox.account(folder="Helpline"), store, state, timing=FAST)
    poller.poll_once()
    before = state.load(mailbox.user.name)
    mailbox.recreate_folder("Helpline")
    mailbox.deliver(*messages(range(5, 7)), folder="Helpline")  # UIDs 1 and 2 again

    with caplog.at_level(logging.WARNING, logger="mailroom.imap"):
        assert poller.poll_once() == 2

    assert store.stored == ids(range(7))
    after = state.load(mailbox.user.name)
    assert before is not None and after is not None
    assert after[0] != before[0] and after[1] == 2
    assert "UIDVALIDITY" in caplog.text


def test_a_wrong_stored_uidvalidity_picks_up_what_is_in_the_folder(mailbox: Mailbox) -> None:
    mailbox.deliver(*messages(range(3)))
    store, state = MessageStore(), MemoryImapState()
    state.save(mailbox.user.name, 1, 10**6)

    assert ImapPoller(mailbox.account(), store, state, timing=FAST).poll_once() == 3

    assert store.stored == ids(range(3))


# --- the database being down ------------------------------------------------------


def test_store_unavailable_leaves_the_message_for_the_next_poll(mailbox: Mailbox) -> None:
    mailbox.deliver(*messages(range(2)))
    store, state = MessageStore(unavailable=1), MemoryImapState()
    poller = ImapPoller(mailbox.account(), store, state, timing=FAST)

    with pytest.raises(StoreUnavailable):
        poller.poll_once()
    assert sorted(mailbox.message_ids("INBOX")) == ids(range(2))
    assert mailbox.search("INBOX", "SEEN") == []

    assert poller.poll_once() == 2
    assert store.stored == ids(range(2))
    assert mailbox.message_ids("INBOX") == []


def test_the_daemon_backs_off_and_retries_while_the_store_is_down(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox.deliver(make_message(1))
    store = MessageStore(unavailable=3)
    poller = ImapPoller(mailbox.account(poll_interval=3600), store, MemoryImapState(), timing=FAST)

    with caplog.at_level(logging.WARNING, logger="mailroom.imap"), running(poller):
        wait_until(lambda: store.stored == ids(range(1, 2)))

    assert len(store.calls) == 4
    assert caplog.text.count("store unavailable") == 3
    assert mailbox.message_ids("INBOX") == []


# --- the daemon loop: IDLE, polling, reconnecting --------------------------------


def test_idle_delivers_a_new_message(mailbox: Mailbox) -> None:
    mailbox.deliver(make_message(1))
    store = MessageStore()
    account = mailbox.account(idle=True, poll_interval=3600)  # only IDLE can wake it
    poller = ImapPoller(account, store, MemoryImapState(), timing=FAST)

    with running(poller):
        wait_until(lambda: len(store.stored) == 1)
        time.sleep(0.5)  # let it settle into IDLE
        mailbox.deliver(make_message(2))
        wait_until(lambda: len(store.stored) == 2)  # long before the hourly poll

    assert mailbox.message_ids("INBOX") == []


def test_without_idle_or_move_it_polls_and_copies(
    dovecot_without_idle_or_move: DovecotServer,
) -> None:
    mailbox = dovecot_without_idle_or_move.add_mailbox()
    store = MessageStore()
    poller = ImapPoller(mailbox.account(poll_interval=0.3), store, MemoryImapState(), timing=FAST)

    with running(poller):
        time.sleep(0.5)
        mailbox.deliver(*messages(range(3)))
        wait_until(lambda: len(store.stored) == 3)

    assert mailbox.message_ids("INBOX") == []
    assert sorted(mailbox.message_ids("Processed")) == ids(range(3))


def test_the_poller_reconnects_after_dovecot_restarts(
    private_dovecot: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox = private_dovecot.add_mailbox()
    mailbox.deliver(make_message(1))
    store = MessageStore()
    # A poll every 30 s, not every second: the poller is in IDLE, where the server's BYE
    # reaches it, when Dovecot stops (between polls it would meet a closed socket).
    poller = ImapPoller(mailbox.account(poll_interval=30.0), store, MemoryImapState(),
                        timing=FAST)

    with caplog.at_level(logging.INFO, logger="mailroom.imap"), running(poller) as thread:
        wait_until(lambda: len(store.stored) == 1)
        time.sleep(0.5)  # let it settle into IDLE
        private_dovecot.stop()
        wait_until(lambda: "Connection refused" in caplog.text)
        assert thread.is_alive()
        private_dovecot.start()
        mailbox.deliver(make_message(2))
        wait_until(lambda: len(store.stored) == 2)

    assert "the server said BYE" in caplog.text
    assert caplog.text.count("connected") == 2
    assert mailbox.message_ids("INBOX") == []


def test_a_connection_cut_without_bye_is_noticed(
    dovecot: DovecotServer, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox.deliver(make_message(1))
    store = MessageStore()
    account = mailbox.account(poll_interval=3600)  # only noticing the cut can make it reconnect
    poller = ImapPoller(account, store, MemoryImapState(), timing=FAST)

    with caplog.at_level(logging.INFO, logger="mailroom.imap"), running(poller):
        wait_until(lambda: len(store.stored) == 1)
        time.sleep(0.3)  # idling now
        dovecot.kill_sessions()
        wait_until(lambda: caplog.text.count("connected") == 2)
        time.sleep(0.3)  # idling again: Dovecot misses mail appended while IDLE starts
        mailbox.deliver(make_message(2))
        wait_until(lambda: len(store.stored) == 2)

    assert "the server closed the connection" in caplog.text


def test_a_login_failure_is_logged_without_the_password_and_retried(
    dovecot: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    user = ImapUser(f"late-{uuid.uuid4().hex[:8]}", "s3cret-4711")  # unknown to Dovecot yet
    store = MessageStore()
    account = dovecot.account(user, poll_interval=1.0)
    poller = ImapPoller(account, store, MemoryImapState(), timing=FAST)

    with caplog.at_level(logging.DEBUG), running(poller) as thread:
        wait_until(lambda: caplog.text.count("login to") >= 2)
        assert thread.is_alive()
        dovecot.add_user(user.name, user.password)
        Mailbox(dovecot, user).deliver(make_message(1))
        wait_until(lambda: len(store.stored) == 1)

    assert f"as {user.name} failed" in caplog.text
    assert user.password not in caplog.text
