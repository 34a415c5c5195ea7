"""The command-line contract: exit codes, --json, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.cli.main import main
from tests.factories import REPO, deliver, mail


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
            cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mailroom", *args], cwd=cwd, env=full_env,
                          input=stdin.decode() if stdin else None, capture_output=True,
                          text=True, timeout=120)


def config_env(tmp_path: Path) -> dict[str, str]:
    return {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}


def test_bad_config_prints_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[helpline]\ncolour = "blue"\n[smtp]\nmax_message_size = "big"\n'
                    '[database]\nurl = "mysql://x"\n')
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert all(line.startswith("mailroom: config: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    result = run_cli("tickets", "frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert main(["no-such-command"]) == 2


def test_python_dash_m_and_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "ingest" in result.stdout and "tick" in result.stdout


def test_db_upgrade_twice_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"MAILROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "MAILROOM_SECRET": "k"}
    first = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    second = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr
    assert "upgraded from empty" in first.stdout and "already at" in second.stdout


def test_commands_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    env = {"MAILROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "MAILROOM_SECRET": "k"}
    result = run_cli("tickets", "list", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "mailroom db upgrade" in result.stderr


def test_ingest_then_list_and_show_json(app, tmp_path: Path) -> None:
    eml = tmp_path / "case.eml"
    eml.write_bytes(mail(message_id="cli1@school.example"))
    result = run_cli("ingest", "--json", str(eml), str(eml), env=config_env(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["messages"] == 2 and summary["created"] == 1 and summary["duplicate"] == 1
    listing = json.loads(run_cli("tickets", "list", "--json", env=config_env(tmp_path)).stdout)
    assert [t["reference"] for t in listing] == ["HL-000001"]
    assert "messages" not in listing[0]
    shown = run_cli("tickets", "show", "HL-000001", "--json", env=config_env(tmp_path))
    ticket = json.loads(shown.stdout)
    for key in ("id", "reference", "status", "subject", "category", "requester",
                "participants", "messages", "escalations", "events"):
        assert key in ticket
    first = ticket["messages"][0]
    for key in ("direction", "kind", "sender", "to", "message_id", "date", "text",
                "attachments", "flags"):
        assert key in first
    assert first["message_id"] == "cli1@school.example" and first["direction"] == "in"
    missing = run_cli("tickets", "show", "HL-999999", env=config_env(tmp_path))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_ingest_stdin_for_an_mta_pipe(app, tmp_path: Path) -> None:
    result = run_cli("ingest", "-", env=config_env(tmp_path),
                     stdin=mail(message_id="pipe@school.example"))
    assert result.returncode == 0, result.stderr


def test_ingest_stdin_database_down_exits_75(tmp_path: Path) -> None:
    env = {"MAILROOM_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
           "MAILROOM_SECRET": "k"}
    result = run_cli("ingest", "-", env=env, cwd=tmp_path, stdin=mail())
    assert result.returncode == 75, result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_maildir_and_mbox(app, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(mail(message_id="md1@school.example"))
    (maildir / "cur" / "2.eml:2,S").write_bytes(mail(message_id="md2@school.example"))
    mbox = tmp_path / "box.mbox"
    mbox.write_bytes(b"".join(
        b"From sender@example Mon Mar  2 10:00:00 2026\n"
        + mail(message_id=f"mb{i}@school.example").replace(b"\r\n", b"\n") + b"\n"
        for i in range(3)))
    result = run_cli("ingest", "--json", str(maildir), str(mbox), env=config_env(tmp_path))
    summary = json.loads(result.stdout)
    assert summary["messages"] == 5 and summary["created"] == 5, summary


def test_inbox_list_and_retry(app, tmp_path: Path) -> None:
    deliver(app, b"")
    listed = json.loads(run_cli("inbox", "list", "--json", env=config_env(tmp_path)).stdout)
    assert [(i["status"], bool(i["error"])) for i in listed] == [("bad", True)]
    retried = run_cli("inbox", "retry", str(listed[0]["id"]), env=config_env(tmp_path))
    assert retried.returncode == 0 and "bad" in retried.stdout
    assert run_cli("inbox", "retry", "999", env=config_env(tmp_path)).returncode == 1


def test_outbox_list_flush_and_tick(app, tmp_path: Path) -> None:
    deliver(app, mail(message_id="ob@school.example"))
    queued = json.loads(run_cli("outbox", "list", "--json", env=config_env(tmp_path)).stdout)
    assert {o["kind"] for o in queued} == {"acknowledgement", "notification"}
    for key in ("id", "kind", "status", "to", "subject", "message_id", "ticket_id", "attempts"):
        assert key in queued[0]
    flushed = run_cli("outbox", "flush", "--json", env=config_env(tmp_path))
    assert json.loads(flushed.stdout) == {"sent": 2}
    sent = list((tmp_path / "var" / "outbox-sent").glob("*.eml"))
    assert len(sent) == 2
    tick = run_cli("tick", "--now", "2026-03-03T09:00:00Z", "--json", env=config_env(tmp_path))
    assert tick.returncode == 0 and "send_outbox" in json.loads(tick.stdout)
    bad = run_cli("tick", "--now", "yesterday", env=config_env(tmp_path))
    assert bad.returncode == 2


@pytest.mark.parametrize("command", [["check-config"], ["check-config", "--json"]],
                         ids=["text", "json"])
def test_check_config_says_what_would_run(tmp_path: Path, command: list[str]) -> None:
    env = {"MAILROOM_SECRET": "k", "MAILROOM_PRACTITIONERS": "a@h.example"}
    result = run_cli(*command, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:2525" in result.stdout and "a@h.example" in result.stdout
    assert "k" not in result.stdout.split("secret")[-1][:5]


def test_text_piped_in_by_mistake_is_kept_as_bad_with_its_reason(tmp_path: Path) -> None:
    from tests.factories import build_settings

    build_settings(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    env = config_env(tmp_path)
    assert run_cli("db", "upgrade", env=env).returncode == 0
    piped = run_cli("ingest", "-", env=env, stdin=b"Dear helpline, please call me back.\n")
    assert piped.returncode == 0, piped.stderr  # held: the MTA's part is done
    listed = run_cli("inbox", "list", "--json", env=env)
    [row] = json.loads(listed.stdout)
    assert row["status"] == "bad"
    assert "not an email message: no mail header" in row["error"]
    assert json.loads(run_cli("tickets", "list", "--json", env=env).stdout) == []
