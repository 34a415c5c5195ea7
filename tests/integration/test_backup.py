"""``mailroom backup`` then ``mailroom restore`` into a fresh data directory, on SQLite
and PostgreSQL: the case reads back (``tickets show``), its attachment is there, and
a reply to an address signed before the backup still finds its case."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mailroom.app import App
from mailroom.runtime.wiring import build_app
from mailroom.settings import load_settings
from mailroom.store.models import AttachmentRow, OutboxItem
from mailroom.web.staff import add_user, second_factor_secret, set_second_factor
from tests.factories import FixedClock, as_sent, build_settings, deliver, mail
from tests.integration.test_cli import run_cli
from tests.pg_server import drop_pg_database, new_pg_database
from tests.security.helpline import Helpline

PDF = ("evidence.pdf", "application/pdf", b"%PDF-1.4 screenshot of the fake account\n")
ADA = "ada@helpline.example"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def second_factor_set_up(app: App) -> None:
    """An admin with a second factor: its secret encrypted with var/totp.key."""
    with app.sessions.begin() as session:
        add_user(session, ADA, "admin", actor="test", at=app.now())
        set_second_factor(app.settings, session, ADA, TOTP_SECRET, step=1, at=app.now())


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as ``db_url``, for the restore."""
    if make_url(db_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'var' / 'mailroom.db'}"
        return
    url = new_pg_database("mailroom_t_restore_")
    yield url
    drop_pg_database(url)


def fresh_config(folder: Path, url: str) -> dict[str, str]:
    """A new installation's configuration: its own data directory, no secret yet (one is
    generated in var/secret at the first start, as in production)."""
    build_settings(folder, url)
    config = folder / "mailroom.toml"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if not line.startswith("secret =")) + "\n")
    return {"MAILROOM_CONFIG": str(config)}


def test_backup_then_restore_into_a_fresh_data_directory(make_app, db_url: str, fresh_url: str,
                                                         tmp_path: Path) -> None:
    app = make_app()
    assert deliver(app, mail(message_id="case@school.example", attachments=[PDF])) == "created"
    second_factor_set_up(app)
    ticket_id = 1
    source_env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    out = tmp_path / "backup"

    made = run_cli("backup", "--out", str(out), "--json", env=source_env)
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert result["attachments"] == 1 and result["database_missing"] is None
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert (out / "secret").read_bytes().strip() == b"test-secret-key"
    assert result["totp_key"] is True
    assert (out / "totp.key").read_bytes() == (tmp_path / "var" / "totp.key").read_bytes()

    restored_dir = tmp_path / "restored"
    restored_dir.mkdir(exist_ok=True)
    env = fresh_config(restored_dir, fresh_url)
    assert run_cli("check-config", env=env).returncode == 0  # first start: a new secret
    assert (restored_dir / "var" / "secret").read_bytes().strip() != b"test-secret-key"
    back = run_cli("restore", str(out), env=env)
    assert back.returncode == 0, back.stderr
    assert "restored: database" in back.stdout and "1 attachment files" in back.stdout
    assert (restored_dir / "var" / "secret").read_bytes().strip() == b"test-secret-key"
    assert "TOTP key: " in back.stdout and "note:" not in back.stdout

    shown = run_cli("tickets", "show", str(ticket_id), "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["subject"] == "Fake account of our head teacher"
    assert "tiktok.com/@fakehead" in json.dumps(case["messages"])

    restored = build_app(load_settings(restored_dir / "mailroom.toml", environ={}),
                         clock=FixedClock())
    try:
        [sha] = _attachment_hashes(restored)
        assert restored.blobs.get(sha) == PDF[2]
        reply_to = _requester_reply_address(app)  # signed before the backup
        reply = mail(to=reply_to, subject="more", body="It is still up.\n",
                     message_id="after-restore@school.example")
        assert deliver(restored, reply, rcpt_to=[reply_to]) == "threaded"
        with restored.sessions() as session:  # the second factor works on the restored one
            assert second_factor_secret(restored.settings, session, ADA) == TOTP_SECRET
    finally:
        restored.close()


def test_a_backup_without_the_totp_key_restores_and_names_who_must_set_up_again(
        make_app, db_url: str, fresh_url: str, tmp_path: Path) -> None:
    app = make_app()
    second_factor_set_up(app)
    out = tmp_path / "backup"
    made = run_cli("backup", "--out", str(out), env={"MAILROOM_CONFIG": str(tmp_path /
                                                                            "mailroom.toml")})
    assert made.returncode == 0 and ", TOTP key" in made.stdout, made.stderr
    (out / "totp.key").unlink()  # kept apart from the backup, and lost
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir(exist_ok=True)
    back = run_cli("restore", str(out), env=fresh_config(restored_dir, fresh_url))
    assert back.returncode == 0, back.stderr
    assert "TOTP key" not in back.stdout.splitlines()[0]
    assert (f"note: the backup holds no totp.key, and the second factor of {ADA} is "
            "encrypted with it") in back.stdout
    assert not (restored_dir / "var" / "totp.key").exists()


def test_a_backup_taken_while_mail_arrives_names_only_files_it_holds(
        make_app, fresh_url: str, tmp_path: Path) -> None:
    """The daemon keeps storing mail with attachments while the backup runs: the copy
    is consistent, and every attachment the copied database names is in it."""
    helpline = Helpline(make_app(clock=FixedClock(datetime.now(UTC)),
                                 smtp={"listen": "127.0.0.1:0"}))
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}

    def write(number: int) -> None:
        sender = f"teacher{number}@school.example"
        helpline.send(mail(sender=sender, message_id=f"busy{number}@school.example",
                           date=datetime.now(UTC),
                           attachments=[(f"e{number}.pdf", "application/pdf",
                                         f"%PDF-1.4 evidence {number}\n".encode())]),
                      mail_from=sender)

    try:
        for number in range(3):
            write(number)
        helpline.settle()
        writer = threading.Thread(target=lambda: [write(n) for n in range(3, 15)])
        writer.start()
        made = run_cli("backup", "--out", str(tmp_path / "busy"), "--json", env=env)
        writer.join(timeout=120)
        helpline.settle()
    finally:
        helpline.stop()
    assert made.returncode == 0, made.stderr

    restored_dir = tmp_path / "restored"
    restored_dir.mkdir(exist_ok=True)
    restore_env = fresh_config(restored_dir, fresh_url)
    assert run_cli("restore", str(tmp_path / "busy"), env=restore_env).returncode == 0
    restored = build_app(load_settings(restored_dir / "mailroom.toml", environ={}),
                         clock=FixedClock())
    try:
        hashes = _attachment_hashes(restored)
        assert len(hashes) >= 3  # at least what was stored before the backup began
        for sha in hashes:
            assert restored.blobs.get(sha).startswith(b"%PDF-1.4 evidence ")
    finally:
        restored.close()


def test_restore_refuses_a_database_that_is_not_empty(make_app, tmp_path: Path) -> None:
    app = make_app()
    deliver(app, mail())
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    assert run_cli("backup", "--out", str(tmp_path / "b"), env=env).returncode == 0
    again = run_cli("restore", str(tmp_path / "b"), env=env)
    assert again.returncode == 1
    assert again.stderr.startswith("mailroom: the configured database is not empty")
    assert "Traceback" not in again.stderr


def test_backup_refuses_a_folder_with_files_in_it(make_app, tmp_path: Path) -> None:
    make_app()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    result = run_cli("backup", "--out", str(tmp_path / "full"), env=env)
    assert result.returncode == 1
    assert "exists and is not an empty folder" in result.stderr


def test_restore_of_a_folder_that_is_no_backup_says_so(make_app, tmp_path: Path) -> None:
    make_app()
    (tmp_path / "nothing").mkdir()
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    result = run_cli("restore", str(tmp_path / "nothing"), env=env)
    assert result.returncode == 1
    assert "is not a mailroom backup (no manifest.json)" in result.stderr


def _attachment_hashes(app: App) -> list[str]:
    with app.sessions() as session:
        return list(session.execute(select(AttachmentRow.sha256)).scalars())


def _requester_reply_address(app: App) -> str:
    with app.sessions() as session:
        ack = session.execute(select(OutboxItem).where(
            OutboxItem.kind == "acknowledgement")).scalar_one()
    return str(as_sent(app, ack)["Reply-To"].addresses[0].addr_spec)


def test_without_pg_dump_the_rest_is_written_and_the_command_printed(
        make_pg_app, tmp_path: Path) -> None:
    make_pg_app()
    (tmp_path / "empty-path").mkdir()
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml"), "PATH": str(tmp_path / "empty-path")}
    result = run_cli("backup", "--out", str(tmp_path / "b"), env=env)
    assert result.returncode == 1
    assert "database NOT included: pg_dump not found" in result.stdout
    assert "pg_dump --format=custom --no-owner --no-privileges --file=" in result.stdout
    assert (tmp_path / "b" / "secret").is_file() and (tmp_path / "b" / "manifest.json").is_file()
    assert not (tmp_path / "b" / "database.pgdump").exists()
