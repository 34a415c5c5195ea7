"""The HTML report of the known dataset (tests/report_dataset.py) read in a browser:
Playwright drives Debian's Chromium (``/usr/bin/chromium``, never a downloaded one) and
reads the figures a reader sees on the page, then saves a screenshot of the whole page to
the test's tmp dir (and to ``$MAILROOM_REPORT_SCREENSHOTS`` when set)."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailroom.reports.cases import case_report
from mailroom.reports.data import build_report
from mailroom.reports.formats import render
from tests.chromium import launched_chromium
from tests.report_dataset import dataset_on, report_period

pytest.importorskip("playwright.sync_api")



@pytest.fixture(scope="module")
def report_file(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of Q1 2025, as ``mailroom report --format html`` writes it."""
    with dataset_on("sqlite", request, tmp_path_factory) as app:
        html = render(case_report(build_report(app, report_period())), "html",
                      app.settings.template_dirs)
    path = tmp_path_factory.mktemp("report-page") / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def page(report_file: Path) -> Iterator[Any]:
    with launched_chromium() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text))
        page.on("request", lambda request: errors.append(f"loaded {request.url}")
                if not request.url.startswith("file:") else None)
        page.goto(report_file.as_uri())
        yield page
        assert errors == []  # nothing refused by the CSP, nothing fetched


def card(page: Any, what: str) -> tuple[str, str]:
    """The large figure of the key-figure card ``what``, and the words under it."""
    item = page.locator(".figures li", has=page.locator(".what", has_text=what))
    assert item.is_visible()
    return item.locator(".big").inner_text(), item.locator(".more").inner_text()


def row(page: Any, table: str, label: str) -> list[str]:
    """The visible cells of the row ``label`` in the data table titled ``table``."""
    found = page.locator("table.data", has=page.locator("caption", has_text=f"{table}:"))
    line = found.locator("tbody tr", has=page.locator("th", has_text=label)).first
    assert line.is_visible()
    return [cell.strip() for cell in line.locator("th, td").all_inner_texts()]


def test_the_key_figures_a_reader_sees(page: Any) -> None:
    assert page.locator("h1").inner_text() == "Cases from 1 January 2025 to 31 March 2025"
    assert card(page, "cases opened") == (
        "25", "25% more than the same quarter last year (20)")
    big, more = card(page, "contacts")
    assert big == "20" and more.startswith("messages from professionals into 25 cases")
    assert card(page, "first answers within target") == ("80%", "20 of 25 cases within target")
    assert card(page, "removal rate")[0] == "60%"
    lead = page.locator("p.lead").inner_text()
    assert "1 more case was set aside (spam 1) and is not counted." in lead


def test_every_breakdown_against_last_year(page: Any) -> None:
    assert row(page, "Cases opened by month", "February 2025") == [
        "February 2025", "8", "6", "+2", "33% more"]
    assert row(page, "Cases by category", "Sexting") == [
        "Sexting", "4", "16%", "10", "-6", "60% fewer"]
    assert row(page, "Cases by professional role", "Social worker") == [
        "Social worker", "4", "16%", "0", "+4", "none a year before"]
    assert row(page, "Platforms named in cases", "Snapchat") == [
        "Snapchat", "4", "16%", "10", "-6", "60% fewer"]
    assert row(page, "Advice only and escalated cases", "Advice only") == [
        "Advice only", "22", "88%", "20", "+2", "10% more"]
    header = page.locator("table.data", has=page.locator(
        "caption", has_text="Cases by category:")).locator("thead th").all_inner_texts()
    assert header[-1] == "Against the same quarter last year"


def test_answers_within_target(page: Any) -> None:
    assert row(page, "Answers within target", "First answers") == [
        "First answers", "20", "5", "0", "80%"]
    assert row(page, "Answers within target", "Next answers") == [
        "Next answers", "4", "6", "0", "40%"]


def test_a_platform_that_did_not_answer_has_no_removal_rate(page: Any) -> None:
    snapchat = row(page, "Escalations to platforms by outcome", "Snapchat")
    # opened, answered, median answer, 4 outcomes, awaiting outcome, no response, removal rate
    assert snapchat == ["Snapchat", "1", "0", "—", "0", "0", "0", "0", "0", "1", "—"]
    assert row(page, "Outcomes of decided escalations", "Snapchat") == [
        "Snapchat", "0", "—", "—", "—", "—"]
    assert row(page, "Outcomes of decided escalations", "TikTok") == [
        "TikTok", "3", "67%", "0%", "33%", "0%"]
    assert row(page, "Escalations to platforms against last year", "TikTok") == [
        "TikTok", "4", "57%", "1", "+3", "300% more"]
    segment = page.locator("#chart-outcomes rect[data-key=snapchat]")
    assert segment.get_attribute("data-series") == "no_response"
    assert segment.is_visible()
    assert page.locator(".legend li", has_text="No response").first.is_visible()


def test_every_table_fits_the_page(page: Any) -> None:
    """No figure hides beyond a table's edge, to scroll to (or to be cut off in print)."""
    clipped = page.evaluate("""() => [...document.querySelectorAll('.table-box')]
        .filter(box => box.scrollWidth > box.clientWidth)
        .map(box => box.querySelector('caption').textContent)""")
    assert clipped == []


def test_screenshot_of_the_whole_page(page: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.png"
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1100 and height > 3000  # every section, not a blank page
    target = os.environ.get("MAILROOM_REPORT_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)
