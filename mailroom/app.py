"""The running parts built from the settings, passed to every command and job.

An :class:`App` owns the engine, the session factories (one for the doors),
the attachment store, the platform directory and the clock. Nothing in
mailroom reads settings or opens a database through a global: it is handed
an ``App``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailroom.errors import ConfigError
from mailroom.hours import OpeningHours
from mailroom.outbound.render import Renderer
from mailroom.outbound.transports import Transport, transport_from_url
from mailroom.outbound.unsettled import Unsettled
from mailroom.platforms import Platform, load_platforms
from mailroom.private import log_tightened
from mailroom.settings import Settings
from mailroom.storage import secure_storage
from mailroom.store.blobs import BlobStore
from mailroom.store.db import make_engine, make_session_factory

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    door_sessions: sessionmaker[Session]  # what the doors store raw mail through
    blobs: BlobStore
    platforms: dict[str, Platform]
    renderer: Renderer
    hours: OpeningHours
    clock: Clock = system_clock
    transport_override: Transport | None = None
    unsettled: Unsettled = field(default_factory=Unsettled)  # outbox results not yet written
    _transport: Transport | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, clock: Clock = system_clock) -> App:
        log_tightened(secure_storage(settings))  # var/ and the database: owner only
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            door_sessions=door_session_factory(settings, sessions),
            blobs=BlobStore(settings.attachments_dir),
            platforms=read_platforms(settings),
            renderer=Renderer(settings.templates_dir, tz=settings.timezone),
            hours=opening_hours(settings),
            clock=clock,
        )

    @property
    def transport(self) -> Transport:
        """The outbound transport, built on first use (``outbound.url``)."""
        if self.transport_override is not None:
            return self.transport_override
        if self._transport is None:
            try:
                self._transport = transport_from_url(self.settings.outbound_url)
            except ValueError as exc:
                raise ConfigError([f"outbound.url: {exc}"]) from None
        return self._transport

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        door_engine = self.door_sessions.kw["bind"]
        if door_engine is not self.engine:
            door_engine.dispose()
        self.engine.dispose()


def door_session_factory(settings: Settings,
                         sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for the doors' :func:`~mailroom.inbox.store_raw`.

    On PostgreSQL an engine of their own without the pool's pre-ping: the
    SMTP door stores every message on a checked-out connection, and the
    ``SELECT 1`` before each costs the door about 7 % of its rate. A pooled
    connection a restarted server has dropped fails on use instead, and
    ``store_raw`` tries once more on a fresh one. On SQLite (no pre-ping
    there) the app's own sessions serve.
    """
    engine = sessions.kw["bind"]
    if engine.dialect.name == "sqlite":
        return sessions
    return make_session_factory(make_engine(settings.database_url, pool_pre_ping=False))


def opening_hours(settings: Settings) -> OpeningHours:
    try:
        return OpeningHours(tz=settings.timezone, days=settings.opening_days,
                            opens=settings.opens, closes=settings.closes,
                            holidays=settings.holidays)
    except ValueError as exc:
        raise ConfigError([f"helpline: {exc}"]) from None


def read_platforms(settings: Settings) -> dict[str, Platform]:
    """Load and validate the platform directory; ConfigError names each bad key."""
    path = settings.platforms_path
    if not path.is_file():
        raise ConfigError([f"paths.platforms: no such file {path}"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"paths.platforms: {path} is not valid TOML: {exc}"]) from None
    platforms, problems = load_platforms(data)
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return platforms
