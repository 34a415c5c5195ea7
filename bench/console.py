"""The staff console over a large history: how long its pages take at 100,000 messages.

The history is bulk-loaded as for the history test (:mod:`bench.history`: 100,000
inbound messages in about 47,600 cases, with their acknowledgements and
notifications), which also fills the search index through its triggers (SQLite) or
generated columns (PostgreSQL). A signed-in practitioner's session is made directly,
and each page is fetched in-process through the ASGI app (Starlette's test client):
what is measured is the page's own work, the database's above all, without a network.

Each page is fetched :data:`WARM_UP` times unmeasured, then :data:`REPEATS` times;
its median and p95 are kept. Beside it, the page's main queries are run directly
through the engine, the same number of times: the same functions the page calls
(:func:`mailroom.web.cases.queue_rows`, :func:`mailroom.store.search.search_ids`,
:func:`mailroom.web.cases.case_rows`), in a session of their own, so the difference
is what the page adds (the guard, the session and audit writes, the template).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bench.history import seed_thread
from bench.smtp_load import percentile
from mailroom.app import App
from mailroom.cases.tickets import ticket_by_reference
from mailroom.sending.sender import send_due
from mailroom.store.search import SearchQuery, search_ids, tickets_in_order
from mailroom.web.auth import open_session
from mailroom.web.cases import PAGE_SIZE, QueueView, case_rows, queue_rows
from mailroom.web.console import build_console
from mailroom.web.context import SESSION_COOKIE
from mailroom.web.staff import find_staff

WARM_UP = 2
REPEATS = 20
PRACTITIONER = "anna@helpline.example"
# p95 server time a page may take (seconds), by kind of page.
TARGETS = {"queue": 0.100, "search": 0.200, "case": 0.150}


@dataclass(frozen=True)
class PageTime:
    name: str
    kind: str
    path: str
    status: int
    median: float
    p95: float
    direct_median: float
    direct_p95: float

    @property
    def target(self) -> float:
        return TARGETS[self.kind]


def pages(messages_seeded: int) -> list[tuple[str, str, str]]:
    """The pages measured (name, kind, path); the cases and words are of the history."""
    case = "HL-000500"
    address = seed_thread(777).requester
    last = max(1, messages_seeded // 2 // PAGE_SIZE)
    return [
        ("queue (open and waiting)", "queue", "/"),
        ("queue, closed, oldest first, deep page", "queue",
         f"/?status=closed&sort=created&order=asc&page={min(last, 400)}"),
        ("queue filtered by platform", "queue", "/?status=&platform=tiktok"),
        ("search a reported URL", "search", "/search?q=tiktok.com/@fake1234"),
        ("search an address", "search", f"/search?q={address}"),
        ("search a reference", "search", f"/search?q={case}"),
        ("search common words", "search", "/search?q=account+still+up"),
        # each in a sixth of the cases (their subjects), never in the same one
        ("search two words never together", "search", "/search?q=impersonating+bullying"),
        ("a case's timeline", "case", f"/cases/{case}"),
    ]


def direct_query(app: App, kind: str, path: str) -> Callable[[Session], object]:
    """The queries the page at ``path`` runs, as a function of a session."""
    parts = urlsplit(path)
    args = dict(parse_qsl(parts.query, keep_blank_values=True))
    if kind == "queue":
        number = args.get("page", "1")
        view = QueueView(status=args.get("status", "open,waiting"),
                         category=args.get("category", ""),
                         platform=args.get("platform", ""), assignee=args.get("assignee", ""),
                         sort=args.get("sort", "activity"),
                         order="asc" if args.get("order") == "asc" else "desc",
                         number=int(number))
        return lambda session: queue_rows(session, app.settings, app.platforms, PRACTITIONER, view)
    if kind == "search":
        query = SearchQuery.parse(args["q"])
        return lambda session: tickets_in_order(session,
                                                search_ids(session, query).ids[:PAGE_SIZE])

    reference = parts.path.rsplit("/", 1)[-1]

    def case(session: Session) -> object:
        ticket = ticket_by_reference(session, reference)
        assert ticket is not None, reference
        return case_rows(session, ticket)

    return case


def signed_in_client(app: App) -> TestClient:
    with app.sessions.begin() as session:
        staff = find_staff(app.settings, session, PRACTITIONER)
        assert staff is not None, "the bench's practitioner is not configured"
        token = open_session(app.settings, session, staff, client="bench", now=app.now())
    def send_now() -> None:
        send_due(app)

    client = TestClient(build_console(app, "http://bench", on_queued=send_now),
                        base_url="http://bench", follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token)
    return client


def _times(run: Callable[[], object]) -> list[float]:
    for _ in range(WARM_UP):
        run()
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return sorted(times)


def time_pages(app: App, messages_seeded: int) -> list[PageTime]:
    client = signed_in_client(app)
    results = []
    with client:
        for name, kind, path in pages(messages_seeded):
            status = client.get(path).status_code
            fetched = _times(lambda path=path: client.get(path))  # type: ignore[misc]
            query = direct_query(app, kind, path)

            def direct(query: Callable[[Session], object] = query) -> object:
                with app.sessions() as session:
                    return query(session)

            direct_times = _times(direct)
            results.append(PageTime(
                name, kind, path, status, statistics.median(fetched), percentile(fetched, 0.95),
                statistics.median(direct_times), percentile(direct_times, 0.95)))
    return results
