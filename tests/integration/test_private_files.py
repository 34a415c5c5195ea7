"""What mailroom keeps on disk is its user's alone: 0700 folders, 0600 files, whatever the
umask; what is wider is tightened at start, and ``check-config`` says so."""

from __future__ import annotations

import email.policy
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailroom.cli.main import main
from mailroom.privacy.dataprotection import export_requester
from mailroom.runtime.wiring import build_app
from mailroom.sending.sender import send_due
from mailroom.settings import Settings, load_settings
from mailroom.store.db import make_engine
from mailroom.store.locks import ProcessLock
from mailroom.store.migrate import upgrade
from mailroom.web.staff import set_second_factor
from tests.factories import FixedClock, build_settings, deliver, mail

JO = "jo@school.example"


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.lstat().st_mode))


@pytest.fixture
def umask_000() -> Iterator[None]:
    """The loosest umask there is: files 0666 and folders 0777 unless mailroom says otherwise."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings with the database in var/ and no secret given (mailroom makes one there)."""
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}")
    config = tmp_path / "mailroom.toml"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if not line.startswith("secret =")) + "\n")
    return load_settings(config, environ={})


def with_attachment(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message.add_attachment(b"screenshot bytes", maintype="image", subtype="png",
                           filename="shot.png")
    return message.as_bytes()


def test_everything_mailroom_makes_is_owner_only_whatever_the_umask(
        tmp_path: Path, umask_000: None) -> None:
    settings = sqlite_settings(tmp_path)  # generates var/secret
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app = build_app(settings, clock=FixedClock())
    try:
        assert deliver(app, with_attachment(mail(sender=JO))) == "created"
        assert send_due(app) == {"sent": 2}
        export_requester(app, JO, settings.var_dir / "exports")
        lock = ProcessLock(app.engine, "imap:test", settings.var_dir / "locks")
        assert lock.acquire()
        lock.release()
        with app.sessions.begin() as session:  # makes var/totp.key
            set_second_factor(app.settings, session, "anna@helpline.example", "JBSWY3DPEHPK3PXP",
                              step=1, at=app.now())
        var = settings.var_dir
        made = {p.relative_to(var).parts[0] for p in var.iterdir()}
        assert made >= {"secret", "mailroom.db", "mailroom.db-wal", "mailroom.db-shm",
                        "attachments", "outbox-sent", "exports", "locks", "totp.key"}
        assert len(list((var / "outbox-sent").iterdir())) == 2
        assert len(list((var / "attachments").rglob("*"))) == 3  # ab/, ab/cd/, the blob
        wrong = [f"{p.relative_to(tmp_path)} {mode(p)}" for p in [var, *var.rglob("*")]
                 if mode(p) != ("0o700" if p.is_dir() else "0o600")]
        assert wrong == []
    finally:
        app.close()


@pytest.fixture
def loose_var(tmp_path: Path) -> Settings:
    """A var/ left as an older mailroom made it under the usual umask 022."""
    settings = sqlite_settings(tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    sent = settings.var_dir / "outbox-sent"
    sent.mkdir()
    for path, wide in ((settings.var_dir, 0o755), (sent, 0o755),
                       (Path(settings.var_dir / "mailroom.db"), 0o644),
                       (settings.var_dir / "secret", 0o644)):
        path.chmod(wide)
    (settings.var_dir / "totp.key").write_bytes(b"a key an older mailroom made\n")
    (settings.var_dir / "totp.key").chmod(0o644)
    return settings


def test_check_config_tightens_and_says_so_in_one_line(
        loose_var: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    var = loose_var.var_dir
    assert main(["--config", str(loose_var.source), "check-config"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("permissions:")]
    assert lines == [
        f"permissions: tightened to owner only: {var} (0755 -> 0700), {var}/outbox-sent "
        f"(0755 -> 0700), {var}/secret (0644 -> 0600), {var}/totp.key (0644 -> 0600), "
        f"{var}/mailroom.db (0644 -> 0600) (other users could open them until now)"]
    assert [mode(p) for p in (var, var / "outbox-sent", var / "secret", var / "totp.key",
                              var / "mailroom.db")] \
        == ["0o700", "0o700", "0o600", "0o600", "0o600"]
    assert main(["--config", str(loose_var.source), "check-config"]) == 0
    assert f"permissions: {var}/ and the database: owner only" in capsys.readouterr().out


def test_start_tightens_and_logs_it(loose_var: Settings,
                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mailroom.private"):
        build_app(loose_var).close()
    assert mode(loose_var.var_dir) == "0o700"
    assert mode(loose_var.var_dir / "mailroom.db") == "0o600"
    assert any("permissions tightened" in r.getMessage() and "mailroom.db (0644 -> 0600)"
               in r.getMessage() for r in caplog.records)


def test_commands_run_with_umask_077_and_give_the_old_one_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = sqlite_settings(tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    report = tmp_path / "report.csv"
    previous = os.umask(0o022)
    try:
        assert main(["--config", str(settings.source), "report", "--from", "2026-01-01",
                     "--to", "2026-01-31", "--format", "csv", "--out", str(report)]) == 0
        assert os.umask(0o022) == 0o022  # given back
    finally:
        os.umask(previous)
    assert mode(report) == "0o600"  # written by plain open(): the umask decided


def test_sqlite_connections_zero_what_they_free(tmp_path: Path) -> None:
    """``secure_delete`` on every connection, even where SQLite was built without it
    (this machine's SQLite may have it on already: the connection here starts off)."""
    path = tmp_path / "var" / "mailroom.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA secure_delete=OFF")
        engine.pool.dispatch.connect(connection, None)  # what the pool does with a new one
        assert connection.execute("PRAGMA secure_delete").fetchone() == (1,)
        connection.close()
    finally:
        engine.dispose()
