"""Opening hours: weekends, holidays, DST changes, start times outside hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.hours import OpeningHours

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
CHRISTMAS = frozenset({date(2025, 12, 25), date(2025, 12, 26)})
HOURS = OpeningHours(holidays=CHRISTMAS)  # Mon–Fri 10:00–16:00 London


def london(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


# March 2025: Mon 3, Fri 7, Sat 8. DST starts Sun 30 March (Fri 28, Mon 31).
# October 2025: DST ends Sun 26 October. Christmas: Thu 25 and Fri 26 December.


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (london(2025, 3, 3, 9, 59), False),
        (london(2025, 3, 3, 10, 0), True),
        (london(2025, 3, 3, 15, 59, 59), True),
        (london(2025, 3, 3, 16, 0), False),
        (london(2025, 3, 8, 12, 0), False),
        (london(2025, 12, 25, 12, 0), False),
        (datetime(2025, 7, 1, 9, 30, tzinfo=UTC), True),  # 10:30 BST
        (datetime(2025, 7, 1, 15, 30, tzinfo=UTC), False),  # 16:30 BST
    ],
    ids=[
        "before-opening",
        "at-opening",
        "last-second",
        "at-closing",
        "saturday",
        "holiday",
        "utc-input-in-summer",
        "utc-input-after-closing",
    ],
)
def test_is_open(at: datetime, expected: bool) -> None:
    assert HOURS.is_open(at) is expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (london(2025, 3, 3, 11, 15), london(2025, 3, 3, 11, 15)),
        (london(2025, 3, 3, 7, 0), london(2025, 3, 3, 10, 0)),
        (london(2025, 3, 7, 16, 0), london(2025, 3, 10, 10, 0)),
        (london(2025, 3, 8, 12, 0), london(2025, 3, 10, 10, 0)),
        (london(2025, 12, 24, 17, 0), london(2025, 12, 29, 10, 0)),
        (london(2025, 3, 28, 18, 0), london(2025, 3, 31, 10, 0)),
    ],
    ids=["open-now", "early-morning", "friday-closing", "saturday", "christmas", "across-dst"],
)
def test_next_opening(at: datetime, expected: datetime) -> None:
    result = HOURS.next_opening(at)
    assert result == expected
    assert result.tzinfo == LONDON
    assert result.utcoffset() == expected.utcoffset()


def test_next_opening_after_dst_is_ten_local_not_ten_utc() -> None:
    result = HOURS.next_opening(london(2025, 3, 28, 18, 0))
    assert result.astimezone(UTC) == datetime(2025, 3, 31, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (london(2025, 3, 3, 11, 0), 2, london(2025, 3, 5, 11, 0)),
        (london(2025, 3, 7, 14, 0), 1, london(2025, 3, 10, 14, 0)),
        (london(2025, 3, 8, 11, 0), 2, london(2025, 3, 12, 10, 0)),
        (london(2025, 3, 7, 20, 0), 2, london(2025, 3, 12, 10, 0)),
        (london(2025, 12, 24, 15, 0), 1, london(2025, 12, 29, 15, 0)),
        (london(2025, 3, 28, 14, 0), 1, london(2025, 3, 31, 14, 0)),
        (london(2025, 10, 24, 14, 0), 1, london(2025, 10, 27, 14, 0)),
        (london(2025, 3, 8, 11, 0), 0, london(2025, 3, 10, 10, 0)),
    ],
    ids=[
        "midweek",
        "over-weekend",
        "from-saturday",
        "from-friday-night",
        "over-christmas",
        "over-spring-dst",
        "over-autumn-dst",
        "zero-days",
    ],
)
def test_add_business_days(start: datetime, days: int, expected: datetime) -> None:
    result = HOURS.add_business_days(start, days)
    assert result == expected
    assert result.utcoffset() == expected.utcoffset()  # same wall clock, new offset
    assert HOURS.is_open(result)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (london(2025, 3, 3, 10, 0), 6, london(2025, 3, 3, 16, 0)),
        (london(2025, 3, 3, 15, 0), 2, london(2025, 3, 4, 11, 0)),
        (london(2025, 3, 28, 15, 0), 2, london(2025, 3, 31, 11, 0)),
        (london(2025, 3, 8, 9, 0), 1, london(2025, 3, 10, 11, 0)),
        (london(2025, 12, 24, 15, 30), 1, london(2025, 12, 29, 10, 30)),
        (london(2025, 3, 3, 6, 0), 0.5, london(2025, 3, 3, 10, 30)),
        (london(2025, 3, 3, 12, 0), 24, london(2025, 3, 7, 12, 0)),
    ],
    ids=[
        "whole-day-ends-at-closing",
        "overnight",
        "over-weekend-and-dst",
        "from-saturday",
        "over-christmas",
        "half-hour-before-opening",
        "four-days",
    ],
)
def test_add_business_hours(start: datetime, hours: float, expected: datetime) -> None:
    result = HOURS.add_business_hours(start, hours)
    assert result == expected
    assert result.tzinfo == LONDON


@pytest.mark.parametrize(
    ("a", "b", "seconds"),
    [
        (london(2025, 3, 3, 11, 0), london(2025, 3, 3, 12, 30), 5400),
        (london(2025, 3, 3, 15, 0), london(2025, 3, 4, 11, 0), 7200),
        (london(2025, 3, 7, 15, 0), london(2025, 3, 10, 10, 30), 5400),
        (london(2025, 3, 28, 15, 0), london(2025, 3, 31, 11, 0), 7200),
        (london(2025, 12, 24, 15, 0), london(2025, 12, 29, 11, 0), 7200),
        (london(2025, 3, 3, 17, 0), london(2025, 3, 4, 9, 0), 0),
        (london(2025, 3, 3, 9, 0), london(2025, 3, 3, 17, 0), 6 * 3600),
        (london(2025, 3, 3, 12, 30), london(2025, 3, 3, 11, 0), -5400),
    ],
    ids=[
        "same-window",
        "overnight",
        "weekend",
        "weekend-with-dst",
        "christmas",
        "outside-only",
        "around-a-whole-day",
        "reversed-is-negative",
    ],
)
def test_business_seconds_between(a: datetime, b: datetime, seconds: float) -> None:
    assert HOURS.business_seconds_between(a, b) == seconds


# A night shift that contains the DST change itself (01:00 local, both ways).
NIGHT = OpeningHours(tz=LONDON, days=frozenset(range(7)), opens=time(0, 30), closes=time(3, 0))


@pytest.mark.parametrize(
    ("day", "seconds"),
    [(date(2025, 3, 30), 1.5 * 3600), (date(2025, 10, 26), 3.5 * 3600), (date(2025, 6, 1), 9000)],
    ids=["spring-forward-loses-an-hour", "fall-back-gains-an-hour", "ordinary-night"],
)
def test_window_containing_a_dst_change(day: date, seconds: float) -> None:
    start = datetime.combine(day, time(0, 0), tzinfo=LONDON)
    end = datetime.combine(day, time(4, 0), tzinfo=LONDON)
    assert NIGHT.business_seconds_between(start, end) == seconds


def test_add_business_hours_through_the_spring_gap() -> None:
    # 00:30 GMT + 1h = 01:30 UTC = 02:30 BST: the hour from 01:00 to 02:00 does not exist.
    start = datetime(2025, 3, 30, 0, 30, tzinfo=LONDON)
    assert NIGHT.add_business_hours(start, 1).astimezone(UTC) == datetime(
        2025, 3, 30, 1, 30, tzinfo=UTC
    )


def test_other_time_zone() -> None:
    hours = OpeningHours(tz=NEW_YORK, opens=time(8, 0), closes=time(17, 0))
    # US DST started on Sun 9 March 2025; London is still on GMT that week.
    assert hours.is_open(datetime(2025, 3, 10, 12, 30, tzinfo=UTC))  # 08:30 EDT
    assert not hours.is_open(datetime(2025, 3, 7, 12, 30, tzinfo=UTC))  # 07:30 EST
    assert hours.next_opening(datetime(2025, 3, 7, 23, 0, tzinfo=UTC)) == datetime(
        2025, 3, 10, 8, 0, tzinfo=NEW_YORK
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: HOURS.is_open(datetime(2025, 3, 3, 12, 0)),
        lambda: HOURS.next_opening(datetime(2025, 3, 3, 12, 0)),
        lambda: HOURS.business_seconds_between(datetime(2025, 3, 3), london(2025, 3, 4)),
        lambda: HOURS.add_business_days(london(2025, 3, 3), -1),
        lambda: HOURS.add_business_hours(london(2025, 3, 3), -1),
        lambda: OpeningHours(opens=time(16, 0), closes=time(10, 0)),
        lambda: OpeningHours(days=frozenset()),
        lambda: OpeningHours(days=frozenset({7})),
    ],
    ids=[
        "naive-is-open",
        "naive-next-opening",
        "naive-between",
        "negative-days",
        "negative-hours",
        "closes-before-opens",
        "no-days",
        "day-out-of-range",
    ],
)
def test_invalid_input_raises_value_error(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_a_calendar_with_no_business_day_fails_instead_of_looping() -> None:
    every_day = frozenset(date(2025, 1, 1) + timedelta(days=n) for n in range(4000))
    closed = OpeningHours(holidays=every_day)
    with pytest.raises(ValueError, match="no business day"):
        closed.next_opening(london(2025, 1, 1, 12, 0))


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (OpeningHours(), "Monday to Friday, 10:00 to 16:00 (Europe/London)"),
        (
            OpeningHours(tz=NEW_YORK, days=frozenset({0, 2}), opens=time(9), closes=time(17)),
            "Monday and Wednesday, 09:00 to 17:00 (America/New_York)",
        ),
    ],
    ids=["default", "two-days"],
)
def test_describe(hours: OpeningHours, text: str) -> None:
    assert hours.describe() == text


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@given(start=moments, minutes=st.integers(min_value=0, max_value=60 * 24 * 20))
def test_business_hours_and_seconds_agree(start: datetime, minutes: int) -> None:
    due = HOURS.add_business_hours(start, minutes / 60)
    assert HOURS.business_seconds_between(start, due) == pytest.approx(minutes * 60)


@given(at=moments)
def test_next_opening_is_open_and_not_earlier(at: datetime) -> None:
    opening = HOURS.next_opening(at)
    assert opening >= at
    assert HOURS.is_open(opening)
    assert HOURS.business_seconds_between(at, opening) == 0
