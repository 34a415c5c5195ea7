"""The running parts built from the settings, passed to every command and job.

An :class:`App` owns the engine, the session factory, the attachment store,
the platform directory and the clock. Nothing in mailroom reads settings or
opens a database through a global: it is handed an ``App``.
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
from mailroom.settings import Settings
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
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
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
        self.engine.dispose()


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
