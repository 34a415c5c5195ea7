"""`mailroom tick` polls an IMAP account under the same lock as `mailroom run`:
while another process holds the account's lock, tick says so and leaves the
account alone; once the lock is free, the next tick polls it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom.settings import load_settings
from mailroom.store.db import make_engine
from mailroom.store.locks import ProcessLock
from tests.dovecot import Mailbox
from tests.factories import mail
from tests.imap.test_imap_wiring import imap_config, mailroom

pytestmark = pytest.mark.imap

SKIPPED = "skipped: another mailroom process polls this account"


@pytest.fixture
def config(tmp_path: Path, mailbox: Mailbox, db_url: str) -> Path:
    """A config with one [[imap]] account named ``helpline``, on both databases."""
    return imap_config(tmp_path, mailbox, db_url=db_url)


@pytest.fixture
def held_lock(config: Path) -> Iterator[ProcessLock]:
    """The account's lock, held by this test's process as a running daemon would hold it."""
    settings = load_settings(config, environ={})
    engine = make_engine(settings.database_url)
    lock = ProcessLock(engine, "imap:helpline", settings.var_dir / "locks")
    assert lock.acquire()
    yield lock
    lock.release()
    engine.dispose()


def test_tick_skips_an_account_another_process_polls(config: Path, mailbox: Mailbox,
                                                     held_lock: ProcessLock) -> None:
    mailbox.deliver(mail(message_id="locked@school.example"))

    result = mailroom(config, "tick")

    assert result.returncode == 0, result.stderr
    assert f"imap:helpline: {SKIPPED}" in result.stdout.splitlines()
    assert mailbox.message_ids("INBOX") == ["<locked@school.example>"]
    assert mailbox.message_ids("Processed") == []

    held_lock.release()
    again = mailroom(config, "tick", "--json")
    assert again.returncode == 0, again.stderr
    results = json.loads(again.stdout)
    assert results["imap:helpline"] == 1
    assert results["process_inbox"] == {"created": 1}  # polled first, processed in the same tick
    assert mailbox.message_ids("Processed") == ["<locked@school.example>"]
