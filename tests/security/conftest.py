"""Every attack runs against a running helpline, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.factories import FixedClock
from tests.security.helpline import Helpline


@pytest.fixture
def clock() -> FixedClock:
    """Today (the scheduler runs in real time), a clock a test may move forward."""
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def start_helpline(make_app, clock):  # type: ignore[no-untyped-def]
    """Start a helpline with extra settings sections; stopped at the end of the test."""
    running: list[Helpline] = []

    def start(**sections):  # type: ignore[no-untyped-def]
        sections.setdefault("smtp", {})["listen"] = "127.0.0.1:0"
        helpline = Helpline(make_app(clock=clock, **sections))
        running.append(helpline)
        return helpline

    yield start
    for helpline in running:
        helpline.stop()


@pytest.fixture
def helpline(start_helpline) -> Iterator[Helpline]:  # type: ignore[no-untyped-def]
    yield start_helpline()
