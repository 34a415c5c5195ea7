"""Settings: the TOML file, the environment contract, and one line per problem."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from mailroom.errors import ConfigError
from mailroom.resources import shipped_path
from mailroom.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailroom.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={"HOME": str(home)})
    data = home / ".local" / "share" / "mailroom"
    assert settings.var_dir == data
    assert settings.database_url == f"sqlite:///{data}/mailroom.db"
    assert settings.helpline_address == "helpline@localhost"
    assert settings.domains == ("localhost",)
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 2525)
    assert settings.outbound_url == f"file://{data}/outbox-sent"
    assert settings.opening_days == frozenset(range(5))
    assert (settings.opens, settings.closes) == (time(10), time(16))
    assert settings.timezone.key == "Europe/London"
    assert settings.practitioners == ()
    # the signing secret is generated once and kept in the data directory
    assert (data / "secret").read_bytes().strip() == settings.secret
    assert load_settings(environ={"HOME": str(home)}).secret == settings.secret
    assert list(tmp_path.iterdir()) == [home], "nothing is written to the working directory"


def test_the_data_directory_comes_from_mailroom_home(tmp_path: Path) -> None:
    s = load_settings(environ={"MAILROOM_HOME": str(tmp_path / "data"), "MAILROOM_SECRET": "k"})
    assert s.var_dir == tmp_path / "data"
    assert s.database_url == f"sqlite:///{tmp_path}/data/mailroom.db"
    assert s.outbound_url == f"file://{tmp_path}/data/outbox-sent"
    assert s.attachments_dir == tmp_path / "data" / "attachments"


def test_the_default_config_file_is_in_the_data_directory(tmp_path: Path) -> None:
    (tmp_path / "mailroom.toml").write_text('[helpline]\nname = "POSH"\n')
    env = {"MAILROOM_HOME": str(tmp_path), "MAILROOM_SECRET": "k"}
    assert load_settings(environ=env).helpline_name == "POSH"


@pytest.mark.parametrize("where", ["file", "environment"])
def test_a_relative_data_directory_is_refused(tmp_path: Path, where: str) -> None:
    path = write(tmp_path, '[paths]\nvar_dir = "var"\n' if where == "file" else "")
    env = {"MAILROOM_HOME": "var"} if where == "environment" else {}
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    assert info.value.problems == [
        'paths.var_dir: expected an absolute path (the data directory never depends on the '
        'working directory), got "var"']


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("database.url", "sqlite:///helpline.db", "sqlite:///{data}/helpline.db"),
        ("database.url", "sqlite:////srv/helpline.db", "sqlite:////srv/helpline.db"),
        ("outbound.url", "file:sent", "file://{data}/sent"),
        ("outbound.url", "file:///srv/sent", "file:///srv/sent"),
        ("outbound.url", "file://localhost/srv/sent", "file:///srv/sent"),
    ],
    ids=["sqlite-relative", "sqlite-absolute", "file-relative", "file-absolute",
         "file-localhost"],
)
def test_relative_paths_are_taken_in_the_data_directory(
    tmp_path: Path, key: str, value: str, expected: str
) -> None:
    section, name = key.split(".")
    data = tmp_path / "data"
    path = write(tmp_path, f'[paths]\nvar_dir = "{data}"\n[{section}]\n{name} = "{value}"\n')
    s = load_settings(path, environ={"MAILROOM_SECRET": "k"})
    got = s.database_url if section == "database" else s.outbound_url
    assert got == expected.format(data=data)


def test_a_file_url_naming_a_host_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[outbound]\nurl = "file://var/outbox-sent"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={"MAILROOM_SECRET": "k"})
    assert info.value.problems == [
        'outbound.url: "file://var/outbox-sent" names the host "var": write '
        'file:///ABSOLUTE/DIR, or file:DIR for a folder in the data directory']


def test_example_config_is_valid(tmp_path: Path) -> None:
    env = {"MAILROOM_SECRET": "x" * 32}
    settings = load_settings(shipped_path("data/mailroom.example.toml"), environ=env)
    assert settings.holidays == frozenset()  # as built in: a helpline lists its own


def test_environment_contract_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///file.db"\n')
    env = {
        "MAILROOM_DATABASE_URL": "postgresql+psycopg://u@db.example/helpline",
        "MAILROOM_HELPLINE_ADDRESS": "Help@Example.org",
        "MAILROOM_OUTBOUND_URL": "smtp://relay.example:587",
        "MAILROOM_SMTP_LISTEN": "0.0.0.0:25",
        "MAILROOM_PRACTITIONERS": "a@example.org, B@example.org",
        "MAILROOM_PLATFORMS": "/etc/platforms.toml",
        "MAILROOM_SECRET": "s3cret",
    }
    s = load_settings(path, environ=env)
    assert s.database_url == env["MAILROOM_DATABASE_URL"]
    assert s.helpline_address == "help@example.org" and s.domains == ("example.org",)
    assert s.outbound_url == "smtp://relay.example:587"
    assert (s.smtp_host, s.smtp_port) == ("0.0.0.0", 25)
    assert s.practitioners == ("a@example.org", "b@example.org")
    assert str(s.platforms_path) == "/etc/platforms.toml"
    assert s.secret == b"s3cret"


def test_mailroom_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[helpline]\nname = "POSH"\n[security]\nsecret = "k"\n')
    assert load_settings(environ={"MAILROOM_CONFIG": str(path)}).helpline_name == "POSH"


def test_three_problems_three_lines(tmp_path: Path) -> None:
    path = write(tmp_path, """
[helpline]
colour = "blue"
[smtp]
max_message_size = "big"
[database]
url = "mysql://root@localhost/x"
""")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert any(p.startswith("helpline.colour: unknown key") for p in problems)
    assert any(p.startswith("smtp.max_message_size: expected a whole number") for p in problems)
    assert any(p.startswith("database.url: expected sqlite") for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[helpline]\nopens = "10h"', "helpline.opens: expected a time as HH:MM"),
        ('[helpline]\ntimezone = "Mars/Olympus"', "helpline.timezone: unknown time zone"),
        ('[helpline]\nsubject_tag = "[Helpline]"', 'helpline.subject_tag: must contain "{id}"'),
        ('[helpline]\naddress = "nobody"', "helpline.address: expected an email address"),
        ('[helpline]\nholidays = ["25/12/2026"]', "helpline.holidays: expected dates"),
        ('[smtp]\nlisten = "localhost"', "smtp.listen: expected HOST:PORT"),
        ('[outbound]\nurl = "ftp://x"', "outbound.url: expected file:///DIR"),
        ("[bogus]\nx = 1", "bogus: unknown section"),
        ('[[imap]]\nname = "a"\nhost = "h"\nusername = "u"',
         "imap[0].password: required"),
        ('[[imap]]\nname = "a"\nhost = "h"\nusername = "u"\npassword_env = "NOPE_X"',
         "imap[0].password_env: environment variable NOPE_X is not set"),
        ("helpline = 3", "helpline: expected a table"),
        ("[sla]\nwarn_before_hours = -1", "sla.warn_before_hours: expected a number of hours"),
        ('[sla]\nwarn_before_hours = "soon"', "sla.warn_before_hours: expected a number"),
        ("[sla]\nwarn_before_hours = inf", "sla.warn_before_hours: expected a number"),
        ('[sla]\nsupervisor = "the boss"', "sla.supervisor: expected an email address"),
    ],
    ids=["clock", "zone", "tag", "address", "holidays", "listen", "outbound", "section",
         "imap-password", "imap-env", "not-a-table", "warn-negative", "warn-word", "warn-inf",
         "supervisor"],
)
def test_each_problem_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text + '\n[security]\nsecret = "k"\n'
                            if not text.startswith("helpline =") else text), environ={})
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_sla_warnings_and_supervisor(tmp_path: Path) -> None:
    defaults = load_settings(write(tmp_path, '[security]\nsecret = "k"\n'), environ={})
    assert (defaults.sla_warn_before_hours, defaults.sla_supervisor) == (1.0, None)
    given = load_settings(write(tmp_path, '[security]\nsecret = "k"\n[sla]\n'
                                'warn_before_hours = 0\nsupervisor = "Lead@Helpline.example"\n'),
                          environ={})
    assert (given.sla_warn_before_hours, given.sla_supervisor) == (0.0, "lead@helpline.example")


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[helpline\n"), environ={})
    assert len(info.value.problems) == 1 and "not valid TOML" in info.value.problems[0]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_imap_account(tmp_path: Path) -> None:
    path = write(tmp_path, """
[security]
secret = "k"
[[imap]]
name = "main"
host = "imap.example.org"
username = "helpline"
password_env = "IMAP_PW"
idle = false
""")
    account = load_settings(path, environ={"IMAP_PW": "pw"}).imap_accounts[0]
    assert (account.port, account.security, account.password, account.idle) == (
        993, "tls", "pw", False)
    assert "pw" not in repr(account)
