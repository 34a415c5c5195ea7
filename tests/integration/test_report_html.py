"""The HTML report, loaded in headless Chromium: charts drawn, nothing blocked, no errors.

Chromium is the Debian package ``chromium``. Without ``/usr/bin/chromium``
these tests are skipped, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailroom.app import App
from mailroom.reports.cases import case_report
from mailroom.reports.data import build_report
from mailroom.reports.formats import render
from tests.report_dataset import EXPECTED, dataset_on, report_period

CHROMIUM = Path(os.environ.get("MAILROOM_TEST_CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() == "true"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]


class ElementCollector(HTMLParser):
    """Every start tag of a document, in order, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}))


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if IN_CI:
        pytest.fail(f"headless Chromium is required in CI but {CHROMIUM} is missing")
    pytest.skip(f"{CHROMIUM} not installed (Debian package: chromium)")


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@dataclass
class Loaded:
    html: str  # as mailroom wrote it
    dom: list[Element]  # as Chromium parsed it
    stderr: str
    screenshot: Path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, html_app: App) -> Iterator[Loaded]:
    require_chromium()
    app = html_app
    directory = tmp_path_factory.mktemp("html-report")
    page = directory / "report.html"
    html = render(case_report(build_report(app, report_period())), "html",
                  app.settings.template_dirs)
    page.write_text(html, encoding="utf-8")
    dumped = chromium(page, directory / "profile", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    shot = directory / "report.png"
    taken = chromium(page, directory / "profile", f"--screenshot={shot}",
                     "--window-size=1100,3200")
    assert taken.returncode == 0, taken.stderr[-2000:]
    collector = ElementCollector()
    collector.feed(dumped.stdout)
    yield Loaded(html, collector.elements, dumped.stderr + taken.stderr, shot)


@pytest.fixture(scope="module")
def html_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[App]:
    """The dataset on SQLite only: rendering does not depend on the database."""
    with dataset_on("sqlite", request, tmp_path_factory) as app:
        yield app


def bars(loaded: Loaded, chart: str) -> list[dict[str, str]]:
    """The ``<rect class="bar …">`` elements inside the SVG with id ``chart``."""
    out, inside = [], False
    for element in loaded.dom:
        if element.tag == "svg":
            inside = element.attrs.get("id") == chart
        elif inside and element.tag == "rect" and "bar" in element.attrs.get("class", ""):
            out.append(element.attrs)
    return out


def test_every_chart_is_an_accessible_svg(loaded: Loaded) -> None:
    charts = {e.attrs["id"]: e.attrs for e in loaded.dom if e.tag == "svg"}
    assert set(charts) == {"chart-months", "chart-categories", "chart-roles",
                           "chart-platforms", "chart-handling", "chart-outcomes"}
    ids = {e.attrs.get("id") for e in loaded.dom}
    for ident, attrs in charts.items():
        assert attrs["role"] == "img"
        assert attrs["aria-labelledby"] == f"{ident}-title {ident}-desc"
        assert {f"{ident}-title", f"{ident}-desc"} <= ids
    # every table has its chart, but the answers within target, the outcome rates, the
    # escalations against last year and the repeat accounts (figures per platform, no chart)
    assert sum(1 for e in loaded.dom if e.tag == "table") == len(charts) + 4


def test_month_bars_beside_last_year(loaded: Loaded) -> None:
    drawn = bars(loaded, "chart-months")
    values = {(b["data-series"], b["data-key"]): int(b["data-value"]) for b in drawn}
    expected = {}
    for month, cases, previous in EXPECTED["by_month"]:
        expected[("current", month)], expected[("previous", month)] = cases, previous
    assert values == expected
    heights = {(b["data-series"], b["data-key"]): float(b["height"]) for b in drawn}
    per_case = heights[("current", "2025-03")] / 12
    for key, value in values.items():  # heights in proportion to the counts
        assert heights[key] == pytest.approx(value * per_case, abs=0.2)


@pytest.mark.parametrize(("chart", "expected"), [
    ("chart-categories", EXPECTED["by_category"]),
    ("chart-roles", EXPECTED["by_role"]),
    ("chart-platforms", EXPECTED["by_platform"]),
], ids=["categories", "roles", "platforms"])
def test_breakdown_bars(loaded: Loaded, chart: str, expected: dict[str, int]) -> None:
    drawn = bars(loaded, chart)
    assert {b["data-key"]: int(b["data-value"]) for b in drawn} == expected
    widths = [float(b["width"]) for b in drawn]
    assert widths == sorted(widths, reverse=True) and widths[-1] > 0


def test_escalation_outcomes_stacked(loaded: Loaded) -> None:
    drawn = bars(loaded, "chart-outcomes")
    segments = {(b["data-key"], b["data-series"]): int(b["data-value"]) for b in drawn}
    assert segments == {
        ("tiktok", "removed"): 2, ("tiktok", "declined"): 1, ("tiktok", "no_response"): 1,
        ("instagram", "removed"): 1, ("instagram", "restricted"): 1,
        ("snapchat", "no_response"): 1,
    }


def test_self_contained_and_no_errors(loaded: Loaded) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", loaded.html)
    assert "<script" not in loaded.html and "@import" not in loaded.html
    assert "default-src 'none'" in loaded.html  # the CSP would report any load attempt
    console = [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


def test_screenshot_is_a_full_page(loaded: Loaded) -> None:
    data = loaded.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 3200)
    assert len(data) > 100_000  # charts and text, not a blank page
