"""Every format renders any report document: a report the formats have never seen."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from mailroom.reports.data import Period
from mailroom.reports.document import (
    HOURS,
    PERCENT,
    RATE,
    SIGNED,
    TEXT,
    Chart,
    Column,
    Definition,
    Document,
    Figure,
    Figures,
    Record,
    Row,
    Section,
    Series,
    Span,
    Table,
    for_data,
    for_people,
)
from mailroom.reports.formats import FORMATS, render
from mailroom.resources import shipped_path

TEMPLATES = [shipped_path("templates")]
MAY = Period(date(2025, 5, 1), date(2025, 5, 31))


def file_report() -> Document:
    """A made-up report of withheld files: a new section, a chartless table, a total."""
    types = Table(
        "types", "by_type", "type", "Files by type", head=Column("type", "Type", kind=TEXT),
        columns=(Column("files", "Files"),
                 Column("share", "Share of all files", kind=RATE, short="Share", data=False)),
        rows=(Row("image", "Images", {"files": 6, "share": 0.75}),
              Row("video", "Videos", {"files": 2, "share": 0.25})),
        empty="Type: none", note="By the type each file declared.", half=True,
        chart=Chart("bars", (Series("files", "category", title="{row}: {value} files"),),
                    "Files by type: Images 6; Videos 2.", label="{files} · {share}"),
    )
    reasons = Table(
        "reasons", "reasons", "reason", "Why files were withheld",
        head=Column("reason", "Reason", kind=TEXT),
        columns=(Column("files", "Files"), Column("hours", "Median hours to withhold",
                                                  kind=HOURS, short="Hours")),
        rows=(Row("withhold", "#withhold", {"files": 5, "hours": 1.25}),
              Row("blocklist", "Blocklist", {"files": 3, "hours": None})),
        total=Row("all", "All reasons", {"files": 8, "hours": 0.5}), total_key="reason_total",
        empty="Reasons: none",
    )
    return Document(
        publisher="Test Helpline", kind="file report", title="Files from 1 May 2025 to 31 May 2025",
        subtitle="Withheld files", generated_at=datetime(2025, 6, 1, 9, tzinfo=UTC),
        timezone="Europe/London", period=MAY, previous=None,
        introduction=(Span("The helpline withheld "), Span("8 files", strong=True), Span(".")),
        sections=(Section("files", "Files withheld", (
            Figures((Figure("Files withheld", 8, detail="by #withhold or the blocklist",
                            previous=5),
                     Figure("Median time to withhold", 0.5, HOURS, unit="hours",
                            summary=False))),
            Record("files", ("files", "all"), (Column("withheld"), Column("change", kind=SIGNED),
                                               Column("note", kind=TEXT, csv=None)),
                   {"withheld": 8, "change": 3, "note": "more than in April"}),
            types, reasons,
        )),),
        definitions=(Definition("Withheld", "Never sent, in any case."),),
        footnote="Counts of files, never their names.",
    )


def test_text_shows_the_summary_figures_and_every_table() -> None:
    text = render(file_report(), "text", TEMPLATES)
    parts = text.split("\n\n")
    assert parts[0] == "Test Helpline: files from 1 May 2025 to 31 May 2025\n" \
                       "Withheld files (Europe/London)"
    assert parts[1] == "Files withheld: 8 (by #withhold or the blocklist: 5)"
    assert parts[2].splitlines() == ["Type    Files  Share", "Images      6    75%",
                                     "Videos      2    25%"]
    assert parts[3].splitlines() == ["Reason       Files  Hours", "#withhold        5    1.2",
                                     "Blocklist        3      —", "All reasons      8    0.5"]
    assert parts[4] == "Counts of files, never their names.\n"
    assert "Median time to withhold" not in text  # not a summary figure


def test_markdown_shows_every_section_figure_and_table() -> None:
    text = render(file_report(), "markdown", TEMPLATES)
    parts = text.split("\n\n")
    assert parts[:4] == [
        "# Test Helpline: files from 1 May 2025 to 31 May 2025",
        "Withheld files (Europe/London)", "The helpline withheld 8 files.",
        "## Files withheld"]
    assert parts[4].splitlines() == [
        "- Files withheld: 8 (by \\#withhold or the blocklist: 5)",
        "- Median time to withhold: 0.5 hours"]
    assert "\n".join(parts[5:8]) == "\n".join([
        "### Files by type", "By the type each file declared.",
        "| Type | Files | Share of all files |\n| --- | ---: | ---: |\n"
        "| Images | 6 | 75% |\n| Videos | 2 | 25% |"])
    assert parts[8:10] == ["### Why files were withheld",
                           "| Reason | Files | Median hours to withhold |\n"
                           "| --- | ---: | ---: |\n| \\#withhold | 5 | 1.2 |\n"
                           "| Blocklist | 3 | — |\n| **All reasons** | **8** | **0.5** |"]
    assert parts[10:] == ["## About these figures", "- **Withheld**: Never sent, in any case.",
                          "Counts of files, never their names.\n"]
    assert "more than in April" not in text  # a record is data only


def test_json_holds_the_records_and_tables_by_their_keys() -> None:
    data = json.loads(render(file_report(), "json", TEMPLATES))
    assert data["helpline"] == "Test Helpline"
    assert data["period"] == {"from": "2025-05-01", "to": "2025-05-31", "kind": "month"}
    assert "previous_period" not in data
    assert data["files"] == {"withheld": 8, "change": 3, "note": "more than in April"}
    assert data["by_type"] == {"image": 6, "video": 2}  # one figure per row: key → figure
    assert data["reasons"] == [{"reason": "withhold", "files": 5, "hours": 1.25},
                               {"reason": "blocklist", "files": 3, "hours": None}]
    assert data["reason_total"] == {"reason": "all", "files": 8, "hours": 0.5}


def test_csv_has_one_figure_per_row() -> None:
    rows = list(csv.reader(io.StringIO(render(file_report(), "csv", TEMPLATES))))
    assert rows == [
        ["section", "key", "metric", "value"],
        ["period", "current", "from", "2025-05-01"], ["period", "current", "to", "2025-05-31"],
        ["files", "all", "withheld", "8"], ["files", "all", "change", "3"],
        ["type", "image", "files", "6"], ["type", "video", "files", "2"],
        ["reason", "withhold", "files", "5"], ["reason", "withhold", "hours", "1.25"],
        ["reason", "blocklist", "files", "3"], ["reason", "blocklist", "hours", ""],
        ["reason", "all", "files", "8"], ["reason", "all", "hours", "0.5"],
    ]


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data.strip())


def test_html_draws_the_chart_and_lists_the_figures() -> None:
    page = Collector()
    page.feed(render(file_report(), "html", TEMPLATES))
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert {"files", "chart-types", "chart-types-caption", "table-reasons-caption",
            "about"} <= ids
    bars = [attrs for tag, attrs in page.tags if tag == "rect"]
    assert [(b["data-key"], b["data-value"]) for b in bars] == [("image", "6"), ("video", "2")]
    assert sum(1 for tag, _ in page.tags if tag == "table") == 2
    words = [text for text in page.text if text]
    assert "8 files" in words and "Files withheld" in words
    assert "by #withhold or the blocklist (5)" in words  # the card's words
    assert "Median time to withhold".lower() in words  # every figure is a card
    assert "#withhold" in words and "1.2" in words and "All reasons" not in words
    assert "Never sent, in any case." in words
    assert "Test Helpline · generated 1 June 2025, 10:00 by mailroom" in words


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of text, markdown, json, csv, html"):
        render(file_report(), "pdf", TEMPLATES)
    assert FORMATS == ("text", "markdown", "json", "csv", "html")


@pytest.mark.parametrize(("value", "kind", "people", "data"), [
    (3, "count", "3", 3), (-2, SIGNED, "-2", -2), (4.0, HOURS, "4.0", 4.0),
    (2.345, HOURS, "2.3", 2.35), (2 / 3, RATE, "67%", 0.6667), (62.5, PERCENT, "62.5%", 62.5),
    (None, HOURS, "—", None), ("TikTok", TEXT, "TikTok", "TikTok"),
], ids=["count", "signed", "hours", "hours-rounded", "rate", "percent", "none", "text"])
def test_how_each_kind_reads(value: object, kind: str, people: str, data: object) -> None:
    assert for_people(value, kind) == people
    assert for_data(value, kind) == data
