"""The case report's figures, worked out by hand from data built here: escalations with no
response, outcome rates over decided escalations, answers within target, advice only
against escalated, and the change of every breakdown against the year before."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mailroom.hours import OpeningHours
from mailroom.reports.cases import case_report
from mailroom.reports.data import (
    Breakdown,
    Change,
    Compliance,
    Compliances,
    Period,
    Report,
    ResponseTimes,
    _Case,
    _Escalated,
    _Said,
    _Timeline,
    breakdown,
    escalation_rows,
    escalation_total,
    first_answers,
    handled,
    next_answers,
)
from mailroom.reports.formats import json_data, render
from mailroom.resources import shipped_path

LONDON = ZoneInfo("Europe/London")
HOURS = OpeningHours()  # Monday to Friday, 10:00 to 16:00, London
TEMPLATES = [shipped_path("templates")]
NAMES = {"tiktok": "TikTok", "snapchat": "Snapchat"}


def london(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment of 2025, London time; 2 June 2025 is a Monday."""
    return datetime(2025, month, day, hour, minute, tzinfo=LONDON)


def sent(platform: str, answered: bool = False, outcome: str | None = None) -> _Escalated:
    return _Escalated(platform, london(6, 2), london(6, 2, 12) if answered else None, outcome)


# --- escalations ---------------------------------------------------------------------


def test_a_platform_that_never_answered_has_no_removal_rate() -> None:
    [row] = escalation_rows([sent("snapchat")] * 3, NAMES, HOURS)
    assert (row.opened, row.answered, row.no_response) == (3, 0, 3)
    assert (row.decided, row.awaiting_outcome) == (0, 0)
    assert row.removal_rate is None and row.outcome_rate("declined") is None
    assert row.median_answer_hours is None


def test_outcome_rates_are_over_decided_escalations_only() -> None:
    """Removed after an answer; declined without one (the practitioner saw it); answered,
    no outcome yet; never answered: two decided, one removal in two."""
    [row] = escalation_rows([
        sent("tiktok", True, "removed"), sent("tiktok", False, "declined"),
        sent("tiktok", True), sent("tiktok"),
    ], NAMES, HOURS)
    assert (row.opened, row.answered, row.no_response) == (4, 2, 1)
    assert (row.decided, row.awaiting_outcome) == (2, 1)
    assert row.removal_rate == 0.5
    assert row.outcome_rate("declined") == 0.5 and row.outcome_rate("restricted") == 0.0
    assert row.median_answer_hours == 2.0


def _report(escalated: list[_Escalated]) -> Report:
    period = Period(date(2025, 6, 1), date(2025, 6, 30))
    return Report(
        helpline="Test Helpline", timezone="Europe/London", opening_hours=HOURS.describe(),
        generated_at=datetime(2025, 7, 1, 9, tzinfo=UTC), period=period,
        previous_period=period.year_before(), cases=Change(0, 0), by_month=[],
        by_category=Breakdown({}, {}), by_role=Breakdown({}, {}),
        by_platform=Breakdown({}, {}), platform_names=NAMES,
        first_response=ResponseTimes(0, 0, None),
        escalations=escalation_rows(escalated, NAMES, HOURS),
        escalation_total=escalation_total(escalated, HOURS),
        sla=Compliances(Compliance(), Compliance()),
    )


def test_no_response_reads_as_a_dash_not_as_a_removal_in_every_format() -> None:
    document = case_report(_report([sent("snapchat")] * 3))
    text = render(document, "text", TEMPLATES)
    escalations, rates = [line.split() for line in text.splitlines()
                          if line.startswith("Snapchat")]
    # opened, answered, median answer, 4 outcomes, awaiting outcome, no response, removal rate
    assert escalations == ["Snapchat", "3", "0", "—", "0", "0", "0", "0", "0", "3", "—"]
    assert rates == ["Snapchat", "0", "—", "—", "—", "—"]  # none decided: no rate at all
    assert "100%" not in text
    [escalation] = json_data(document)["escalations"]
    assert (escalation["no_response"], escalation["removal_rate"]) == (3, None)
    assert "escalation,snapchat,no_response,3" in render(document, "csv", TEMPLATES)
    assert "escalation,snapchat,removal_rate,\n" in render(document, "csv", TEMPLATES)
    markdown = render(document, "markdown", TEMPLATES)
    assert "| Snapchat | 3 | 0 | — | 0 | 0 | 0 | 0 | 0 | 3 | — |" in markdown
    html = render(document, "html", TEMPLATES)
    assert '<th scope="row">Snapchat</th><td class="n">3</td><td class="n">0</td>' \
           '<td class="n">—</td>' + 5 * '<td class="n">0</td>' + '<td class="n">3</td>' \
           '<td class="n">—</td></tr>' in html
    assert 'data-series="no_response" data-key="snapchat" data-value="3"' in html


# --- answers within target ------------------------------------------------------------


def case(created: datetime, answered: datetime | None = None, priority: str = "normal",
         escalated: bool = False) -> _Case:
    return _Case(created, None, None, (), answered, priority, escalated)


TARGETS = {"urgent": 1.0, "normal": 8.0}


def test_first_answers_against_the_target_of_their_priority() -> None:
    cases = [
        case(london(6, 2), london(6, 2, 15)),  # 5 business hours: within 8
        case(london(6, 2), london(6, 2, 12), "urgent"),  # 2 hours: missed 1
        case(london(6, 2), london(6, 3, 12)),  # 8 hours exactly: within
        case(london(6, 2)),  # due on Tuesday at 12:00, unanswered: missed
        case(london(6, 4)),  # due on Thursday: not yet
    ]
    found = first_answers(cases, HOURS, lambda p: TARGETS[p or "normal"], london(6, 4, 11))
    assert found == Compliance(met=2, missed=2, pending=1)
    assert (found.due, found.rate) == (4, 0.5)


def said(at: datetime, inbound: bool = True, known: bool = True) -> _Said:
    return _Said(at, inbound, known)


def test_next_answers_as_the_clock_runs() -> None:
    june = (london(6, 1, 0).astimezone(UTC), london(7, 1, 0).astimezone(UTC))
    timelines = [
        # clock at Monday 12:00 (due Wednesday 16:00); a second message does not restart
        # it; answered on Tuesday: within
        _Timeline("normal", (said(london(6, 2)), said(london(6, 2, 11), False),
                             said(london(6, 2, 12)), said(london(6, 2, 13)),
                             said(london(6, 3, 10, 30), False))),
        # before the first answer nothing runs; someone not on the case starts nothing;
        # Friday 10:00 is due Tuesday 14:00, answered Wednesday: missed
        _Timeline("normal", (said(london(6, 2)), said(london(6, 2, 10, 30)),
                             said(london(6, 2, 11), False), said(london(6, 2, 12), known=False),
                             said(london(6, 6)), said(london(6, 11), False))),
        # a clock of May answered in June is not June's; the next, due Wednesday 14:30,
        # is still unanswered on Thursday: missed
        _Timeline("normal", (said(london(5, 30)), said(london(5, 30, 11), False),
                             said(london(5, 30, 12)), said(london(6, 2), False),
                             said(london(6, 2, 10, 30)))),
        # due Friday 14:00, unanswered on Thursday: not yet due
        _Timeline("normal", (said(london(6, 2)), said(london(6, 2, 11), False),
                             said(london(6, 4)))),
    ]
    found = next_answers(timelines, june, HOURS, lambda p: 16.0, london(6, 5))
    assert found == Compliance(met=1, missed=2, pending=1)


# --- how cases were handled, and every breakdown against the year before ---------------


def test_advice_only_escalated_or_not_answered() -> None:
    assert handled(case(london(6, 2), london(6, 2, 12))) == "advice_only"
    assert handled(case(london(6, 2), london(6, 2, 12), escalated=True)) == "escalated"
    assert handled(case(london(6, 2), escalated=True)) == "escalated"
    assert handled(case(london(6, 2))) == "not_answered"


def test_a_breakdown_keeps_last_years_keys() -> None:
    def with_category(category: str) -> _Case:
        return _Case(london(6, 2), category, None, (), None)

    counts = breakdown([with_category("bullying")] * 3 + [with_category("sexting")],
                       [with_category("bullying")] * 2 + [with_category("threats")] * 4,
                       lambda c: [c.category or ""])
    assert counts.ranked() == ["bullying", "sexting", "threats"]
    assert counts.change("bullying").sentence("quarter") == \
        "50% more than the same quarter last year"
    assert counts.change("threats").phrase() == "100% fewer"
    assert counts.change("sexting").phrase() == "none a year before"


@pytest.mark.parametrize(("current", "previous", "phrase"), [
    (31, 25, "24% more"), (15, 20, "25% fewer"), (20, 20, "the same"),
    (1001, 1000, "about the same"), (3, 0, "none a year before"), (0, 0, "none either year"),
])
def test_change_phrases(current: int, previous: int, phrase: str) -> None:
    assert Change(current, previous).phrase() == phrase
