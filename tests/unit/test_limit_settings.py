"""The abuse limits in the settings: ``[smtp]`` door limits and the ``[limits]`` section."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailroom.errors import ConfigError
from mailroom.resources import shipped_path
from mailroom.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
ENV = {"MAILROOM_SECRET": "x" * 32}
DEFAULTS = {
    ("smtp", "max_recipients"): ("smtp_max_recipients", 50),
    ("smtp", "max_connections_per_client"): ("smtp_max_connections_per_client", 10),
    ("smtp", "idle_timeout_seconds"): ("smtp_idle_timeout", 60.0),
    ("limits", "max_attachments"): ("max_attachments", 100),
    ("limits", "max_mime_parts"): ("max_mime_parts", 1000),
    ("limits", "max_header_bytes"): ("max_header_bytes", 262144),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailroom.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ=ENV)
    assert {key: getattr(settings, field) for key, (field, _) in DEFAULTS.items()} == \
        {key: default for key, (_, default) in DEFAULTS.items()}


def test_the_example_config_names_every_limit_with_its_default() -> None:
    example = tomllib.loads((shipped_path("data/mailroom.example.toml")).read_text())
    assert {key: example[key[0]][key[1]] for key in DEFAULTS} == \
        {key: default for key, (_, default) in DEFAULTS.items()}


def test_values_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[smtp]\nmax_recipients = 5\nmax_connections_per_client = 2\n"
                           "idle_timeout_seconds = 2.5\n[limits]\nmax_attachments = 0\n"
                           "max_mime_parts = 20\nmax_header_bytes = 4096\n")
    s = load_settings(path, environ=ENV)
    assert (s.smtp_max_recipients, s.smtp_max_connections_per_client, s.smtp_idle_timeout) == \
        (5, 2, 2.5)
    assert (s.max_attachments, s.max_mime_parts, s.max_header_bytes) == (0, 20, 4096)


@pytest.mark.parametrize(("section", "key", "value", "problem"), [
    ("smtp", "max_recipients", "0", "expected a whole number of at least 1, got 0"),
    ("smtp", "max_connections_per_client", '"many"',
     'expected a whole number of at least 1, got "many"'),
    ("smtp", "idle_timeout_seconds", "-1", "expected a positive number, got -1"),
    ("limits", "max_attachments", "-1", "expected a whole number of at least 0, got -1"),
    ("limits", "max_mime_parts", "0", "expected a whole number of at least 1, got 0"),
    ("limits", "max_header_bytes", "100", "expected a whole number of at least 1024, got 100"),
    ("limits", "max_parts", "5", "unknown key"),
], ids=lambda v: str(v))
def test_a_bad_value_is_one_line_naming_the_key(
    tmp_path: Path, section: str, key: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f"[{section}]\n{key} = {value}\n"), environ=ENV)
    assert info.value.problems == [f"{section}.{key}: {problem}"]
