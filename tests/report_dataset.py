"""A case history with known statistics over two years, written through the ORM.

:func:`load_dataset` creates tickets and escalations with chosen dates,
categories, roles, platforms and response times; :data:`EXPECTED` holds the
figures a report for Q1 2025 (against Q1 2024) must show, counted by hand
from the groups below, not computed by the code under test.

Every case opens at 10:00 London time on a business day unless it says
otherwise, and its first response comes a whole number of *business* hours
later (computed with the helpline's opening hours, Monday–Friday 10:00–16:00),
so medians are exact. Edge cases: a case opened on a Saturday (business time
starts on Monday), the last evening of the quarter after the switch to summer
time (in), the first minutes of the next quarter (out, although still
31 March in UTC), a merged duplicate (out), cases outside both periods (out),
an escalation of the quarter on a case of the previous year (in).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailroom.app import App
from mailroom.cli.main import main
from mailroom.reports.cases import case_report
from mailroom.reports.data import Period, Report
from mailroom.reports.formats import json_data
from mailroom.runtime.wiring import build_app
from mailroom.store.db import make_engine
from mailroom.store.migrate import upgrade
from mailroom.store.models import Escalation, Message, Ticket
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import FixedClock, build_settings

LONDON = ZoneInfo("Europe/London")
PERIOD = (date(2025, 1, 1), date(2025, 3, 31))
OUTSIDE = datetime(2022, 6, 1, 10, tzinfo=LONDON)  # cases that carry the escalations
_ids = itertools.count(1)


def local(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


@dataclass(frozen=True)
class Group:
    """``count`` cases opened on business days from ``first`` (or exactly at ``first``)."""

    count: int
    first: datetime
    category: str | None
    role: str | None
    platforms: tuple[str, ...] = ()
    response_hours: float | None = None  # business hours to the first response
    spread: bool = True  # one business day apart; False: all at ``first``
    merged: bool = False
    # each case's messages: ("in", h) a professional wrote, ("out", h) an answer relayed
    # to them, h business hours after the case opened
    conversation: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Escalated:
    platform: str
    opened: datetime
    answer_hours: float | None = None  # business hours to the platform's answer
    outcome: str | None = None
    case_opened: datetime | None = None  # default: OUTSIDE both periods
    case_status: str = "closed"
    contacts: int = 0  # messages the professional wrote into its case, when it opened


GROUPS: tuple[Group, ...] = (
    # --- Q1 2025: 25 cases -------------------------------------------------
    Group(3, local(2025, 1, 6), "bullying", "teacher", ("tiktok",), 1),
    Group(2, local(2025, 1, 11, 12), "impersonation", "police", ("instagram",), 2,
          spread=False),  # a Saturday: 2 business hours = Monday 12:00
    Group(4, local(2025, 2, 3), "bullying", "teacher", ("tiktok", "instagram"), 3),
    Group(4, local(2025, 2, 10), "sexting", "social_worker", ("snapchat",), 4,
          conversation=(("in", 0), ("out", 4), ("in", 6), ("out", 8))),  # next answer: 2 h
    Group(6, local(2025, 3, 3), "impersonation", "teacher", (), 5,
          conversation=(("in", 0), ("out", 5), ("in", 7), ("out", 30))),  # next: 23 h

    Group(3, local(2025, 3, 17), "bullying", "police", ("tiktok",), None),
    Group(2, local(2025, 3, 24), None, None, (), 30),
    Group(1, local(2025, 3, 31, 23, 30), "bullying", "teacher", (), 0.5, spread=False),
    # --- Q1 2024: 20 cases -------------------------------------------------
    Group(4, local(2024, 1, 8), "bullying", "teacher", ("tiktok",), 2,
          conversation=(("in", 0), ("out", 2))),
    Group(6, local(2024, 2, 5), "impersonation", "police", ("instagram",), 2),
    Group(10, local(2024, 3, 4), "sexting", "teacher", ("snapchat",), 2),
    # --- outside both periods, or not counted --------------------------------
    Group(1, local(2025, 4, 1, 0, 30), "bullying", "teacher", ("tiktok",), 1, spread=False),
    Group(1, datetime(2024, 12, 31, 23, 59, tzinfo=UTC), "threats", "police", (), 1,
          spread=False),
    Group(1, local(2024, 4, 1, 0, 5), "threats", "police", (), 1, spread=False),
    Group(1, local(2023, 12, 31, 23), "threats", "police", (), 1, spread=False),
    Group(3, local(2024, 6, 3), "privacy", "health", ("youtube",), 1),
    Group(1, local(2025, 2, 12), "bullying", "teacher", ("tiktok",), 1, merged=True),
)

ESCALATIONS: tuple[Escalated, ...] = (
    # tiktok: 4 opened, 3 answered (2, 4, 6 h), removed 2, declined 1, 1 awaiting
    Escalated("tiktok", local(2025, 1, 7), 2, "removed", case_opened=local(2024, 12, 20)),
    Escalated("tiktok", local(2025, 2, 4), 4, "removed"),
    Escalated("tiktok", local(2025, 2, 18), 6, "declined"),
    Escalated("tiktok", local(2025, 3, 18)),
    # instagram: 2 opened, 2 answered (1, 3 h), removed 1, restricted 1
    Escalated("instagram", local(2025, 1, 13), 1, "removed"),
    Escalated("instagram", local(2025, 2, 5), 3, "restricted"),
    # snapchat: 1 opened, unanswered
    Escalated("snapchat", local(2025, 2, 11)),
    # a case set aside as spam in the quarter: neither its case, nor its escalation, nor
    # its two messages count anywhere but in set_aside
    Escalated("snapchat", local(2025, 2, 20), 1, "removed", case_opened=local(2025, 2, 19),
              case_status="spam", contacts=2),
    # outside the period
    Escalated("tiktok", local(2024, 2, 6), 1, "removed"),
    Escalated("youtube", local(2025, 4, 2), 1, "no_action"),
)

EXPECTED = {
    "cases": 25,
    "previous": 20,
    "change": 5,
    "change_percent": 25.0,
    "sentence": "25% more than the same quarter last year",
    "by_month": [("2025-01", 5, 4), ("2025-02", 8, 6), ("2025-03", 12, 10)],
    "by_category": {"bullying": 11, "impersonation": 8, "sexting": 4, "uncategorised": 2},
    "by_role": {"teacher": 14, "police": 5, "social_worker": 4, "unknown": 2},
    "by_platform": {"tiktok": 10, "instagram": 6, "snapchat": 4},
    # 22 answered: 0.5, 1×3, 2×2, 3×4, 4×4, 5×6, 30×2 -> 11th and 12th are 4 and 4
    "answered": 22,
    "median_response_hours": 4.0,
    "escalations": {
        "tiktok": {"opened": 4, "answered": 3, "median": 4.0,
                   "outcomes": {"removed": 2, "declined": 1}, "removal_rate": 2 / 3},
        "instagram": {"opened": 2, "answered": 2, "median": 2.0,
                      "outcomes": {"removed": 1, "restricted": 1}, "removal_rate": 0.5},
        "snapchat": {"opened": 1, "answered": 0, "median": None, "outcomes": {},
                     "removal_rate": None},
    },
    "escalation_total": {"opened": 7, "answered": 5, "median": 3.0,
                         "outcomes": {"removed": 3, "restricted": 1, "declined": 1},
                         "removal_rate": 0.6},
    # unanswered and undecided: tiktok's fourth, snapchat's only
    "no_response": {"tiktok": 1, "instagram": 0, "snapchat": 1, "all": 2},
    # last year's breakdowns (Q1 2024)
    "previous_by_category": {"sexting": 10, "impersonation": 6, "bullying": 4},
    "previous_by_role": {"teacher": 14, "police": 6},
    "previous_by_platform": {"snapchat": 10, "instagram": 6, "tiktok": 4},
    # 4 sexting cases × 2 messages + 6 impersonation cases × 2; a year before 4 × 1
    "contacts": 20,
    "previous_contacts": 4,
    # first answers due in 8 business hours: 20 within; 30 h ×2 and 3 never answered missed
    "first_sla": (20, 5, 0),
    # next answers due in 16 business hours: 4 in 2 h (met), 6 in 23 h (missed)
    "next_sla": (4, 6, 0),
    "set_aside": {"spam": 1, "out_of_remit": 0, "test": 0},
    # escalations per platform, and in Q1 2024 (tiktok's of 6 February 2024)
    "escalations_by_platform": {"tiktok": 4, "instagram": 2, "snapchat": 1},
    "previous_escalations_by_platform": {"tiktok": 1},
    # no case of either quarter was escalated; 3 of 2025 were never answered
    "handling": {"advice_only": 22, "escalated": 0, "not_answered": 3},
    "previous_handling": {"advice_only": 20},
}


def load_dataset(app: App) -> None:
    """Write every group and escalation; commits."""
    with app.sessions.begin() as session:
        keep = Ticket(reference="DS-KEEP", status="closed", subject="kept after a merge",
                      created_at=OUTSIDE, updated_at=OUTSIDE, flags=[])
        session.add(keep)
        session.flush()
        for group in GROUPS:
            session.add_all(_tickets(app, group, keep.id))
        session.add_all(_escalation(app, item) for item in ESCALATIONS)


def _tickets(app: App, group: Group, keep_id: int) -> list[Ticket]:
    merged_into = keep_id if group.merged else None
    return [_ticket(app, group, opened, merged_into) for opened in _opening_days(app, group)]


def _opening_days(app: App, group: Group) -> list[datetime]:
    if not group.spread:
        return [group.first] * group.count
    out, day = [], group.first.date()
    while len(out) < group.count:
        if app.hours.is_business_day(day):
            out.append(datetime.combine(day, group.first.time(), tzinfo=LONDON))
        day += timedelta(days=1)
    return out


def _ticket(app: App, group: Group, opened: datetime, merged_into: int | None) -> Ticket:
    number = next(_ids)
    first = None
    if group.response_hours is not None:
        first = app.hours.add_business_hours(opened, group.response_hours)
    ticket = Ticket(
        reference=f"DS-{number:06d}", status="closed", subject=f"Dataset case {number}",
        category=group.category, role=group.role, platforms=list(group.platforms),
        requester=f"professional{number}@school.example", created_at=opened,
        updated_at=opened, first_response_at=first, closed_at=opened + timedelta(days=20),
        flags=[], merged_into=merged_into,
    )
    ticket.messages = [_message(app.hours.add_business_hours(opened, hours), way == "in")
                       for way, hours in group.conversation]
    return ticket


def _message(at: datetime, inbound: bool) -> Message:
    """A professional's message into a case, or an answer relayed to them."""
    return Message(
        direction="in" if inbound else "out", kind="requester" if inbound else "relay",
        sender="professional@school.example" if inbound else "helpline@helpline.example",
        message_id=f"<ds-{next(_ids)}@dataset.example>", subject="Dataset", text="",
        recipients={}, urls=[], flags=[], created_at=at, date=at,
    )


def _escalation(app: App, item: Escalated) -> Escalation:
    opened_case = item.case_opened or OUTSIDE
    ticket = Ticket(reference=f"DS-E{next(_ids):05d}", status=item.case_status,
                    subject="escalated", category="impersonation", created_at=opened_case,
                    updated_at=opened_case, flags=[])
    ticket.messages = [_message(opened_case, True) for _ in range(item.contacts)]
    answered = None
    if item.answer_hours is not None:
        answered = app.hours.add_business_hours(item.opened, item.answer_hours)
    return Escalation(
        ticket=ticket, platform=item.platform, opened_at=item.opened, responded_at=answered,
        outcome=item.outcome, status="responded" if answered else "sent",
        urls=[f"https://{item.platform}.example/post/1"], follow_ups=0,
    )


def report_period() -> Period:
    return Period(*PERIOD)


def comparable(report: Report) -> dict[str, Any]:
    """The report's figures without the moment it was generated (for before/after)."""
    data = json_data(case_report(report))
    data.pop("generated_at")
    return data


def run_cli(argv: list[str]) -> int:
    """``mailroom ARGV`` through :func:`mailroom.cli.main.main`, in this process."""
    return main(argv)


@contextlib.contextmanager
def dataset_on(backend: str, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """An App on its own new database (``sqlite`` or ``postgresql``) holding the dataset."""
    directory = tmp_path_factory.mktemp(f"report-{backend}")
    if backend == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), directory / "mailroom.db")
        url = f"sqlite:///{directory / 'mailroom.db'}"
    else:
        url = create_pg_database()
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    app = build_app(build_settings(directory, url), clock=FixedClock())
    try:
        load_dataset(app)
        yield app
    finally:
        app.close()
        if backend == "postgresql":
            drop_pg_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dataset_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    """The dataset on each database, shared by a module's read-only tests."""
    with dataset_on(request.param, request, tmp_path_factory) as app:
        yield app
