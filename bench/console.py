"""The staff console over a large history: how long its pages take at 100,000 messages.

The history is bulk-loaded as for the history test (:mod:`bench.history`: about
100,000 inbound messages, their acknowledgements and notifications, ~60,000
cases), which also fills the search index through its triggers (SQLite) or GIN
indexes (PostgreSQL). A signed-in practitioner's session is made directly, and
each page is fetched in-process through the ASGI app (Starlette's test client):
what is measured is the page's own work, the database's above all, without a
network. Each page is fetched :data:`REPEATS` times; the first fetch warms the
caches and is left out.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.sending.sender import send_due
from mailroom.web.auth import open_session
from mailroom.web.console import build_console
from mailroom.web.context import SESSION_COOKIE
from mailroom.web.staff import find_staff

REPEATS = 11
PRACTITIONER = "anna@helpline.example"


@dataclass(frozen=True)
class PageTime:
    name: str
    path: str
    median: float
    slowest: float
    status: int


def pages(messages_seeded: int) -> list[tuple[str, str]]:
    """The pages measured; the case and the words are of cases the history holds."""
    case = "HL-000500"
    last = max(1, messages_seeded // 2 // 50)
    return [
        ("queue (open and waiting)", "/"),
        ("queue, closed, oldest first, deep page",
         f"/?status=closed&sort=created&order=asc&page={min(last, 400)}"),
        ("queue filtered by platform", "/?status=&platform=tiktok"),
        ("search a reported URL", "/search?q=tiktok.com/@fake1234"),
        ("search an address", "/search?q=person777@gmail.com"),
        ("search a reference", f"/search?q={case}"),
        ("search common words", "/search?q=account+still+up"),
        ("a case's timeline", f"/cases/{case}"),
    ]


def signed_in_client(app: App) -> TestClient:
    with app.sessions.begin() as session:
        staff = find_staff(app, session, PRACTITIONER)
        assert staff is not None, "the bench's practitioner is not configured"
        token = open_session(app, session, staff, client="bench")
    def send_now() -> None:
        send_due(app)

    client = TestClient(build_console(app, "http://bench", on_queued=send_now),
                        base_url="http://bench", follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token)
    return client


def time_pages(app: App, messages_seeded: int) -> list[PageTime]:
    client = signed_in_client(app)
    results = []
    with client:
        for name, path in pages(messages_seeded):
            times, status = [], 0
            for _ in range(REPEATS):
                began = time.perf_counter()
                answer = client.get(path)
                times.append(time.perf_counter() - began)
                status = answer.status_code
            kept = times[1:]
            results.append(PageTime(name, path, statistics.median(kept), max(kept), status))
    return results
