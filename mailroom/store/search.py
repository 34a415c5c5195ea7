"""Full-text search over cases: one interface, SQLite FTS5 or PostgreSQL tsvector + GIN.

What is searched: each message's subject, text, sender (address and name),
recipients and reported URLs, and each case's reference, subject, requester
and platforms. The search words are split into their letters-and-digits runs
on both databases, so ``tiktok.com/@jo_b`` is the phrase *tiktok com jo b*
wherever it occurs, and a case matches when every word (each a phrase) occurs
in it, in any of its messages or in the case itself. No stemming, no accent
folding: the same answers on both databases.

The index is kept by the database itself, so whatever writes a message or a
case keeps it current: the pipeline when mail arrives or is queued, a merge,
retention's purge and an erasure (nothing purged stays findable):

- **SQLite**: two contentless FTS5 tables (``search_fts_messages``,
  ``search_fts_tickets``, rowid = the row's id) filled by triggers on
  ``messages`` and ``tickets``; a deleted or changed row's old text is taken
  out with FTS5's ``delete`` command. Only the tokens are kept, not the text.
- **PostgreSQL**: a stored generated column ``search_vector`` (a tsvector of
  the same text, :data:`PG_MESSAGE_DOCUMENT`) on ``messages`` and ``tickets``,
  with a GIN index. Stored, not an expression index: for a common word the
  planner reads every row, and recomputing the tsvector of each took seconds
  at a few thousand messages (a phrase is checked against the stored vector's
  positions too). The column is not in the models; the ORM never reads it.

Migration 0010 creates them and fills them for existing data. A later
migration that rebuilds ``messages`` or ``tickets`` on SQLite (Alembic's batch
mode copies the table) drops the triggers and must create them again
(``tests/web/test_cases.py`` checks that they are there at the head). Only the first
:data:`MAX_INDEXED_CHARS` characters of a message are indexed (a tsvector
holds at most 1 MB).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, bindparam, select, text
from sqlalchemy.orm import Session

from mailroom.store.models import Ticket

MAX_INDEXED_CHARS = 100_000
MAX_WORDS = 8
MAX_RESULTS = 1_000  # cases a search lists at most; past it, "more than" (more words narrow it)
RARE = 2_000  # a phrase with fewer hits (messages and cases) leads the search (search_ids)
WALK = 2_500  # then the most recently active cases walked for words common together
FTS_PREFIX = "search_fts"  # the FTS5 tables and their shadow tables
PG_INDEX_PREFIX = "ix_search_"
PG_COLUMN = "search_vector"
_TOKENS = re.compile(r"[^\W_]+")
# The order of every search's results, and their number: ``limit + 1`` says whether more match.
_NEWEST_FIRST = " ORDER BY t.updated_at DESC, t.id DESC LIMIT :limit"

# The text of a message and of a case as PostgreSQL indexes it (the migration
# holds a copy: a migration never imports code that may change).
PG_MESSAGE_DOCUMENT = (
    "to_tsvector('simple'::regconfig, regexp_replace(left("
    "coalesce(subject, '') || ' ' || coalesce(text, '') || ' ' || coalesce(sender, '') || ' '"
    " || coalesce(sender_name, '') || ' ' || coalesce(recipients::text, '') || ' '"
    f" || coalesce(urls::text, ''), {MAX_INDEXED_CHARS}), '[^[:alnum:]]+', ' ', 'g'))"
)
PG_TICKET_DOCUMENT = (
    "to_tsvector('simple'::regconfig, regexp_replace("
    "coalesce(reference, '') || ' ' || coalesce(subject, '') || ' ' || coalesce(requester, '')"
    " || ' ' || coalesce(requester_name, '') || ' ' || coalesce(platforms::text, ''),"
    " '[^[:alnum:]]+', ' ', 'g'))"
)


@dataclass(frozen=True)
class SearchQuery:
    """The words of a search, each as the phrase of its tokens."""

    phrases: tuple[str, ...]

    @classmethod
    def parse(cls, words: str) -> SearchQuery:
        phrases = []
        for word in words.split():
            tokens = _TOKENS.findall(word.lower())
            if tokens:
                phrases.append(" ".join(tokens))
        return cls(tuple(dict.fromkeys(phrases))[:MAX_WORDS])

    def __bool__(self) -> bool:
        return bool(self.phrases)


def include_in_schema_compare(name: str | None, type_: str, parent_names: Any) -> bool:
    """For Alembic's comparison of models and database: the search index is not a model."""
    if name is None:
        return True
    return not (name.startswith(FTS_PREFIX) or name.startswith(PG_INDEX_PREFIX)
                or name == PG_COLUMN)


@dataclass(frozen=True)
class Matches:
    """The first cases a search finds, most recently active first, and whether there
    are more than those."""

    ids: list[int]
    more: bool


def search_ids(session: Session, query: SearchQuery, *, limit: int | None = None) -> Matches:
    """The live cases where every phrase of ``query`` occurs (a merged case counts as the
    case it was merged into), most recently active first: at most ``limit`` of them
    (:data:`MAX_RESULTS` unless given), and whether more match.

    The work stops as soon as it has ``limit + 1`` cases, however common the words:

    1. Each phrase's hits are read from the index up to :data:`RARE`. A phrase with
       fewer leads: its cases are the candidates, the other phrases are checked on each.
    2. Every phrase is common: the :data:`WALK` most recently active cases are walked,
       each phrase checked on each. Words that occur together in many cases fill the
       page here.
    3. They did not: few cases hold them all, and walking every case would check them
       all. Instead the database intersects the cases of each phrase (two words each in
       thousands of cases but never together end here, with nothing).
    """
    limit = MAX_RESULTS if limit is None else limit
    if not query:
        return Matches([], False)
    is_postgres = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {}
    for number, phrase in enumerate(query.phrases):
        params[f"phrase_{number}"] = phrase if is_postgres else _fts_phrase(phrase)
    whole = _phrases_read_whole(session, params, is_postgres, RARE)
    if not whole:
        ids = _walk(session, params, is_postgres, limit, window=WALK)
        if len(ids) <= limit:
            ids = _intersected(session, params, is_postgres, limit)
        return Matches(ids[:limit], len(ids) > limit)
    cases = set.intersection(*whole.values())
    if not cases:
        return Matches([], False)
    tests = [_phrase_test(name, is_postgres) for name in params if name not in whole]
    statement = ("SELECT t.id FROM tickets t WHERE t.merged_into IS NULL AND t.id IN :cases"
                 + "".join(f" AND ({test})" for test in tests))
    ids = list(session.execute(
        text(statement + _NEWEST_FIRST).bindparams(bindparam("cases", expanding=True)),
        {**params, "cases": sorted(cases), "limit": limit + 1}).scalars())
    return Matches(ids[:limit], len(ids) > limit)


def _intersected(session: Session, params: dict[str, Any], is_postgres: bool,
                 limit: int) -> list[int]:
    """Up to ``limit + 1`` live cases holding every phrase: the database intersects the
    cases of each phrase (a merged case's as the case it went into)."""
    cases = [f"SELECT * FROM ({_hits(name, is_postgres).text}) AS hits_{number}"
             for number, name in enumerate(params)]
    return list(session.execute(text(
        "SELECT t.id FROM tickets t WHERE t.merged_into IS NULL AND t.id IN ("
        + " INTERSECT ".join(cases) + ")" + _NEWEST_FIRST),
        {**params, "limit": limit + 1}).scalars())


def _walk(session: Session, params: dict[str, Any], is_postgres: bool, limit: int, *,
          window: int) -> list[int]:
    """Up to ``limit + 1`` cases holding every phrase, among the ``window`` most recently
    active live cases, each phrase checked on each case."""
    tests = " AND ".join(f"({_phrase_test(name, is_postgres)})" for name in params)
    return list(session.execute(text(
        "SELECT t.id FROM (SELECT * FROM tickets WHERE merged_into IS NULL"
        f" ORDER BY updated_at DESC, id DESC LIMIT {int(window)}) t WHERE {tests}"
        + _NEWEST_FIRST), {**params, "limit": limit + 1}).scalars())


def _phrases_read_whole(session: Session, params: dict[str, Any], is_postgres: bool,
                        most: int) -> dict[str, set[int]]:
    """The cases of each phrase with fewer than ``most`` hits (messages and cases),
    by phrase; empty when every phrase has more. Each phrase's hits are read up to
    ``most``, and no further than the smallest count read whole so far."""
    whole: dict[str, set[int]] = {}
    bound = most
    for name, value in params.items():
        found = list(session.execute(text(f"{_hits(name, is_postgres).text} LIMIT {bound}"),
                                     {name: value}
                                     ).scalars())
        if len(found) < bound:
            whole[name] = set(found)
            bound = max(len(found), 1)
            if not found:
                return {name: set()}
    return whole


def _phrase_test(param: str, is_postgres: bool) -> str:
    """The phrase occurs in a message of case ``t``, in the case, or in a case merged
    into it: checked on each case. The case's own messages are found through their
    ``ticket_id`` index; on SQLite each phrase's message ids are read once from FTS5
    (``+`` keeps SQLite from looking each one up), on PostgreSQL each message's vector
    is checked (a scalar subquery, which PostgreSQL does not turn into a scan of every
    message as it would an EXISTS)."""
    if is_postgres:
        query = f"phraseto_tsquery('simple', :{param})"
        return (f"(SELECT true FROM messages m WHERE m.ticket_id = t.id"
                f" AND m.{PG_COLUMN} @@ {query} LIMIT 1)"
                f" OR t.{PG_COLUMN} @@ {query}"
                f" OR t.id IN (SELECT o.merged_into FROM tickets o"
                f" WHERE o.merged_into IS NOT NULL AND o.{PG_COLUMN} @@ {query})")
    return (f"EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id AND +m.id IN"
            f" (SELECT rowid FROM search_fts_messages WHERE search_fts_messages MATCH :{param}))"
            f" OR +t.id IN (SELECT CASE WHEN o.merged_into IS NULL THEN o.id"
            f" ELSE o.merged_into END FROM search_fts_tickets f JOIN tickets o"
            f" ON o.id = f.rowid WHERE search_fts_tickets MATCH :{param})")


def tickets_in_order(session: Session, ids: Sequence[int]) -> list[Ticket]:
    """The cases of ``ids``, in that order."""
    found = {t.id: t for t in session.execute(
        select(Ticket).where(Ticket.id.in_(ids))).scalars()}
    return [found[i] for i in ids if i in found]


def _fts_phrase(phrase: str) -> str:
    return '"' + phrase.replace('"', '""') + '"'



def _hits(param: str, is_postgres: bool) -> TextClause:
    """The cases whose messages or own text hold the phrase ``param`` names, once for each
    message or case that does (:func:`_pg_hits`, :func:`_sqlite_hits`)."""
    return _pg_hits(param) if is_postgres else _sqlite_hits(param)


def _sqlite_hits(param: str) -> TextClause:
    """The cases whose messages or own text hold the phrase, once for each message or
    case that does. A merge moves the messages to the case kept, so a message's case is
    live; a merged case's own text counts for the case it went into."""
    return text(
        "SELECT m.ticket_id FROM search_fts_messages f JOIN messages m ON m.id = f.rowid"
        f" WHERE search_fts_messages MATCH :{param} AND m.ticket_id IS NOT NULL"
        " UNION ALL SELECT CASE WHEN o.merged_into IS NULL THEN o.id ELSE o.merged_into END"
        " FROM search_fts_tickets f JOIN tickets o ON o.id = f.rowid"
        f" WHERE search_fts_tickets MATCH :{param}"
    )


def _pg_hits(param: str) -> TextClause:
    """As :func:`_sqlite_hits`, from the stored vectors."""
    return text(
        f"SELECT ticket_id FROM messages WHERE {PG_COLUMN}"
        f" @@ phraseto_tsquery('simple', :{param}) AND ticket_id IS NOT NULL"
        " UNION ALL SELECT CASE WHEN merged_into IS NULL THEN id ELSE merged_into END"
        f" FROM tickets WHERE {PG_COLUMN} @@ phraseto_tsquery('simple', :{param})"
    )


def optimise_index(session: Session) -> None:
    """Rewrite the FTS5 index so that the tokens of deleted text are gone from the file
    too, not only marked deleted (an erasure calls it). Nothing to do on PostgreSQL."""
    if session.get_bind().dialect.name == "sqlite":
        for table in ("search_fts_messages", "search_fts_tickets"):
            session.execute(text(f"INSERT INTO {table}({table}) VALUES ('optimize')"))
