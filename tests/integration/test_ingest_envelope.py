"""``mailroom ingest -`` as an MTA's pipe runs it: the envelope on the command line,
and exit 75 (try again later) for what the helpline must fix, never a bounce."""

from __future__ import annotations

from pathlib import Path

from tests.factories import inbox_rows, mail
from tests.integration.test_cli import config_env, run_cli

JO = "jo@school.example"


def test_the_envelope_of_the_message_on_stdin_is_stored(app, tmp_path: Path) -> None:
    token = "helpline+r-t1-abcdef@helpline.example"
    result = run_cli("ingest", "--no-progress", "--mail-from", JO, "--rcpt-to", token,
                     "--rcpt-to", "helpline@helpline.example", "-", env=config_env(tmp_path),
                     stdin=mail(sender=JO, message_id="env@school.example"))
    assert result.returncode == 0, result.stderr
    [row] = inbox_rows(app)
    assert row.door == "file" and row.door_ref == "stdin" and row.mail_from == JO
    assert row.rcpt_to == [token, "helpline@helpline.example"]


def test_a_bounce_has_an_empty_envelope_sender(app, tmp_path: Path) -> None:
    result = run_cli("ingest", "--mail-from", "", "-", env=config_env(tmp_path),
                     stdin=mail(message_id="bounce@school.example"))
    assert result.returncode == 0, result.stderr
    assert inbox_rows(app)[0].mail_from == ""


def test_the_envelope_options_need_stdin(tmp_path: Path) -> None:
    (tmp_path / "m.eml").write_bytes(mail())
    result = run_cli("ingest", "--rcpt-to", JO, str(tmp_path / "m.eml"))
    assert result.returncode == 2
    assert "--mail-from and --rcpt-to describe the message on stdin" in result.stderr


def test_a_configuration_error_defers_piped_mail(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[helpline]\ncolour = "blue"\n')
    result = run_cli("ingest", "-", env={"MAILROOM_CONFIG": str(config)}, stdin=mail())
    assert result.returncode == 75
    assert "mailroom: config: helpline.colour: unknown key" in result.stderr
    files = run_cli("ingest", str(tmp_path / "bad.toml"), env={"MAILROOM_CONFIG": str(config)})
    assert files.returncode == 1  # not a pipe: an ordinary error
