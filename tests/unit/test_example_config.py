"""The shipped example configuration is true to the built-in defaults and names every key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

from mailroom.resources import EXAMPLE_CONFIG, shipped_path, shipped_text
from mailroom.settings import IMAP_SCHEMA, SCHEMA, load_settings


def test_loading_the_example_gives_the_built_in_defaults(tmp_path: Path) -> None:
    env = {"MAILROOM_HOME": str(tmp_path), "MAILROOM_SECRET": "k"}
    example = load_settings(shipped_path(EXAMPLE_CONFIG), environ=env)
    defaults = load_settings(environ=env)
    differ = {f.name: (getattr(example, f.name), getattr(defaults, f.name))
              for f in fields(example)
              if f.name != "source" and getattr(example, f.name) != getattr(defaults, f.name)}
    assert differ == {}


def test_every_key_is_in_the_example_with_its_default_or_described() -> None:
    text = shipped_text(EXAMPLE_CONFIG)
    tables = re.split(r"^\[([a-z_]+)\]$", text, flags=re.MULTILINE)
    sections = dict(zip(tables[1::2], tables[2::2], strict=True))
    missing = [f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys
               if not re.search(rf"^(# )?{key} = ", sections.get(section, ""), re.MULTILINE)]
    missing += [f"imap.{key}" for key in IMAP_SCHEMA
                if not re.search(rf"^# {key} = ", text, re.MULTILINE)]
    assert missing == []


def test_what_the_example_sets_is_the_default_value() -> None:
    """A key written out (not commented) shows its default, as SCHEMA has it."""
    example = tomllib.loads(shipped_text(EXAMPLE_CONFIG))
    for section, values in example.items():
        for key, value in values.items():
            parse, default = SCHEMA[section][key]
            assert parse(value) == parse(default), f"{section}.{key}"


def test_the_admin_guide_names_every_key() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "admin-guide.md").read_text()
    reference = guide.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    missing = [f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys
               if f"{key}`" not in reference]
    missing += [f"imap.{key}" for key in IMAP_SCHEMA if f"{key}`" not in reference]
    assert missing == []
