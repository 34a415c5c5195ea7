"""The command line imports the module of the command it runs, and only that one."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from mailroom.cli.main import SUBCOMMANDS, Parser, build_parser, command_named, modules_for


def commands_added(module: str) -> list[str]:
    parser = Parser(prog="mailroom")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    importlib.import_module(module).register(sub)
    return list(sub.choices)


@pytest.mark.parametrize(("module", "names"), SUBCOMMANDS)
def test_each_module_adds_the_commands_the_table_names(module: str,
                                                       names: frozenset[str]) -> None:
    assert sorted(commands_added(module)) == sorted(names)


def test_the_help_lists_every_command_in_the_tables_order() -> None:
    parser = build_parser(["--help"])
    [sub] = [a for a in parser._actions if a.dest == "command"]
    in_order = [name for module, _ in SUBCOMMANDS for name in commands_added(module)]
    assert list(sub.choices or ()) == in_order


@pytest.mark.parametrize(("argv", "command"), [
    (["ingest", "-"], "ingest"),
    (["--config", "ingest", "tickets", "list"], "tickets"),  # a file named ingest
    (["--debug", "--log-format", "json", "--log-file", "x", "run"], "run"),
    (["--config=/etc/m.toml", "status"], "status"),
    (["--help"], None),
    ([], None),
])
def test_the_command_is_the_first_word_that_is_no_option(argv: list[str],
                                                          command: str | None) -> None:
    assert command_named(argv) == command


def test_a_word_no_module_adds_loads_them_all() -> None:
    assert modules_for("ingest") == ("mailroom.cli.ingest",)
    assert modules_for("outbox") == ("mailroom.cli.jobs",)
    assert modules_for("bogus") == modules_for(None) == tuple(m for m, _ in SUBCOMMANDS)


def test_ingest_starts_without_the_console_the_daemon_or_the_reports() -> None:
    """``mailroom ingest -`` runs once a message behind an MTA: what it imports is what
    it needs (measured in a fresh interpreter)."""
    probe = (
        "import sys\n"
        "from mailroom.cli.main import build_parser\n"
        "args = build_parser(['--config', 'x.toml', 'ingest', '-']).parse_args("
        "['--config', 'x.toml', 'ingest', '-'])\n"
        "assert args.handler.__module__ == 'mailroom.cli.ingest', args.handler\n"
        "heavy = ('starlette', 'uvicorn', 'apscheduler', 'prometheus_client', 'cryptography',\n"
        "         'alembic',\n"
        "         'mailroom.web', 'mailroom.runtime.daemon', 'mailroom.reports')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"
