"""Case statistics for a period (SPEC section 9), as a plain :class:`Report`.

A period is two local dates, both inclusive, in the helpline's time zone:
``2025-01-01`` to ``2025-03-31`` runs from midnight on 1 January to midnight
at the end of 31 March, Europe/London time, whatever the UTC offset of the
day. Each figure is compared with the same dates a year earlier (29 February
becomes 28 February), the form in which helplines publish ("24% more than the
same quarter last year").

What is counted (docs/reports-and-data-protection.md says it for readers):

- **cases opened**: tickets created in the period, not merged into another
  (a merged ticket is a duplicate of the case it joined) and not set aside as
  spam or out of remit (``vocabulary.SET_ASIDE``): those are counted apart
  (``set_aside``), and left out of every other figure, their messages and
  escalations included;
- **by month, category, professional role, platform** (:class:`Breakdown`):
  the same tickets, and those of the same dates a year before;
  a case naming two platforms counts once under each, a case naming none
  counts under none (so the platform counts need not add up to the total);
  a case with no category or role counts as ``uncategorised`` / ``unknown``;
- **advice only and escalated** (``handling``): the same tickets, escalated
  (at least one escalation), answered without one, or neither;
- **contacts**: messages professionals wrote into cases (``Speaker.REQUESTER``)
  that arrived in the period, every one, against the same dates a year before;
- **time to first response**: business hours (opening hours, holidays
  excluded) from creation to the first answer relayed to the requester, for
  the cases of the period that have one; the median is reported;
- **answers within target** (:class:`Compliances`): the first answer of each
  case of the period, and each next answer whose clock started in the
  period, against the target of the case's priority (``cases.sla``);
- **escalations**, per platform: escalations opened in the period (whatever
  the age of their case), how many a platform answered, the median business
  hours to that first answer, their outcomes, those with no response, and
  each outcome's rate over the decided ones (:class:`EscalationRow`).
- **accounts reported in more than one case**, per platform: accounts
  (:mod:`mailroom.intake.accounts`) that requesters' messages of the period
  reported in two or more live cases, and how many cases those were. Only
  counts are in the report; the accounts themselves are listed only when asked
  (``mailroom report --with-accounts``), for the helpline's own use.

Only ticket, message and escalation rows are read (dates, category, role,
platforms, priority, outcomes, a message's direction, kind and time), never
texts, so these figures survive retention and erasure. The repeat reports
come from ``message_targets``, which retention and erasure remove with the
messages: a purged case no longer counts there.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Text, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.cases.participants import PENDING_SENDER
from mailroom.cases.sla import response_hours
from mailroom.hours import OpeningHours
from mailroom.settings import Settings
from mailroom.store.models import Escalation, Message, MessageTarget, Ticket
from mailroom.vocabulary import (
    SET_ASIDE,
    Direction,
    EscalationOutcome,
    OutboxKind,
    Speaker,
    TicketPriority,
)

__all__ = [
    "HANDLING",
    "OUTCOMES",
    "Breakdown",
    "Change",
    "Compliance",
    "Compliances",
    "EscalationRow",
    "MonthRow",
    "Period",
    "RepeatRow",
    "RepeatedAccount",
    "Report",
    "ResponseTimes",
    "build_report",
]

OUTCOMES = tuple(EscalationOutcome)  # in the order the report shows them
ADVICE_ONLY, ESCALATED, NOT_ANSWERED = "advice_only", "escalated", "not_answered"
HANDLING = (ADVICE_ONLY, ESCALATED, NOT_ANSWERED)
UNCATEGORISED = "uncategorised"
UNKNOWN_ROLE = "unknown"
_HOUR = 3600.0


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` to ``end``, both inclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    def year_before(self) -> Period:
        return Period(_year_before(self.start), _year_before(self.end))

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight to the local midnight after ``end``."""
        first = datetime.combine(self.start, time(0), tzinfo=tz)
        after = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=tz)
        return first.astimezone(UTC), after.astimezone(UTC)

    def months(self) -> list[str]:
        """``YYYY-MM`` of every month the period touches, in order."""
        year, month, out = self.start.year, self.start.month, []
        while (year, month) <= (self.end.year, self.end.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def kind(self) -> str:
        """``year``, ``quarter``, ``month`` or ``period``: how to name it in a sentence."""
        starts_month = self.start.day == 1
        ends_month = (self.end + timedelta(days=1)).day == 1
        if not (starts_month and ends_month):
            return "period"
        span = len(self.months())
        if span == 12 and self.start.month == 1:
            return "year"
        if span == 3 and self.start.month in (1, 4, 7, 10):
            return "quarter"
        return "month" if span == 1 else "period"

    def label(self) -> str:
        return f"{_long(self.start)} to {_long(self.end)}"


@dataclass(frozen=True)
class Change:
    """A count this period against the same period a year before."""

    current: int
    previous: int

    @property
    def absolute(self) -> int:
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        """Change in percent of last year's count; None when last year had none."""
        if self.previous == 0:
            return None
        return 100.0 * self.absolute / self.previous

    def sentence(self, kind: str = "period") -> str:
        """``24% more than the same quarter last year`` (rounded half up)."""
        same = f"the same {kind} last year"
        if self.percent is None:
            return f"none in {same} to compare with"
        if self.absolute == 0:
            return f"the same number as {same}"
        rounded = int(abs(self.percent) + 0.5)
        if rounded == 0:
            return f"about the same as {same}"
        return f"{rounded}% {'more' if self.absolute > 0 else 'fewer'} than {same}"

    def phrase(self) -> str:
        """The sentence without its comparison, for a row of a table: ``24% more``,
        ``20% fewer``, ``the same``, ``about the same``, ``none a year before``, ``none
        either year``."""
        if self.percent is None:
            return "none a year before" if self.current else "none either year"
        if self.absolute == 0:
            return "the same"
        rounded = int(abs(self.percent) + 0.5)
        if rounded == 0:
            return "about the same"
        return f"{rounded}% {'more' if self.absolute > 0 else 'fewer'}"


@dataclass(frozen=True)
class MonthRow:
    month: str  # YYYY-MM
    cases: int
    previous: int  # the same month a year before, within the previous period

    @property
    def change(self) -> Change:
        return Change(self.cases, self.previous)


@dataclass(frozen=True)
class Breakdown:
    """Cases by one key (a category, a role, a platform, how they were handled), this
    period and the same dates a year before: largest first, then last year's largest,
    so a key of last year with no case this period still shows (0, 100% fewer)."""

    current: dict[str, int]
    previous: dict[str, int]

    def ranked(self) -> list[str]:
        keys = {*self.current, *self.previous}
        return sorted(keys, key=lambda k: (-self.current.get(k, 0),
                                           -self.previous.get(k, 0), k))

    def change(self, key: str) -> Change:
        return Change(self.current.get(key, 0), self.previous.get(key, 0))


@dataclass(frozen=True)
class ResponseTimes:
    """First responses to the cases of the period."""

    cases: int
    answered: int
    median_hours: float | None  # business hours

    @property
    def unanswered(self) -> int:
        return self.cases - self.answered


@dataclass(frozen=True)
class EscalationRow:
    """Escalations to one platform (or ``all``) opened in the period.

    Each escalation is in one of three states: **decided** (an outcome is recorded,
    whether or not the platform wrote back), **awaiting outcome** (the platform
    answered, no outcome yet) or **no response** (no answer from the platform and no
    outcome). Rates of outcomes are over decided escalations only: an escalation a
    platform never answered is no removal, and no refusal either."""

    platform: str
    name: str
    opened: int
    answered: int  # the platform answered at all
    median_answer_hours: float | None  # business hours to the platform's first answer
    outcomes: dict[str, int] = field(default_factory=dict)
    no_response: int = 0  # no answer from the platform, no outcome recorded

    @property
    def with_outcome(self) -> int:
        return sum(self.outcomes.values())

    @property
    def decided(self) -> int:
        return self.with_outcome

    def outcome_rate(self, outcome: str) -> float | None:
        """``outcome`` over decided escalations; None when none is decided yet."""
        if not self.decided:
            return None
        return self.outcomes.get(outcome, 0) / self.decided

    @property
    def removal_rate(self) -> float | None:
        """Removed over decided escalations; None when none is decided yet."""
        return self.outcome_rate(EscalationOutcome.REMOVED)

    @property
    def awaiting_outcome(self) -> int:
        """Answered by the platform, no outcome recorded yet."""
        return self.opened - self.decided - self.no_response


@dataclass(frozen=True)
class Compliance:
    """Answers against their target (``cases.sla``): each clock of the period was
    answered within its target (``met``), after it or not at all by its due time
    (``missed``), or is still running and not yet due (``pending``)."""

    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def due(self) -> int:
        """Clocks whose outcome is known: met or missed."""
        return self.met + self.missed

    @property
    def rate(self) -> float | None:
        """Met over due; None when none is due yet."""
        return self.met / self.due if self.due else None


@dataclass(frozen=True)
class Compliances:
    first: Compliance  # the first answer to each case opened in the period
    next: Compliance  # each next answer whose clock started in the period


@dataclass(frozen=True)
class RepeatRow:
    """A platform's accounts reported in more than one case of the period."""

    platform: str
    name: str
    accounts: int
    cases: int  # the cases that reported them


@dataclass(frozen=True)
class RepeatedAccount:
    """One account reported in more than one case (listed only when asked)."""

    platform: str
    url: str
    cases: int
    first: datetime
    last: datetime
    case_ids: frozenset[int] = field(default=frozenset(), repr=False, compare=False)


@dataclass
class Report:
    """Everything ``mailroom report`` prints, in every format."""

    helpline: str
    timezone: str
    opening_hours: str
    generated_at: datetime
    period: Period
    previous_period: Period
    cases: Change
    by_month: list[MonthRow]
    by_category: Breakdown
    by_role: Breakdown
    by_platform: Breakdown
    platform_names: dict[str, str]
    first_response: ResponseTimes
    escalations: list[EscalationRow]
    escalation_total: EscalationRow
    contacts: Change = field(default_factory=lambda: Change(0, 0))
    handling: Breakdown = field(default_factory=lambda: Breakdown({}, {}))
    sla: Compliances = field(default_factory=lambda: Compliances(Compliance(), Compliance()))
    sla_targets: str = ""  # the targets, in words
    escalations_by_platform: Breakdown = field(default_factory=lambda: Breakdown({}, {}))
    repeats: list[RepeatRow] = field(default_factory=list)
    set_aside: dict[str, int] = field(default_factory=dict)  # status -> cases of the period
    repeated_accounts: list[RepeatedAccount] | None = None  # None: not asked for

    @property
    def kind(self) -> str:
        return self.period.kind()

    def platform_name(self, key: str) -> str:
        return self.platform_names.get(key, key)


# --- building ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    created_at: datetime
    category: str | None
    role: str | None
    platforms: tuple[str, ...]
    first_response_at: datetime | None
    priority: str | None = None
    escalated: bool = False  # at least one escalation to a platform, at any time


@dataclass(frozen=True)
class _Escalated:
    platform: str
    opened_at: datetime
    responded_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class _Said:
    """A message of a case's timeline that starts or stops the next-answer clock."""

    at: datetime
    inbound: bool  # a professional wrote into the case (a requester or a copy)
    known: bool = True  # False: a sender not on the case yet (starts no clock)


@dataclass(frozen=True)
class _Timeline:
    priority: str | None
    said: tuple[_Said, ...]  # in order


def build_report(app: App, period: Period, *, with_accounts: bool = False) -> Report:
    """Query the ticket, message and escalation rows of ``period`` and a year before.
    ``with_accounts``: list the accounts reported in more than one case."""
    tz, previous = app.settings.timezone, period.year_before()
    bounds, earlier_bounds = period.utc_bounds(tz), previous.utc_bounds(tz)
    with app.sessions() as session:
        cases = _cases(session, *bounds)
        earlier = _cases(session, *earlier_bounds)
        escalated = _escalations(session, *bounds)
        escalated_before = _escalations(session, *earlier_bounds)
        accounts = repeated_accounts(_account_reports(session, *bounds))
        set_aside = _set_aside(session, *bounds)
        contacts = Change(_contacts(session, *bounds), _contacts(session, *earlier_bounds))
        timelines = _timelines(session, *bounds)
    names = {key: p.name for key, p in app.platforms.items()}
    rows = escalation_rows(escalated, names, app.hours)
    now = app.now()
    target = partial(response_hours, app.settings)
    return Report(
        helpline=app.settings.helpline_name, timezone=str(tz),
        opening_hours=app.hours.describe(), generated_at=now,
        period=period, previous_period=previous,
        cases=Change(len(cases), len(earlier)),
        by_month=month_rows(period, [c.created_at for c in cases],
                            [c.created_at for c in earlier], tz),
        by_category=breakdown(cases, earlier, lambda c: [c.category or UNCATEGORISED]),
        by_role=breakdown(cases, earlier, lambda c: [c.role or UNKNOWN_ROLE]),
        by_platform=breakdown(cases, earlier, lambda c: c.platforms),
        platform_names=names, first_response=response_times(cases, app.hours),
        escalations=rows, escalation_total=escalation_total(escalated, app.hours),
        repeats=repeat_rows(accounts, names),
        repeated_accounts=accounts if with_accounts else None, set_aside=set_aside,
        contacts=contacts, handling=breakdown(cases, earlier, lambda c: [handled(c)]),
        sla=Compliances(
            first_answers(cases, app.hours, lambda p: target(p, first=True), now),
            next_answers(timelines.values(), bounds, app.hours,
                         lambda p: target(p, first=False), now)),
        sla_targets=targets_in_words(app.settings),
        escalations_by_platform=Breakdown(_ranked(e.platform for e in escalated),
                                          _ranked(e.platform for e in escalated_before)),
    )


def targets_in_words(settings: Settings) -> str:
    """``first answer: urgent 1, high 4, normal 8, low 24; next answer: …``."""
    def hours(first: bool) -> str:
        return ", ".join(f"{priority} {response_hours(settings, priority, first=first):g}"
                         for priority in TicketPriority)
    return f"first answer: {hours(True)}; next answer: {hours(False)}"


def _live(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    """Tickets opened in [start, end), neither merged into another nor set aside."""
    return [Ticket.created_at >= start, Ticket.created_at < end, Ticket.merged_into.is_(None),
            Ticket.status.not_in(SET_ASIDE)]


def _cases(session: Session, start: datetime, end: datetime) -> list[_Case]:
    escalated = select(Escalation.id).where(Escalation.ticket_id == Ticket.id).exists()
    stmt = select(
        Ticket.created_at, Ticket.category, Ticket.role, Ticket.platforms,
        Ticket.first_response_at, Ticket.priority, escalated,
    ).where(*_live(start, end))
    return [
        _Case(created, category, role, tuple(dict.fromkeys(platforms or [])), first,
              priority, bool(has_escalation))
        for created, category, role, platforms, first, priority, has_escalation
        in session.execute(stmt)
    ]


def _set_aside(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Cases of the period set aside (spam, out of remit), by status: counted apart."""
    stmt = select(Ticket.status, func.count()).where(
        Ticket.created_at >= start, Ticket.created_at < end, Ticket.merged_into.is_(None),
        Ticket.status.in_(SET_ASIDE)).group_by(Ticket.status)
    found = {str(status): int(count) for status, count in session.execute(stmt)}
    return {str(status): found.get(str(status), 0) for status in SET_ASIDE}


def _escalations(session: Session, start: datetime, end: datetime) -> list[_Escalated]:
    """Escalations opened in the period, but those of cases set aside."""
    stmt = select(
        Escalation.platform, Escalation.opened_at, Escalation.responded_at, Escalation.outcome,
    ).join(Ticket, Escalation.ticket_id == Ticket.id).where(
        Escalation.opened_at >= start, Escalation.opened_at < end,
        Ticket.status.not_in(SET_ASIDE))
    return [_Escalated(*row) for row in session.execute(stmt)]


def _contacts(session: Session, start: datetime, end: datetime) -> int:
    """Messages professionals wrote into cases in the period (every one, not only the
    first of a case), but those of cases set aside."""
    stmt = select(func.count()).select_from(Message).join(
        Ticket, Message.ticket_id == Ticket.id).where(
        Message.direction == Direction.IN, Message.kind == Speaker.REQUESTER,
        Message.created_at >= start, Message.created_at < end,
        Ticket.status.not_in(SET_ASIDE))
    return int(session.execute(stmt).scalar_one())


def _timelines(session: Session, start: datetime, end: datetime
               ) -> dict[int | None, _Timeline]:
    """The professionals' messages and the answers relayed to them, of every case a
    professional wrote into in the period, from its beginning."""
    wrote = select(Message.ticket_id).where(
        Message.direction == Direction.IN, Message.kind == Speaker.REQUESTER,
        Message.created_at >= start, Message.created_at < end)
    stmt = select(
        Message.ticket_id, Ticket.priority, Message.direction, Message.created_at,
        cast(Message.flags, Text),  # read as text: only one flag matters
    ).join(Ticket, Message.ticket_id == Ticket.id).where(
        Message.ticket_id.in_(wrote), Ticket.status.not_in(SET_ASIDE),
        Ticket.merged_into.is_(None),
        or_(and_(Message.direction == Direction.IN, Message.kind == Speaker.REQUESTER),
            and_(Message.direction == Direction.OUT, Message.kind == OutboxKind.RELAY)),
    ).order_by(Message.ticket_id, Message.created_at, Message.id)
    said: dict[int | None, list[_Said]] = {}
    priorities: dict[int | None, str | None] = {}
    for ticket_id, priority, direction, at, flags in session.execute(stmt):
        priorities[ticket_id] = priority
        said.setdefault(ticket_id, []).append(_Said(
            at, direction == Direction.IN, f'"{PENDING_SENDER}"' not in (flags or "")))
    return {key: _Timeline(priorities[key], tuple(items)) for key, items in said.items()}


def _account_reports(
    session: Session, start: datetime, end: datetime
) -> list[tuple[str, str, int, datetime]]:
    """(target, url, ticket id, when) of every account a requester reported in the period."""
    stmt = (
        select(MessageTarget.target, MessageTarget.url, Message.ticket_id, Message.created_at)
        .join(Message, MessageTarget.message_pk == Message.id)
        .join(Ticket, Message.ticket_id == Ticket.id)
        .where(Message.created_at >= start, Message.created_at < end,
               MessageTarget.target.contains(":account:"), Ticket.merged_into.is_(None),
               Ticket.status.not_in(SET_ASIDE))
    )
    return [(target, url, ticket, at) for target, url, ticket, at in session.execute(stmt)
            if ticket is not None]


# --- pure steps ----------------------------------------------------------------------


def repeated_accounts(
    reports: Iterable[tuple[str, str, int, datetime]]
) -> list[RepeatedAccount]:
    """Accounts reported in two or more cases, most cases first."""
    by_target: dict[str, list[tuple[str, int, datetime]]] = {}
    for target, url, ticket, at in reports:
        by_target.setdefault(target, []).append((url, ticket, at))
    found = [
        RepeatedAccount(target.split(":", 1)[0], min(u for u, _, _ in seen),
                        len({t for _, t, _ in seen}), min(a for _, _, a in seen),
                        max(a for _, _, a in seen), frozenset(t for _, t, _ in seen))
        for target, seen in by_target.items() if len({t for _, t, _ in seen}) > 1
    ]
    return sorted(found, key=lambda a: (-a.cases, a.platform, a.url))


def repeat_rows(accounts: Sequence[RepeatedAccount], names: dict[str, str]) -> list[RepeatRow]:
    """Per platform: how many accounts were reported in more than one case, in how many."""
    found: dict[str, tuple[int, frozenset[int]]] = {}
    for account in accounts:
        n, cases = found.get(account.platform, (0, frozenset()))
        found[account.platform] = (n + 1, cases | account.case_ids)
    return [RepeatRow(key, names.get(key, key), n, len(cases))
            for key, (n, cases) in sorted(found.items(), key=lambda kv: (-kv[1][0], kv[0]))]



def month_rows(
    period: Period, created: Sequence[datetime], earlier: Sequence[datetime], tz: ZoneInfo
) -> list[MonthRow]:
    """Cases per local month of the period, beside the same month a year before."""
    now = Counter(_month(moment, tz) for moment in created)
    before = Counter(_month(moment, tz, years_later=1) for moment in earlier)
    return [MonthRow(month, now[month], before[month]) for month in period.months()]


def breakdown(cases: Sequence[_Case], earlier: Sequence[_Case],
              keys: Callable[[_Case], Iterable[str]]) -> Breakdown:
    """Cases by the keys each has, this period and a year before."""
    return Breakdown(_ranked(k for c in cases for k in keys(c)),
                     _ranked(k for c in earlier for k in keys(c)))


def handled(case: _Case) -> str:
    """``escalated`` (to at least one platform), ``advice_only`` (answered without an
    escalation) or ``not_answered`` (neither, so far, whether or not it is closed: a
    case closed without an answer, or closed by an erasure, gave no advice by mail)."""
    if case.escalated:
        return ESCALATED
    if case.first_response_at is not None:
        return ADVICE_ONLY
    return NOT_ANSWERED


def first_answers(cases: Sequence[_Case], hours: OpeningHours,
                  target: Callable[[str | None], float], now: datetime) -> Compliance:
    """Each case's first answer against the target of its priority, counted in business
    hours from its opening; a case unanswered past its due time missed it."""
    met = missed = pending = 0
    for case in cases:
        state = _against(hours, case.created_at, target(case.priority), case.first_response_at,
                         now)
        met, missed, pending = met + (state > 0), missed + (state < 0), pending + (state == 0)
    return Compliance(met, missed, pending)


def _against(hours: OpeningHours, start: datetime, allowed: float, answer: datetime | None,
             now: datetime) -> int:
    """1: answered by the due time, -1: answered after it or unanswered past it, 0: not
    due yet. A due time is never earlier than as many clock hours (business hours are
    fewer), so an answer within them needs no counting."""
    soonest = start + timedelta(hours=allowed)
    moment = answer if answer is not None else now
    if moment <= soonest:
        return 1 if answer is not None else 0
    if moment <= hours.add_business_hours(start, allowed):
        return 1 if answer is not None else 0
    return -1


def next_answers(timelines: Iterable[_Timeline], bounds: tuple[datetime, datetime],
                 hours: OpeningHours, target: Callable[[str | None], float],
                 now: datetime) -> Compliance:
    """Next answers whose clock started in the period, as ``cases.sla`` runs it: after a
    first answer, a professional's message (from someone on the case) starts the clock
    when none runs, and the next answer relayed to them stops it."""
    start, end = bounds
    found: list[int] = []
    for timeline in timelines:
        hours_allowed = target(timeline.priority)
        answered, clock = False, None  # clock: when the running one started
        for said in timeline.said:
            if not said.inbound:
                if clock is not None and start <= clock < end:
                    found.append(_against(hours, clock, hours_allowed, said.at, now))
                answered, clock = True, None
            elif answered and clock is None and said.known:
                clock = said.at
        if clock is not None and start <= clock < end:
            found.append(_against(hours, clock, hours_allowed, None, now))
    return Compliance(found.count(1), found.count(-1), found.count(0))


def response_times(cases: Sequence[_Case], hours: OpeningHours) -> ResponseTimes:
    answered = [
        hours.business_seconds_between(c.created_at, c.first_response_at) / _HOUR
        for c in cases if c.first_response_at is not None
    ]
    return ResponseTimes(len(cases), len(answered), _median(answered))


def escalation_rows(
    escalated: Sequence[_Escalated], names: dict[str, str], hours: OpeningHours
) -> list[EscalationRow]:
    """One row per platform, most escalated first."""
    by_platform: dict[str, list[_Escalated]] = {}
    for item in escalated:
        by_platform.setdefault(item.platform, []).append(item)
    rows = [
        _escalation_row(key, names.get(key, key), items, hours)
        for key, items in by_platform.items()
    ]
    return sorted(rows, key=lambda r: (-r.opened, r.name.lower()))


def escalation_total(escalated: Sequence[_Escalated], hours: OpeningHours) -> EscalationRow:
    return _escalation_row("all", "All platforms", escalated, hours)


def _escalation_row(
    key: str, name: str, items: Sequence[_Escalated], hours: OpeningHours
) -> EscalationRow:
    waits = [
        hours.business_seconds_between(e.opened_at, e.responded_at) / _HOUR
        for e in items if e.responded_at is not None
    ]
    counted = Counter(e.outcome for e in items if e.outcome)
    outcomes: dict[str, int] = {o: counted[o] for o in OUTCOMES if counted[o]}
    outcomes.update({o: n for o, n in sorted(counted.items()) if o not in OUTCOMES})
    silent = sum(1 for e in items if e.responded_at is None and not e.outcome)
    return EscalationRow(key, name, len(items), len(waits), _median(waits), outcomes,
                         no_response=silent)


def _ranked(keys: Iterable[str]) -> dict[str, int]:
    """Counts, largest first, ties by name."""
    counted = Counter(keys)
    return dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _month(moment: datetime, tz: ZoneInfo, *, years_later: int = 0) -> str:
    local = moment.astimezone(tz)
    return f"{local.year + years_later:04d}-{local.month:02d}"


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _long(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def month_label(month: str, *, short: bool = False) -> str:
    """``2025-01`` → ``January 2025`` (``Jan 2025`` when short)."""
    first = date.fromisoformat(f"{month}-01")
    return f"{first:%b %Y}" if short else f"{first:%B %Y}"

