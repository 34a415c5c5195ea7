"""Which schema a database has, and which this mailroom ships, read without Alembic.

Every command checks the two before it opens the database
(:func:`mailroom.cli.context.open_app`), and ``mailroom ingest -`` runs once a
message behind an MTA: loading Alembic for the check would cost it about 11 MB
and its start-up time. The database's revision is the row Alembic keeps in
``alembic_version``; the newest shipped one is the migration no other names as
the one it follows, read from the scripts' ``revision`` and ``down_revision``
lines (a test holds this against Alembic's own answer). Migrating stays with
Alembic (:mod:`mailroom.store.migrate`).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from mailroom.resources import MIGRATIONS, shipped_path

VERSION_TABLE = "alembic_version"


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None for an empty database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


@cache
def head_revision() -> str:
    """The newest revision the shipped migrations bring a database to."""
    follows = dict(_links(path) for path in (shipped_path(MIGRATIONS) / "versions").glob("*.py"))
    heads = set(follows) - {before for before in follows.values() if before is not None}
    if len(heads) != 1:
        raise RuntimeError(f"the shipped migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _links(path: Path) -> tuple[str, str | None]:
    """A migration script's ``revision`` and the ``down_revision`` it follows."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(value)
    revision, before = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str) or not (before is None or isinstance(before, str)):
        raise RuntimeError(f"{path.name}: no revision and down_revision to read")
    return revision, before
