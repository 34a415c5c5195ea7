"""The IMAP door inside mailroom: `mailroom tick` and `mailroom run` with an [[imap]] account."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.dovecot import Mailbox
from tests.factories import REPO, build_settings, mail
from tests.integration.test_daemon import wait_for


def imap_config(tmp_path: Path, mailbox: Mailbox, *, db_url: str | None = None) -> Path:
    """A config file with one [[imap]] account on the test's Dovecot user."""
    account = mailbox.account()
    build_settings(tmp_path, db_url or f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}",
                   smtp={"enabled": False})
    path = tmp_path / "mailroom.toml"
    path.write_text(path.read_text() + (
        "\n[[imap]]\n"
        f'name = "helpline"\nhost = "{account.host}"\nport = {account.port}\n'
        f'security = "none"\nusername = "{account.username}"\n'
        f'password = "{account.password}"\nfolder = "INBOX"\nprocessed_folder = "Processed"\n'
        "poll_interval = 1\n"))
    return path


def mailroom(config: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "MAILROOM_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "mailroom", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_tick_polls_the_account_and_opens_tickets(tmp_path: Path, mailbox: Mailbox) -> None:
    config = imap_config(tmp_path, mailbox)
    assert mailroom(config, "db", "upgrade").returncode == 0
    mailbox.deliver(mail(message_id="imap1@school.example"),
                    mail(message_id="imap2@school.example", sender="other@school.example"))
    result = mailroom(config, "tick", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imap:helpline"] == 2
    assert mailbox.message_ids("INBOX") == []
    assert sorted(mailbox.message_ids("Processed")) == [
        "<imap1@school.example>", "<imap2@school.example>"]
    listing = json.loads(mailroom(config, "tickets", "list", "--json").stdout)
    assert len(listing) == 2
    again = mailroom(config, "tick", "--json")
    assert json.loads(again.stdout)["imap:helpline"] == 0


def test_run_picks_up_mail_from_the_account(tmp_path: Path, mailbox: Mailbox) -> None:
    config = imap_config(tmp_path, mailbox)
    assert mailroom(config, "db", "upgrade").returncode == 0
    env = {**os.environ, "MAILROOM_CONFIG": str(config)}
    proc = subprocess.Popen([sys.executable, "-m", "mailroom", "run"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        mailbox.deliver(mail(message_id="live@school.example"))
        assert wait_for(lambda: mailbox.message_ids("Processed") == ["<live@school.example>"],
                        timeout=30)
        sent = tmp_path / "var" / "outbox-sent"
        assert wait_for(lambda: len(list(sent.glob("*.eml"))) >= 2, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
