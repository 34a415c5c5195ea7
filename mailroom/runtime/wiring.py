"""Building the App, at the top: every part from the settings.

:func:`build_app` is what the command line and the daemon call; tests call it
too. It tightens what mailroom keeps on disk (:mod:`mailroom.runtime.storage`),
opens the database, reads the platform directory and the templates, and
gives the App the way to its outbound transport (built on first use, so a
command that sends nothing never needs it).
"""

from __future__ import annotations

import tomllib
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from mailroom.app import App, Clock, system_clock
from mailroom.cases.commands import command_help
from mailroom.errors import ConfigError
from mailroom.hours import OpeningHours
from mailroom.outbox.render import Renderer
from mailroom.platforms import Platform, load_platforms
from mailroom.private import log_tightened
from mailroom.runtime.storage import secure_storage
from mailroom.sending.transports import Transport, transport_from_url
from mailroom.sending.unsettled import Unsettled
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.db import make_engine, make_session_factory


def build_app(settings: Settings, clock: Clock = system_clock) -> App:
    log_tightened(secure_storage(settings))  # var/ and the database: owner only
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    return App(
        settings=settings,
        engine=engine,
        sessions=sessions,
        door_sessions=door_session_factory(settings, sessions),
        blobs=BlobStore(settings.attachments_dir),
        platforms=read_platforms(settings),
        renderer=Renderer(settings.template_dirs, tz=settings.timezone,
                          globals=template_globals()),
        hours=opening_hours(settings),
        make_transport=partial(outbound_transport, settings.outbound_url),
        unsettled=Unsettled(),
        clock=clock,
    )


def template_globals() -> dict[str, object]:
    """What every template may read besides its context: the command help, generated
    from the command units so that the help practitioners get cannot drift."""
    return {"command_help": command_help()}


def outbound_transport(url: str) -> Transport:
    try:
        return transport_from_url(url)
    except ValueError as exc:
        raise ConfigError([f"outbound.url: {exc}"]) from None


def door_session_factory(settings: Settings,
                         sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions for the doors' :func:`~mailroom.store.inbox.store_raw`.

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
