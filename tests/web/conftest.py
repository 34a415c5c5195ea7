"""Fixtures of the console's tests: a helpline at a clock the test moves, and a visitor
who has not signed in. A test module that needs another helpline (other settings) or a
signed-in visitor defines its own ``app`` or ``client``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mailroom.app import App
from tests.factories import FixedClock
from tests.web.console import browser


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def app(make_app, clock):  # type: ignore[no-untyped-def]
    return make_app(clock=clock)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with browser(app) as c:
        yield c
