"""Several `mailroom run` processes on one PostgreSQL: one IMAP poller per account,
taken over by another process when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.dovecot import Mailbox
from tests.factories import REPO, mail
from tests.imap.test_imap_wiring import imap_config
from tests.integration.test_daemon import wait_for


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAILROOM_CONFIG": str(config)}
    return subprocess.Popen([sys.executable, "-m", "mailroom", "run"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def polls(log: Path) -> bool:
    return b"this process polls the account" in log.read_bytes()


def test_one_poller_per_account_and_takeover(tmp_path: Path, mailbox: Mailbox,
                                             pg_url: str) -> None:
    from tests.conftest import _empty_postgres

    _empty_postgres(pg_url)
    config = imap_config(tmp_path, mailbox, db_url=pg_url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start(config, logs[0])]
    try:
        assert wait_for(lambda: polls(logs[0]), timeout=60), logs[0].read_text()
        procs.append(start(config, logs[1]))
        mailbox.deliver(mail(message_id="lock1@school.example"))
        assert wait_for(lambda: mailbox.message_ids("Processed") == ["<lock1@school.example>"],
                        timeout=60)
        assert not polls(logs[1]), "two processes polled the same account"
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=30)
        assert wait_for(lambda: polls(logs[1]), timeout=60), logs[1].read_text()
        mailbox.deliver(mail(message_id="lock2@school.example"))
        assert wait_for(lambda: len(mailbox.message_ids("Processed")) == 2, timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    assert procs[1].returncode == 0
