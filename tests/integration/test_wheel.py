"""The wheel is the whole product: built, installed in a fresh venv outside the checkout,
and run from a folder that is not the checkout, it migrates, checks its configuration,
receives and answers mail, stops on SIGTERM, and writes nothing where it was run."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REAL_HOME
from tests.factories import REPO, mail

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with mailroom installed from its wheel and the locked runtime dependencies."""
    root = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "HOME": REAL_HOME}  # pip's own cache, as a user's pip has it
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(root / "dist"), str(REPO)],
                   check=True, capture_output=True, env=env, cwd=root, timeout=600)
    [wheel] = (root / "dist").glob("mailroom-*.whl")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                    str(REPO / "requirements.lock"), str(wheel)],
                   check=True, capture_output=True, env=env, cwd=root, timeout=600)
    return root


def test_the_wheel_ships_the_templates_migrations_data_and_licence(installed: Path) -> None:
    [wheel] = (installed / "dist").glob("mailroom-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("mailroom/templates/requester/acknowledgement.txt.j2",
                    "mailroom/templates/reports/report.html.j2",
                    "mailroom/migrations/env.py", "mailroom/migrations/script.py.mako",
                    "mailroom/data/platforms.toml", "mailroom/data/mailroom.example.toml"):
        assert shipped in names
    assert any(re.fullmatch(r"mailroom/migrations/versions/\d+_0001_\w+\.py", n) for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: AGPL-3.0-or-later" in zipfile.ZipFile(wheel).read(
        metadata).decode()


def test_installed_mailroom_runs_anywhere_and_writes_only_its_data_directory(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere, data = tmp_path / "elsewhere", tmp_path / "data"
    elsewhere.mkdir()
    bin_dir = installed / "venv" / "bin"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "MAILROOM_HOME": str(data), "MAILROOM_SMTP_LISTEN": "127.0.0.1:0",
           "MAILROOM_HELPLINE_ADDRESS": "helpline@helpline.example",
           "MAILROOM_PRACTITIONERS": "anna@helpline.example"}

    def mailroom(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["mailroom", *args], env=env, cwd=elsewhere, text=True,
                              capture_output=True, timeout=120)

    where = subprocess.run([str(bin_dir / "python"), "-c",
                            "import mailroom; print(mailroom.__file__)"], env=env,
                           cwd=elsewhere, text=True, capture_output=True, check=True)
    assert where.stdout.startswith(str(installed / "venv")), where.stdout
    upgrade = mailroom("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database upgraded from empty to" in upgrade.stdout
    check = mailroom("check-config")
    assert check.returncode == 0, check.stderr
    assert f"database: sqlite:///{data}/mailroom.db" in check.stdout

    daemon = subprocess.Popen(["mailroom", "run"], env=env, cwd=elsewhere, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = _listening_port(daemon)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("teacher@school.example", ["helpline@helpline.example"],
                            mail(message_id="wheel@school.example"))
        sent = data / "outbox-sent"
        assert _wait(lambda: len(list(sent.glob("*.eml"))) >= 2), \
            "no acknowledgement and notification rendered from the shipped templates"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err[-2000:]
    assert list(elsewhere.iterdir()) == [], "nothing is written to the working directory"
    assert {p.name for p in data.iterdir()} >= {"mailroom.db", "secret", "outbox-sent"}


def _listening_port(daemon: subprocess.Popen[str]) -> int:
    """The port the SMTP listener got (the daemon logs it), once the daemon is running."""
    assert daemon.stderr is not None
    port = None
    for line in daemon.stderr:
        found = re.search(r"SMTP listener on [\d.]+:(\d+)", line)
        port = int(found[1]) if found else port
        if "mailroom running" in line:
            break
    assert port, "the daemon did not start"
    return port


def _wait(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
