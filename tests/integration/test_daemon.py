"""`mailroom run` as a user runs it: a real process, SMTP in, acknowledgement out, SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from tests.factories import REPO, build_settings, mail
from tests.integration.test_smtp_door import free_port


def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def can_connect(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1):
            return True
    except OSError:
        return False


def test_run_receives_acknowledges_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}"
    build_settings(tmp_path, db, smtp={"listen": f"127.0.0.1:{port}"})
    env = {**os.environ, "MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    command = [sys.executable, "-m", "mailroom"]
    subprocess.run([*command, "db", "upgrade"], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=60)
    proc = subprocess.Popen([*command, "run"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: can_connect(port)), "the SMTP listener did not come up"
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("teacher@school.example", ["helpline@helpline.example"],
                            mail(message_id="daemon@school.example"))
        sent = tmp_path / "var" / "outbox-sent"
        started = time.monotonic()
        assert wait_for(lambda: len(list(sent.glob("*.eml"))) >= 2, timeout=20), \
            "no acknowledgement and notification written"
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"took {elapsed:.1f} s"
        acks = [p for p in sent.glob("*.eml") if b"To: Jo Teacher" in p.read_bytes()]
        assert len(acks) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert b"mailroom stopped" in err
