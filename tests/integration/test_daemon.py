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
from tests.ports import announced_smtp_port


def wait_for(predicate, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_run_receives_acknowledges_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}"
    build_settings(tmp_path, db, smtp={"listen": "127.0.0.1:0"})  # any free port
    env = {**os.environ, "MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    command = [sys.executable, "-m", "mailroom"]
    subprocess.run([*command, "db", "upgrade"], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=60)
    out, err_path = tmp_path / "run.out", tmp_path / "run.err"
    with out.open("wb") as stdout, err_path.open("wb") as stderr:
        proc = subprocess.Popen([*command, "run"], env=env, cwd=REPO, stdout=stdout,
                                stderr=stderr)
    try:
        port = announced_smtp_port(out, running=lambda: proc.poll() is None)
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("teacher@school.example", ["helpline@helpline.example"],
                            mail(message_id="daemon@school.example"))
        sent = tmp_path / "var" / "outbox-sent"
        assert wait_for(lambda: len(list(sent.glob("*.eml"))) >= 2), \
            "no acknowledgement and notification written"
        acks = [p for p in sent.glob("*.eml") if b"To: Jo Teacher" in p.read_bytes()]
        assert len(acks) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    err = err_path.read_bytes()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert b"mailroom stopped" in err
    assert out.read_text() == f"SMTP listening on 127.0.0.1:{port}\n"  # the port it got
