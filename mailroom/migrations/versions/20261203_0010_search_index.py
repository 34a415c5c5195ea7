"""search index: SQLite FTS5 tables kept by triggers, PostgreSQL generated tsvector columns
with GIN indexes

Revision ID: 0010
Revises: 0009

Filled for existing data as it is created (see mailroom.store.search). The
text indexed is a copy of mailroom.store.search's, as of this revision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_CHARS = 100_000

PG_MESSAGE_DOCUMENT = (
    "to_tsvector('simple'::regconfig, regexp_replace(left("
    "coalesce(subject, '') || ' ' || coalesce(text, '') || ' ' || coalesce(sender, '') || ' '"
    " || coalesce(sender_name, '') || ' ' || coalesce(recipients::text, '') || ' '"
    f" || coalesce(urls::text, ''), {MAX_CHARS}), '[^[:alnum:]]+', ' ', 'g'))"
)
PG_TICKET_DOCUMENT = (
    "to_tsvector('simple'::regconfig, regexp_replace("
    "coalesce(reference, '') || ' ' || coalesce(subject, '') || ' ' || coalesce(requester, '')"
    " || ' ' || coalesce(requester_name, '') || ' ' || coalesce(platforms::text, ''),"
    " '[^[:alnum:]]+', ' ', 'g'))"
)


def _message_body(row: str) -> str:
    return (f"substr(coalesce({row}.subject, '') || ' ' || coalesce({row}.text, '') || ' ' "
            f"|| coalesce({row}.sender, '') || ' ' || coalesce({row}.sender_name, '') || ' ' "
            f"|| coalesce({row}.recipients, '') || ' ' || coalesce({row}.urls, ''), 1, "
            f"{MAX_CHARS})")


def _ticket_body(row: str) -> str:
    return (f"coalesce({row}.reference, '') || ' ' || coalesce({row}.subject, '') || ' ' "
            f"|| coalesce({row}.requester, '') || ' ' || coalesce({row}.requester_name, '') "
            f"|| ' ' || coalesce({row}.platforms, '')")


def _sqlite_table(name: str, source: str, columns: str, body: Callable[[str], str]) -> None:
    fts = f"search_fts_{name}"
    op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5(body, content='', "
               "tokenize='unicode61 remove_diacritics 0')")
    insert_new = f"INSERT INTO {fts}(rowid, body) VALUES (new.id, {body('new')});"
    delete_old = (f"INSERT INTO {fts}({fts}, rowid, body) "
                  f"VALUES ('delete', old.id, {body('old')});")
    op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {source} BEGIN {insert_new} END")
    op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {source} BEGIN {delete_old} END")
    op.execute(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {columns} ON {source} "
               f"BEGIN {delete_old} {insert_new} END")
    op.execute(f"INSERT INTO {fts}(rowid, body) SELECT id, {body(source)} FROM {source}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, document in (("messages", PG_MESSAGE_DOCUMENT),
                                ("tickets", PG_TICKET_DOCUMENT)):
            op.execute(f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
                       f"GENERATED ALWAYS AS ({document}) STORED")
            op.execute(f"CREATE INDEX ix_search_{table} ON {table} USING gin (search_vector)")
        return
    _sqlite_table("messages", "messages", "subject, text, sender, sender_name, recipients, urls",
                  _message_body)
    _sqlite_table("tickets", "tickets", "reference, subject, requester, requester_name, platforms",
                  _ticket_body)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("tickets", "messages"):
            op.execute(f"DROP INDEX ix_search_{table}")
            op.execute(f"ALTER TABLE {table} DROP COLUMN search_vector")
        return
    for name in ("messages", "tickets"):
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER search_fts_{name}_{trigger}")
        op.execute(f"DROP TABLE search_fts_{name}")
