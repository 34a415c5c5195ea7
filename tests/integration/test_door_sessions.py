"""The doors store mail through sessions of their own: on PostgreSQL an engine
without the pool's pre-ping, where ``store_raw`` tries a stale connection's
work once more on a fresh one. Real servers, real terminated backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext, make_url

from mailroom.errors import StoreUnavailable
from mailroom.store.inbox import store_raw
from tests.factories import inbox_rows, mail
from tests.pg_server import pg_admin


def end_backends(pg_url: str) -> None:
    """What a restarted server does to the pooled connections: end every one."""
    pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          f"WHERE datname = '{make_url(pg_url).database}' AND pid <> pg_backend_pid()")


@contextmanager
def refusing_connections(pg_url: str) -> Iterator[None]:
    database = make_url(pg_url).database
    pg_admin(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
    try:
        end_backends(pg_url)
        yield
    finally:
        pg_admin(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')


@contextmanager
def failures(engine: Engine) -> Iterator[list[str]]:
    """The first line of every database error ``engine`` meets meanwhile."""
    seen: list[str] = []

    def record(context: ExceptionContext) -> None:
        seen.append(str(context.original_exception).splitlines()[0])

    event.listen(engine, "handle_error", record)
    try:
        yield seen
    finally:
        event.remove(engine, "handle_error", record)


def test_a_connection_the_server_ended_is_replaced_without_a_failure(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str
) -> None:
    app = make_pg_app()
    door_engine = app.door_sessions.kw["bind"]
    assert door_engine is not app.engine
    first = store_raw(app.door_sessions, mail(message_id="before@school.example"), door="smtp")
    assert door_engine.pool.checkedin() == 1  # the connection the next message would use
    end_backends(pg_url)
    with failures(door_engine) as seen:
        after = store_raw(app.door_sessions, mail(message_id="after@school.example"),
                          door="smtp")
    assert len(seen) == 1, seen  # the stale connection, met once and replaced
    assert not after.duplicate
    rows = inbox_rows(app)
    assert [(r.id, r.dedup_key) for r in rows] == [
        (first.inbox_id, "mid:before@school.example"),
        (after.inbox_id, "mid:after@school.example")]
    app.close()
    assert door_engine.pool.checkedin() == 0


def test_a_retry_of_a_message_already_stored_finds_its_row(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str
) -> None:
    app = make_pg_app()
    raw = mail(message_id="twice@school.example")
    first = store_raw(app.door_sessions, raw, door="smtp")
    end_backends(pg_url)
    with failures(app.door_sessions.kw["bind"]) as seen:
        again = store_raw(app.door_sessions, raw, door="smtp")
    assert len(seen) == 1, seen
    assert again.duplicate and again.inbox_id == first.inbox_id
    assert [r.dedup_key for r in inbox_rows(app)] == ["mid:twice@school.example"]


def test_a_database_refusing_connections_is_unavailable_after_one_retry(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str
) -> None:
    app = make_pg_app()
    store_raw(app.door_sessions, mail(message_id="before@school.example"), door="smtp")
    raw = mail(message_id="during@school.example")
    with refusing_connections(pg_url):
        with failures(app.door_sessions.kw["bind"]) as seen, \
                pytest.raises(StoreUnavailable, match="not currently accepting connections"):
            store_raw(app.door_sessions, raw, door="smtp")
        assert len(seen) == 2, seen  # the stale connection, then the one refused
        with failures(app.door_sessions.kw["bind"]) as seen, pytest.raises(StoreUnavailable):
            store_raw(app.door_sessions, raw, door="smtp")
        assert len(seen) == 1, seen  # refused at once: nothing stale left to retry
    stored = store_raw(app.door_sessions, raw, door="smtp")
    assert not stored.duplicate
    assert [r.dedup_key for r in inbox_rows(app)] == ["mid:before@school.example",
                                                      "mid:during@school.example"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_doors_share_the_app_sessions(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    assert app.door_sessions is app.sessions
    raw = mail(message_id="lite@school.example")
    first = store_raw(app.door_sessions, raw, door="smtp")
    again = store_raw(app.door_sessions, raw, door="smtp")
    assert (first.duplicate, again.duplicate, again.inbox_id) == (False, True, first.inbox_id)
    assert [r.dedup_key for r in inbox_rows(app)] == ["mid:lite@school.example"]
