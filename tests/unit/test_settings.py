"""Settings: the TOML file, the environment contract, and one line per problem."""

from __future__ import annotations

from datetime import date, time
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
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite:///var/mailroom.db"
    assert settings.helpline_address == "helpline@localhost"
    assert settings.domains == ("localhost",)
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 2525)
    assert settings.outbound_url == "file://var/outbox-sent"
    assert settings.opening_days == frozenset(range(5))
    assert (settings.opens, settings.closes) == (time(10), time(16))
    assert settings.timezone.key == "Europe/London"
    assert settings.practitioners == ()
    # the signing secret is generated once and kept under var/
    assert (tmp_path / "var" / "secret").read_bytes().strip() == settings.secret
    assert load_settings(environ={}).secret == settings.secret


def test_example_config_is_valid(tmp_path: Path) -> None:
    env = {"MAILROOM_SECRET": "x" * 32}
    settings = load_settings(shipped_path("data/mailroom.example.toml"), environ=env)
    assert date(2026, 12, 25) in settings.holidays


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
        ('[outbound]\nurl = "ftp://x"', "outbound.url: expected file://DIR"),
        ("[bogus]\nx = 1", "bogus: unknown section"),
        ('[[imap]]\nname = "a"\nhost = "h"\nusername = "u"',
         "imap[0].password: required"),
        ('[[imap]]\nname = "a"\nhost = "h"\nusername = "u"\npassword_env = "NOPE_X"',
         "imap[0].password_env: environment variable NOPE_X is not set"),
        ("helpline = 3", "helpline: expected a table"),
    ],
    ids=["clock", "zone", "tag", "address", "holidays", "listen", "outbound", "section",
         "imap-password", "imap-env", "not-a-table"],
)
def test_each_problem_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text + '\n[security]\nsecret = "k"\n'
                            if not text.startswith("helpline =") else text), environ={})
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


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
