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
from mailroom.reports.formats import csv_rows, json_data, render
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
    assert counts == EXPECTED[attribute]
    assert list(counts.values()) == sorted(counts.values(), reverse=True)


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
    assert row.median_answer_hours == pytest.approx(expected["median"])
    assert row.outcomes == expected["outcomes"]
    assert row.removal_rate == pytest.approx(expected["removal_rate"])


def test_escalations_in_all_and_in_order(report: Report) -> None:
    total, expected = report.escalation_total, EXPECTED["escalation_total"]
    assert [r.platform for r in report.escalations] == ["tiktok", "instagram", "snapchat"]
    assert (total.opened, total.answered) == (expected["opened"], expected["answered"])
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


def test_text_format_tables(report: Report, dataset: App) -> None:
    text = render(case_report(report), "text", dataset.settings.template_dirs)
    assert "Cases opened: 25 (25% more than the same quarter last year: 20)" in text
    assert "Median time to first response: 4.0 business hours (22 of 25 cases answered)" in text
    lines = text.splitlines()
    assert any(line.split() == ["February", "2025", "8", "6", "+2"] for line in lines)
    assert any(line.split() == ["Social", "worker", "4", "16%"] for line in lines)
    assert any(line.split()[:2] == ["TikTok", "4"] and line.endswith("67%") for line in lines)
    assert any(line.split()[:3] == ["All", "platforms", "7"] and line.endswith("60%")
               for line in lines)


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "html"],
                         ids=["text", "json", "csv", "html"])
def test_a_period_without_cases_renders_in_every_format(dataset: App, fmt: str) -> None:
    empty = build_report(dataset, Period(date(2019, 1, 1), date(2019, 12, 31)))
    assert (empty.cases.current, empty.escalations, empty.first_response.median_hours) == (
        0, [], None)
    text = render(case_report(empty), fmt, dataset.settings.template_dirs)
    expected = {"text": "Escalations to platforms: none in this period",
                "json": '"median_business_hours": null',
                "csv": "first_response,all,median_business_hours,",
                "html": "None in this period."}[fmt]
    assert expected in text


# --- command line --------------------------------------------------------------------


def test_cli_report_json_to_stdout(dataset: App, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(["--config", str(dataset.settings.source), "report",
                      "--from", "2025-01-01", "--to", "2025-03-31", "--format", "json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cases"]["opened"] == 25
    assert data["by_platform"] == EXPECTED["by_platform"]


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
