"""The running parts built from the settings, handed to every command and job.

An :class:`App` holds the settings, the engine, the session factories (one for
the doors), the attachment store, the platform directory, the template
renderer, the opening hours, the outbound transport and the clock. Nothing in
mailroom reads settings or opens a database through a global: it is handed an
``App``. It is built once, at the top (:func:`mailroom.runtime.wiring.build_app`,
called by the command line and the daemon); everything below only receives
it, which is why the types of the parts built above this layer are named here
for type checking only. The entry points (a job, a console page, a command)
take the ``App`` and hand down its parts: a function below them takes only what
it reads (the settings, the time or the :data:`Clock`, the session factory or the
engine, the blob store, the opening hours, the platform directory, the renderer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailroom.hours import OpeningHours
from mailroom.platforms import Platform
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore

if TYPE_CHECKING:
    from mailroom.outbox.render import Renderer
    from mailroom.sending.transports import Transport
    from mailroom.sending.unsettled import Unsettled

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
    make_transport: Callable[[], Transport]  # the outbound transport (``outbound.url``)
    unsettled: Unsettled  # outbox results the database has not heard of yet
    clock: Clock = system_clock
    transport_override: Transport | None = None
    _transport: Transport | None = field(default=None, repr=False)

    @property
    def transport(self) -> Transport:
        """The outbound transport, built on first use."""
        if self.transport_override is not None:
            return self.transport_override
        if self._transport is None:
            self._transport = self.make_transport()
        return self._transport

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        door_engine = self.door_sessions.kw["bind"]
        if door_engine is not self.engine:
            door_engine.dispose()
        self.engine.dispose()
