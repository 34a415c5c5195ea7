"""The command line's rough edges, each held by a test: a closed pipe, one prefix per
error, global options anywhere, enumerated options checked, limits and defaults said,
and check-config's warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.cli.main import build_parser, main
from mailroom.resources import EXAMPLE_CONFIG, shipped_text
from mailroom.runtime.wiring import build_app
from mailroom.settings import load_settings
from tests.factories import build_settings, deliver, mail
from tests.ports import refused_port


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration with a migrated SQLite database in the test's data directory."""
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}")
    path = tmp_path / "mailroom.toml"
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    return path


def test_a_reader_that_goes_away_ends_the_command_quietly(config: Path) -> None:
    """``mailroom outbox list | head -3``: no ``internal error: BrokenPipeError``."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    done = subprocess.run([sys.executable, "-m", "mailroom", "outbox", "list",
                           "--config", str(config)], stdout=write_end, stderr=subprocess.PIPE,
                          text=True, timeout=120, cwd=config.parent)
    os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_a_broken_config_file_says_config_once_per_line(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[helpline\nname = 'x'\n")
    assert main(["--config", str(broken), "check-config"]) == 1
    assert main(["--config", str(tmp_path / "missing.toml"), "check-config"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"mailroom: config: {broken} is not valid TOML: ")
    assert lines[1] == f"mailroom: config: no such file {tmp_path / 'missing.toml'}"
    assert all(line.count("config:") == 1 for line in lines), lines


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_subcommand(
    config: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--config", str(config), "--debug"]
    argv = [*options, "tickets", "list"] if where == "before" else ["tickets", "list", *options]
    args = build_parser().parse_args(argv)
    assert (args.config, args.debug) == (str(config), True)
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "no tickets"


def test_an_option_after_the_subcommand_does_not_undo_one_before(config: Path) -> None:
    args = build_parser().parse_args(["--config", str(config), "outbox", "list"])
    assert args.config == str(config) and args.debug is False


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["tickets", "list", "--status", "nonsense"], "open, waiting, closed"),
        (["tickets", "list", "--status", "open,nonsense"], "open, waiting, closed"),
        (["inbox", "list", "--status", "broken"], "new, done, bad, shunt"),
        (["outbox", "list", "--status", "lost"], "queued"),
        (["hashes", "list", "--source", "elsewhere"], "'case', 'import', 'command'"),
        (["report", "--from", "2026-01-01", "--to", "2026-02-01", "--format", "pdf"],
         "'text', 'markdown', 'json', 'csv', 'html'"),
        (["tickets", "list", "--limit", "0"], "at least 1"),
    ],
    ids=["tickets-status", "tickets-one-bad", "inbox-status", "outbox-status",
         "hashes-source", "report-format", "limit"],
)
def test_every_enumerated_option_is_checked(
    config: Path, argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailroom: argument ") and words in err, err
    assert len(err.strip().splitlines()) == 1


def test_listings_say_when_they_stop_at_their_limit(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_app(load_settings(config, environ={}))
    try:
        for n in range(3):
            deliver(app, mail(message_id=f"limit-{n}@school.example",
                              sender=f"teacher{n}@school.example"))
    finally:
        app.close()
    capsys.readouterr()
    assert main(["tickets", "list", "--limit", "2", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1 + 2  # the heading and two tickets
    assert err == ("mailroom: showing the first 2 tickets only; there are more "
                   "(raise --limit, now 2)\n")
    assert main(["tickets", "list", "--limit", "3", "--config", str(config)]) == 0
    assert capsys.readouterr().err == ""


def test_inbox_list_says_what_it_shows_by_default(config: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inbox", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == \
        "no bad or shunt messages (--status chooses others)"
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["inbox", "list", "--help"])
    assert "default bad,shunt: the messages that need an admin" in " ".join(
        capsys.readouterr().out.split())


def test_check_config_warns_about_what_to_fix(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with refused_port() as port:  # nothing listens there
        _warns_about_what_to_fix(tmp_path, capsys, port)


def _warns_about_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             port: int) -> None:
    path = tmp_path / "mailroom.toml"
    path.write_text(f'[paths]\nvar_dir = "{tmp_path / "data"}"\n'
                    f'[outbound]\nurl = "smtp://127.0.0.1:{port}"\n')
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings[0].startswith("warning: platforms: 15 of 15 escalation addresses are "
                                  "placeholders (discord, facebook, ")
    assert warnings[1].startswith("warning: practitioners.addresses: none")
    assert warnings[2] == (f"warning: database: {tmp_path / 'data' / 'mailroom.db'} does not "
                           "exist yet: run `mailroom db upgrade`")
    assert warnings[3].startswith(f"warning: outbound.url: the relay 127.0.0.1:{port} cannot "
                                  "be reached")
    assert len(warnings) == 4
    assert not (tmp_path / "data" / "mailroom.db").exists(), "check-config creates no database"


def test_check_config_warns_about_an_unreachable_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mailroom.toml"
    with refused_port() as port:
        path.write_text(f'[paths]\nvar_dir = "{tmp_path}"\n[database]\n'
                        f'url = "postgresql+psycopg://nobody@127.0.0.1:{port}/none"\n')
        assert main(["--config", str(path), "check-config", "--json"]) == 0
    assert any(w.startswith("database: cannot be reached: ")
               for w in json.loads(capsys.readouterr().out)["warnings"])


def test_a_configured_helpline_gets_no_warnings(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    platforms = tmp_path / "platforms.toml"
    platforms.write_text('[platforms.tiktok]\nname = "TikTok"\n'
                         'address = "partners@tiktok.com"\ndomains = ["tiktok.com"]\n')
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}",
                   paths={"platforms": str(platforms)})
    config = str(tmp_path / "mailroom.toml")
    assert main(["--config", config, "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "check-config"]) == 0
    out = capsys.readouterr().out
    assert "warning:" not in out, out


def test_check_config_prints_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--example"]) == 0
    assert capsys.readouterr().out == shipped_text(EXAMPLE_CONFIG)
    assert main(["check-config", "--platforms"]) == 0
    assert "[platforms.tiktok]" in capsys.readouterr().out
