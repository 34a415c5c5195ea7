"""The files mailroom ships inside its package, found wherever it is installed.

The templates (``mailroom/templates``), the migrations (``mailroom/migrations``),
the platform directory and the example configuration (``mailroom/data``) are
package data: they travel in the wheel and are read through
:mod:`importlib.resources`, never relative to the working directory or to a
source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = "mailroom"


def shipped_path(name: str) -> Path:
    """The path of a shipped file or folder, e.g. ``templates`` or ``data/platforms.toml``.

    mailroom is installed as plain files (a wheel is unpacked, never imported
    from a zip), so the resource is a real path that Jinja2 and Alembic can read.
    """
    resource = files(PACKAGE).joinpath(name)
    if not isinstance(resource, Path):
        raise RuntimeError(f"mailroom's {name} is not on the file system ({resource!r}): "
                           "install mailroom unpacked (pip install)")
    return resource


def shipped_text(name: str) -> str:
    """The text of a shipped file (``data/mailroom.example.toml``, …)."""
    return files(PACKAGE).joinpath(name).read_text(encoding="utf-8")


TEMPLATES = "templates"
MIGRATIONS = "migrations"
PLATFORMS = "data/platforms.toml"
EXAMPLE_CONFIG = "data/mailroom.example.toml"
