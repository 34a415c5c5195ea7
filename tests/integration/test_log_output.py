"""Log lines as text or JSON lines, on stderr or in a file, every one redacted:
``mailroom`` in a process of its own, as a service runs it."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from tests.factories import build_settings, mail
from tests.integration.test_cli import run_cli

JO = "jo.smith@school.example"


def helpline_with_mail(tmp_path: Path, **sections: dict[str, object]) -> dict[str, str]:
    """A migrated helpline with one professional's message waiting in a file."""
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}", **sections)
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    (tmp_path / "jo.eml").write_bytes(mail(sender=JO, name="Jo Smith", date=datetime.now(UTC)))
    assert run_cli("db", "upgrade", env=env).returncode == 0
    return env


def test_json_lines_in_a_private_file_with_every_address_redacted(tmp_path: Path) -> None:
    env = helpline_with_mail(tmp_path)
    log = tmp_path / "mailroom.log"
    assert run_cli("--log-format", "json", "--log-file", str(log),
                   "ingest", str(tmp_path / "jo.eml"), env=env).returncode == 0
    flushed = run_cli("--log-format", "json", "--log-file", str(log), "outbox", "flush", env=env)
    assert flushed.returncode == 0, flushed.stderr
    assert flushed.stderr == ""  # the lines went to the file
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines, "nothing was logged"
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    assert all(datetime.fromisoformat(line["time"]).tzinfo is not None for line in lines)
    sent = [line for line in lines if "(acknowledgement) to" in line["message"]]
    assert sent and sent[0]["level"] == "INFO" and sent[0]["logger"].startswith("mailroom")
    assert "…@school.example" in sent[0]["message"]
    assert "jo.smith" not in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_logging_settings_choose_format_and_file(tmp_path: Path) -> None:
    log = tmp_path / "from-settings.log"
    env = helpline_with_mail(tmp_path, logging={"format": "json", "file": str(log)})
    assert run_cli("ingest", str(tmp_path / "jo.eml"), env=env).returncode == 0
    flushed = run_cli("outbox", "flush", env=env)
    assert flushed.returncode == 0 and flushed.stderr == ""
    messages = [json.loads(line)["message"] for line in log.read_text().splitlines()]
    assert any("(acknowledgement) to …@school.example" in m for m in messages)


def test_the_option_wins_over_the_setting(tmp_path: Path) -> None:
    env = helpline_with_mail(tmp_path, logging={"format": "json"})
    assert run_cli("ingest", str(tmp_path / "jo.eml"), env=env).returncode == 0
    flushed = run_cli("--log-format", "text", "outbox", "flush", env=env)
    line = next(x for x in flushed.stderr.splitlines() if "(acknowledgement) to" in x)
    assert " INFO mailroom." in line and not line.startswith("{")
    assert "…@school.example" in line and "jo.smith" not in flushed.stderr


def test_a_log_file_that_cannot_be_opened_stops_nothing(tmp_path: Path) -> None:
    env = helpline_with_mail(tmp_path)
    missing = tmp_path / "no" / "such" / "dir.log"
    result = run_cli("--log-file", str(missing), "ingest", "--no-progress", "-", env=env,
                     stdin=mail(sender=JO, message_id="still@school.example"))
    assert result.returncode == 0, result.stderr  # the mail is stored all the same
    first = result.stderr.splitlines()[0]
    assert f"cannot open the log file {missing} (No such file or directory): logging to " \
           "stderr" in first
    assert "Traceback" not in result.stderr


def test_a_bad_log_format_setting_names_the_key(tmp_path: Path) -> None:
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'db'}")
    config = tmp_path / "mailroom.toml"
    config.write_text(config.read_text() + '[logging]\nformat = "xml"\n')
    result = run_cli("check-config", env={"MAILROOM_CONFIG": str(config)})
    assert result.returncode == 1
    assert 'mailroom: config: logging.format: expected text or json, got "xml"' in result.stderr


def test_check_config_says_where_the_logs_go(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    env = helpline_with_mail(tmp_path, logging={"format": "json", "file": str(log)})
    result = run_cli("check-config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["logs"] == f"json lines to {log}, redacted"
