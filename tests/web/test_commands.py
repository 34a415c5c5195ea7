"""The console from the command line: ``mailroom users``, ``mailroom run`` serving it,
and ``mailroom web`` alone mailing sign-in links (real processes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlencode

import pytest

from mailroom.cli.main import main
from tests.factories import REPO, build_settings
from tests.integration.test_daemon import wait_for
from tests.web.console import CSRF

ANNA = "anna@helpline.example"
CONSOLE_LINE = re.compile(r"staff console on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def config(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite helpline whose listeners take any free port (they say which)."""
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}",
                   smtp={"listen": "127.0.0.1:0"}, web={"listen": "127.0.0.1:0"})
    path = str(tmp_path / "mailroom.toml")
    assert main(["--config", path, "db", "upgrade"]) == 0
    yield path


def test_users_add_list_and_remove(config: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = config
    assert main(["--config", path, "users", "add", "Maria@Helpline.example",
                 "--role", "manager"]) == 0
    assert main(["--config", path, "users", "add", ANNA, "--role", "admin"]) == 0
    capsys.readouterr()
    assert main(["--config", path, "users", "list", "--json"]) == 0
    listed = {row["address"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["maria@helpline.example"]["role"] == "manager"
    assert listed[ANNA] == {"address": ANNA, "role": "admin", "configured": True,
                            "second_factor": False}
    assert listed["ben@helpline.example"]["role"] == "practitioner"
    assert main(["--config", path, "users", "remove", "maria@helpline.example"]) == 0
    assert main(["--config", path, "users", "remove", "ben@helpline.example"]) == 1
    assert "configured practitioner" in capsys.readouterr().err
    assert main(["--config", path, "users", "add", "x@example.org", "--role", "boss"]) == 2


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (URLError, OSError):
        return False


def start(path: str, command: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAILROOM_CONFIG": path}
    with log.open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "mailroom", command], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=err)


def console_port(log: Path) -> int:
    """The port the console got, as its log line says (``web.listen`` asks for any)."""
    found: list[int] = []

    def said() -> bool:
        match = CONSOLE_LINE.search(log.read_text(errors="replace"))
        if match:
            found.append(int(match.group(1)))
        return bool(match)

    assert wait_for(said), f"the console did not say where it listens: {log.read_text()}"
    return found[0]


def stop(proc: subprocess.Popen[bytes], log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    err = log.read_text(errors="replace")
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    return err


def test_run_serves_the_console(config: str, tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    proc = start(config, "run", log)
    try:
        port = console_port(log)
        assert wait_for(lambda: healthy(port)), "the console did not come up"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert b"mailroom_database_up 1.0" in answer.read()
    finally:
        stop(proc, log)


def test_web_alone_mails_sign_in_links(config: str, tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    proc = start(config, "web", log)
    try:
        port = console_port(log)
        assert wait_for(lambda: healthy(port)), "the console did not come up"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with opener.open(f"http://127.0.0.1:{port}/signin") as form:
            found = CSRF.search(form.read().decode())
        assert found
        body = urlencode({"address": ANNA, "csrf": found.group(1)}).encode()
        with opener.open(f"http://127.0.0.1:{port}/signin", data=body) as answer:
            assert answer.status == 200
        sent = tmp_path / "var" / "outbox-sent"
        assert wait_for(lambda: any(b"/signin/link/" in p.read_bytes()
                                    for p in sent.glob("*.eml"))), "no sign-in mail sent"
    finally:
        stop(proc, log)
