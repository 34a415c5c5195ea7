"""Opening hours and business-time arithmetic.

Pure: every function takes the moment it works from (no clock is read here).
All inputs must be timezone-aware; results are aware datetimes in the
helpline's time zone. Arithmetic is done in UTC so that a daylight-saving
change never adds or loses an hour: Python compares and subtracts two
datetimes that share a ``tzinfo`` by wall-clock time, which is wrong across a
DST change, so every window edge is converted to UTC first.

A *business day* is a weekday listed in ``days`` that is not a holiday; its
*window* runs from ``opens`` to ``closes`` local time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Europe/London"
# Far enough to cross any sensible holiday list; a calendar with no business
# day in this span is a configuration error, not an infinite loop.
_MAX_SCAN_DAYS = 3660
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Window = tuple[datetime, datetime]  # (opens, closes), both in UTC


def _default_tz() -> ZoneInfo:
    return ZoneInfo(DEFAULT_TZ)


@dataclass(frozen=True)
class OpeningHours:
    """When the helpline is staffed. Default: Monday–Friday 10:00–16:00, London."""

    tz: ZoneInfo = field(default_factory=_default_tz)
    days: frozenset[int] = frozenset(range(5))  # 0 = Monday
    opens: time = time(10, 0)
    closes: time = time(16, 0)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError("opening days must be a non-empty set of 0 (Monday) to 6 (Sunday)")
        if self.opens >= self.closes:
            raise ValueError("opening time must be before closing time")
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opening and closing times are local: give them without a tzinfo")

    # -- days and windows -------------------------------------------------

    def is_business_day(self, day: date) -> bool:
        """True when ``day`` (a local date) is an opening day and not a holiday."""
        return day.weekday() in self.days and day not in self.holidays

    def window(self, day: date) -> Window | None:
        """The opening window of a local date in UTC, or None on a closed day."""
        if not self.is_business_day(day):
            return None
        start = datetime.combine(day, self.opens, tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(day, self.closes, tzinfo=self.tz).astimezone(UTC)
        return start, end

    def _windows_from(self, at: datetime) -> Iterator[Window]:
        """Windows of business days from the local date of ``at`` onwards."""
        day = at.astimezone(self.tz).date()
        for offset in range(_MAX_SCAN_DAYS):
            window = self.window(day + timedelta(days=offset))
            if window is not None:
                yield window
        raise ValueError(f"no business day within {_MAX_SCAN_DAYS} days of {day.isoformat()}")

    def _windows_ending_after(self, at: datetime) -> Iterator[Window]:
        """Windows that are still open, or yet to open, at ``at`` (UTC)."""
        for start, end in self._windows_from(at):
            if end > at:
                yield start, end

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    # -- the questions the rest of mailroom asks ---------------------------

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` falls inside an opening window (opens inclusive)."""
        moment = _utc(at)
        window = self.window(moment.astimezone(self.tz).date())
        return window is not None and window[0] <= moment < window[1]

    def next_opening(self, at: datetime) -> datetime:
        """The first moment at or after ``at`` when the helpline is open.

        When it is open at ``at``, that is ``at`` itself (in the helpline's
        time zone): someone can act now.
        """
        moment = _utc(at)
        start, _ = next(self._windows_ending_after(moment))
        return self._local(max(start, moment))

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The same local time of day, ``days`` business days later.

        ``start`` is first moved to :meth:`next_opening` (a message sent on
        Saturday counts from Monday's opening), so the result always falls
        inside opening hours. ``days=0`` gives ``next_opening(start)``.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        first = self.next_opening(start)
        day = first.date()
        for _ in range(days):
            day = self._next_business_day(day)
        wall = datetime.combine(day, first.timetz().replace(tzinfo=None), tzinfo=self.tz)
        return self._local(wall.astimezone(UTC))

    def _next_business_day(self, day: date) -> date:
        for offset in range(1, _MAX_SCAN_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError(f"no business day within {_MAX_SCAN_DAYS} days of {day.isoformat()}")

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment when ``hours`` of opening time have passed since ``start``.

        Time outside opening hours does not count. A deadline that uses up a
        window exactly falls at its closing time, not at the next opening.
        """
        if hours < 0:
            raise ValueError("hours must not be negative")
        remaining = timedelta(hours=hours)
        moment = _utc(start)
        for window_start, window_end in self._windows_ending_after(moment):
            cursor = max(window_start, moment)
            available = window_end - cursor
            if remaining <= available:
                return self._local(cursor + remaining)
            remaining -= available
        raise AssertionError("unreachable: _windows_from raises first")  # pragma: no cover

    def business_seconds_between(self, a: datetime, b: datetime) -> float:
        """Seconds of opening time between ``a`` and ``b`` (negative when b < a)."""
        start, end = _utc(a), _utc(b)
        if end < start:
            return -self.business_seconds_between(b, a)
        total = timedelta()
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            window = self.window(day)
            if window is not None:
                overlap = min(end, window[1]) - max(start, window[0])
                total += max(overlap, timedelta())
            day += timedelta(days=1)
        return total.total_seconds()

    def describe(self) -> str:
        """A short human description, e.g. ``Monday to Friday, 10:00 to 16:00 (Europe/London)``."""
        return f"{_describe_days(self.days)}, {self.opens:%H:%M} to {self.closes:%H:%M} ({self.tz})"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def _describe_days(days: frozenset[int]) -> str:
    ordered = sorted(days)
    contiguous = ordered == list(range(ordered[0], ordered[-1] + 1))
    if len(ordered) > 2 and contiguous:
        return f"{_DAY_NAMES[ordered[0]]} to {_DAY_NAMES[ordered[-1]]}"
    names = [_DAY_NAMES[d] for d in ordered]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
