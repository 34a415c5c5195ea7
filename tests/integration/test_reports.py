"""``mailroom report``: every figure of a known two-year dataset, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mailroom.app import App
from mailroom.reports.cases import case_report
from mailroom.reports.charts import nice_max
from mailroom.reports.data import Change, MonthRow, Period, Report, build_report
from mailroom.reports.formats import FORMATS, csv_rows, json_data, render
from tests.report_dataset import EXPECTED, dataset_app, report_period, run_cli

LONDON = ZoneInfo("Europe/London")
__all__ = ["dataset_app"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def dataset(dataset_app: App) -> App:
    return dataset_app


@pytest.fixture(scope="module")
def report(dataset: App) -> Report:
    return build_report(dataset, report_period())


# --- the figures -------------------------------------------------------------------


def test_cases_opened_and_change_against_last_year(report: Report) -> None:
    assert report.cases == Change(EXPECTED["cases"], EXPECTED["previous"])
    assert report.cases.absolute == EXPECTED["change"]
    assert report.cases.percent == pytest.approx(EXPECTED["change_percent"])
    assert report.cases.sentence(report.kind) == EXPECTED["sentence"]
    assert report.previous_period == Period(date(2024, 1, 1), date(2024, 3, 31))


def test_cases_by_month_beside_the_same_month_last_year(report: Report) -> None:
    assert report.by_month == [MonthRow(*row) for row in EXPECTED["by_month"]]


@pytest.mark.parametrize("attribute", ["by_category", "by_role", "by_platform"],
                         ids=["category", "role", "platform"])
def test_breakdowns_largest_first(report: Report, attribute: str) -> None:
    counts = getattr(report, attribute)
    assert counts.current == EXPECTED[attribute]
    assert counts.previous == EXPECTED[f"previous_{attribute}"]
    assert list(counts.current.values()) == sorted(counts.current.values(), reverse=True)
    assert counts.ranked()[:len(counts.current)] == list(EXPECTED[attribute])


def test_every_breakdown_row_against_last_year(report: Report) -> None:
    """Bullying 11 against 4; sexting 4 against 10; social workers none a year before."""
    assert report.by_category.change("bullying").sentence(report.kind) == \
        "175% more than the same quarter last year"
    assert report.by_category.change("sexting").phrase() == "60% fewer"
    assert report.by_role.change("social_worker").phrase() == "none a year before"
    assert report.by_role.change("teacher").phrase() == "the same"
    assert report.by_platform.change("snapchat") == Change(4, 10)
    assert [row.change.phrase() for row in report.by_month] == \
        ["25% more", "33% more", "20% more"]


def test_contacts_against_cases(report: Report) -> None:
    """Every message professionals wrote into the cases, not those of the spam case."""
    assert report.contacts == Change(EXPECTED["contacts"], EXPECTED["previous_contacts"])


def test_answers_within_target(report: Report) -> None:
    first, following = report.sla.first, report.sla.next
    assert (first.met, first.missed, first.pending) == EXPECTED["first_sla"]
    assert first.rate == pytest.approx(0.8)
    assert (following.met, following.missed, following.pending) == EXPECTED["next_sla"]
    assert following.rate == pytest.approx(0.4)
    assert report.sla_targets.startswith("first answer: urgent 1, high 4, normal 8, low 24")


def test_cases_set_aside_are_in_no_other_figure(report: Report) -> None:
    assert report.set_aside == EXPECTED["set_aside"]
    snapchat = next(r for r in report.escalations if r.platform == "snapchat")
    assert (snapchat.opened, snapchat.outcomes) == (1, {})  # not the spam case's escalation


def test_escalations_per_platform_against_last_year(report: Report) -> None:
    counts = report.escalations_by_platform
    assert counts.current == EXPECTED["escalations_by_platform"]
    assert counts.previous == EXPECTED["previous_escalations_by_platform"]
    assert counts.change("tiktok").sentence(report.kind) == \
        "300% more than the same quarter last year"


def test_advice_only_and_escalated(report: Report) -> None:
    assert report.handling.current == {k: v for k, v in EXPECTED["handling"].items() if v}
    assert report.handling.previous == EXPECTED["previous_handling"]


def test_median_first_response_in_business_hours(report: Report) -> None:
    response = report.first_response
    assert (response.cases, response.answered) == (EXPECTED["cases"], EXPECTED["answered"])
    assert response.median_hours == pytest.approx(EXPECTED["median_response_hours"])


@pytest.mark.parametrize("platform", ["tiktok", "instagram", "snapchat"],
                         ids=["tiktok", "instagram", "snapchat"])
def test_escalations_per_platform(report: Report, platform: str) -> None:
    row = next(r for r in report.escalations if r.platform == platform)
    expected = EXPECTED["escalations"][platform]
    assert (row.opened, row.answered) == (expected["opened"], expected["answered"])
    assert row.no_response == EXPECTED["no_response"][platform]
    assert row.median_answer_hours == pytest.approx(expected["median"])
    assert row.outcomes == expected["outcomes"]
    assert row.removal_rate == pytest.approx(expected["removal_rate"])


def test_escalations_in_all_and_in_order(report: Report) -> None:
    total, expected = report.escalation_total, EXPECTED["escalation_total"]
    assert [r.platform for r in report.escalations] == ["tiktok", "instagram", "snapchat"]
    assert (total.opened, total.answered) == (expected["opened"], expected["answered"])
    assert total.no_response == EXPECTED["no_response"]["all"]
    assert total.median_answer_hours == pytest.approx(expected["median"])
    assert total.outcomes == expected["outcomes"]
    assert total.removal_rate == pytest.approx(expected["removal_rate"])
    assert report.platform_name("tiktok") == "TikTok"


def test_a_single_month_counts_only_its_days(dataset: App) -> None:
    march = build_report(dataset, Period(date(2025, 3, 1), date(2025, 3, 31)))
    assert (march.cases.current, march.cases.previous) == (12, 10)
    assert march.kind == "month"
    assert march.cases.sentence(march.kind) == "20% more than the same month last year"


# --- formats -------------------------------------------------------------------------


def test_json_format_is_the_documents_data(report: Report, dataset: App) -> None:
    data = json.loads(render(case_report(report), "json", dataset.settings.template_dirs))
    assert data == json.loads(json.dumps(json_data(case_report(report))))
    assert data["cases"] == {"opened": 25, "previous": 20, "change": 5, "change_percent": 25.0,
                             "summary": EXPECTED["sentence"]}
    assert data["escalations"][0]["outcomes"] == {
        "removed": 2, "restricted": 0, "declined": 1, "no_action": 0}
    assert data["escalations"][2]["median_answer_business_hours"] is None
    assert data["escalations"][2]["no_response"] == 1
    assert data["escalations"][2]["removal_rate"] is None
    assert data["by_category"][0] == {
        "category": "bullying", "cases": 11, "previous": 4, "change": 7,
        "change_percent": 175.0, "summary": "175% more than the same quarter last year"}
    assert data["by_month"][0]["summary"] == "25% more than the same month last year"
    assert data["contacts"]["messages"] == 20 and data["contacts"]["per_case"] == 0.8
    assert data["sla"] == [
        {"answer": "first", "met": 20, "missed": 5, "pending": 0, "rate": 0.8},
        {"answer": "next", "met": 4, "missed": 6, "pending": 0, "rate": 0.4}]
    assert data["outcome_rate_total"] == {
        "platform": "all", "name": "All platforms", "decided": 5, "removed": 0.6,
        "restricted": 0.2, "declined": 0.2, "no_action": 0.0}
    assert data["by_handling"] == [
        {"handling": "advice_only", "cases": 22, "previous": 20, "change": 2,
         "change_percent": 10.0, "summary": "10% more than the same quarter last year"},
        {"handling": "escalated", "cases": 0, "previous": 0, "change": 0,
         "change_percent": None,
         "summary": "none in the same quarter last year to compare with"},
        {"handling": "not_answered", "cases": 3, "previous": 0, "change": 3,
         "change_percent": None,
         "summary": "none in the same quarter last year to compare with"}]


def test_csv_format_long_rows(report: Report, dataset: App) -> None:
    text = render(case_report(report), "csv", dataset.settings.template_dirs)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "key", "metric", "value"]
    values = {(s, k, m): v for s, k, m, v in rows[1:]}
    assert len(values) == len(rows) - 1 == len(list(csv_rows(case_report(report))))
    assert values[("cases", "opened", "count")] == "25"
    assert values[("cases", "opened", "change_percent")] == "25.0"
    assert values[("month", "2025-02", "previous")] == "6"
    assert values[("category", "uncategorised", "cases")] == "2"
    assert values[("platform", "snapchat", "cases")] == "4"
    assert values[("first_response", "all", "median_business_hours")] == "4.0"
    assert values[("escalation", "tiktok", "removal_rate")] == "0.6667"
    assert values[("escalation", "snapchat", "median_answer_business_hours")] == ""
    assert values[("escalation", "all", "outcome_removed")] == "3"
    assert values[("escalation", "snapchat", "no_response")] == "1"
    assert values[("escalation", "snapchat", "removal_rate")] == ""
    assert values[("outcome_rate", "tiktok", "declined")] == "0.3333"
    assert values[("category", "sexting", "previous")] == "10"
    assert values[("category", "sexting", "change_percent")] == "-60.0"
    assert values[("role", "social_worker", "change_percent")] == ""
    assert values[("contacts", "all", "messages")] == "20"
    assert values[("sla", "first", "rate")] == "0.8"
    assert values[("set_aside", "all", "spam")] == "1"
    assert values[("escalation_change", "tiktok", "previous")] == "1"
    assert values[("escalation_change", "all", "change_percent")] == "600.0"


def test_markdown_format_tables(report: Report, dataset: App) -> None:
    text = render(case_report(report), "markdown", dataset.settings.template_dirs)
    assert "- Removal rate: 60% (content removed in 3 of 5 decided escalations)" in text
    assert "| Sexting | 4 | 16% | 10 | -6 | 60% fewer |" in text
    assert "| Not answered | 3 | 12% | 0 | +3 | none a year before |" in text
    assert "| Next answers | 4 | 6 | 0 | 40% |" in text
    assert "| Snapchat | 1 | 0 | — | 0 | 0 | 0 | 0 | 0 | 1 | — |" in text
    assert "| **All platforms** | **7** | **5** | **3.0** | **3** | **1** | **1** | **0** | " \
           "**0** | **2** | **60%** |" in text


def test_text_format_tables(report: Report, dataset: App) -> None:
    text = render(case_report(report), "text", dataset.settings.template_dirs)
    assert "Cases opened: 25 (25% more than the same quarter last year: 20)" in text
    assert "Median time to first response: 4.0 business hours (22 of 25 cases answered)" in text
    lines = text.splitlines()
    assert "Contacts: 20 (messages from professionals into 25 cases, 0.8 a case; 400% more " \
        "than the same quarter last year: 4)" in text
    assert "First answers within target: 80% (20 of 25 cases within target)" in text
    assert any(line.split() == ["February", "2025", "8", "6", "+2", "33%", "more"]
               for line in lines)
    assert any(line.split() == ["Social", "worker", "4", "16%", "0", "+4", "none", "a", "year",
                                "before"] for line in lines)
    assert any(line.split() == ["Sexting", "4", "16%", "10", "-6", "60%", "fewer"]
               for line in lines)
    assert any(line.split() == ["First", "answers", "20", "5", "0", "80%"] for line in lines)
    assert any(line.split() == ["Snapchat", "1", "0", "—", "0", "0", "0", "0", "0", "1", "—"]
               for line in lines)
    assert any(line.split()[:2] == ["TikTok", "4"] and line.endswith("67%") for line in lines)
    assert any(line.split()[:3] == ["All", "platforms", "7"] and line.endswith("60%")
               for line in lines)


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMATS)
def test_a_period_without_cases_renders_in_every_format(dataset: App, fmt: str) -> None:
    empty = build_report(dataset, Period(date(2019, 1, 1), date(2019, 12, 31)))
    assert (empty.cases.current, empty.escalations, empty.first_response.median_hours) == (
        0, [], None)
    text = render(case_report(empty), fmt, dataset.settings.template_dirs)
    expected = {"text": "Escalations to platforms: none in this period",
                "json": '"median_business_hours": null',
                "csv": "first_response,all,median_business_hours,",
                "markdown": "Escalations to platforms: none in this period",
                "html": "None in this period."}[fmt]
    assert expected in text


# --- command line --------------------------------------------------------------------


def test_cli_report_json_to_stdout(dataset: App, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(["--config", str(dataset.settings.source), "report",
                      "--from", "2025-01-01", "--to", "2025-03-31", "--format", "json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cases"]["opened"] == 25
    assert {row["platform"]: row["cases"] for row in data["by_platform"]} == EXPECTED["by_platform"]


def test_cli_report_markdown(dataset: App, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(["--config", str(dataset.settings.source), "report",
                      "--from", "2025-01-01", "--to", "2025-03-31", "--format", "markdown"])
    assert status == 0
    text = capsys.readouterr().out
    assert text.startswith("# Test Helpline: cases from 1 January 2025 to 31 March 2025\n")
    assert "| Bullying | 11 | 44% | 4 | +7 | 175% more |" in text


def test_cli_report_to_a_file(dataset: App, capsys: pytest.CaptureFixture[str]) -> None:
    out = dataset.settings.source.parent / "q1.csv"
    status = run_cli(["--config", str(dataset.settings.source), "report", "--from",
                      "2025-01-01", "--to", "2025-03-31", "--format", "csv", "--out", str(out)])
    assert status == 0
    assert capsys.readouterr().out == ""
    assert "cases,opened,count,25" in out.read_text().splitlines()


@pytest.mark.parametrize("dates", [("2025-03-31", "2025-01-01"), ("2025-13-01", "2025-12-31")],
                         ids=["reversed", "not-a-date"])
def test_cli_report_bad_dates_are_usage_errors(
    dataset: App, dates: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_cli(["--config", str(dataset.settings.source), "report",
                      "--from", dates[0], "--to", dates[1]])
    assert status == 2
    assert capsys.readouterr().err.startswith("mailroom: ")


# --- pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize(("current", "previous", "kind", "sentence"), [
    (124, 100, "quarter", "24% more than the same quarter last year"),
    (76, 100, "year", "24% fewer than the same year last year"),
    (50, 50, "month", "the same number as the same month last year"),
    (1001, 1000, "period", "about the same as the same period last year"),
    (7, 0, "quarter", "none in the same quarter last year to compare with"),
    (3, 8, "quarter", "63% fewer than the same quarter last year"),  # 62.5 rounds up
], ids=["more", "fewer", "same", "tiny", "none-before", "half-up"])
def test_change_sentences(current: int, previous: int, kind: str, sentence: str) -> None:
    assert Change(current, previous).sentence(kind) == sentence


@pytest.mark.parametrize(("start", "end", "kind"), [
    (date(2025, 1, 1), date(2025, 12, 31), "year"),
    (date(2025, 4, 1), date(2025, 6, 30), "quarter"),
    (date(2024, 2, 1), date(2024, 2, 29), "month"),
    (date(2025, 2, 1), date(2025, 4, 30), "period"),
    (date(2025, 1, 5), date(2025, 3, 31), "period"),
], ids=["year", "quarter", "leap-month", "three-months-off-quarter", "partial"])
def test_period_kind(start: date, end: date, kind: str) -> None:
    assert Period(start, end).kind() == kind


def test_period_arithmetic() -> None:
    leap = Period(date(2024, 2, 29), date(2024, 2, 29))
    assert leap.year_before() == Period(date(2023, 2, 28), date(2023, 2, 28))
    assert Period(date(2024, 11, 15), date(2025, 2, 1)).months() == [
        "2024-11", "2024-12", "2025-01", "2025-02"]
    start, end = Period(date(2025, 3, 30), date(2025, 3, 31)).utc_bounds(LONDON)
    assert start == datetime(2025, 3, 30, 0, 0, tzinfo=UTC)  # still GMT at midnight
    assert end == datetime(2025, 3, 31, 23, 0, tzinfo=UTC)  # BST midnight
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2025, 2, 1), date(2025, 1, 1))


@pytest.mark.parametrize(("value", "expected"), [
    (0, (1, 1)), (3, (3, 1)), (12, (15, 5)), (37, (40, 10)), (480, (600, 200)),
], ids=["zero", "small", "twelve", "tens", "hundreds"])
def test_nice_axis_maximum(value: int, expected: tuple[int, int]) -> None:
    assert nice_max(value) == expected
