"""Render a :class:`~mailroom.reports.data.Report` as text, JSON, CSV or HTML.

- **text** (default): aligned tables for a terminal or an email.
- **json**: one document; the keys are those of :func:`report_dict`. Business
  hours are rounded to 2 decimals, percentages to 1, rates (0–1) to 4; a
  figure that cannot be computed (no answer yet) is ``null``.
- **csv**: long format, one figure per row, header ``section,key,metric,value``:

  ==============  ====================  ========================================
  section         key                   metrics
  ==============  ====================  ========================================
  period          current, previous     from, to (ISO dates)
  cases           opened                count, previous, change, change_percent
  first_response  all                   cases, answered, median_business_hours
  month           YYYY-MM               cases, previous (same month a year before)
  category        category key          cases
  role            role key              cases
  platform        platform key          cases
  escalation      platform key, or all  opened, answered,
                                        median_answer_business_hours,
                                        outcome_<outcome> (removed, restricted,
                                        declined, no_action, then any other),
                                        awaiting_outcome, removal_rate
  ==============  ====================  ========================================

  An empty value means "cannot be computed" (no answer yet, nothing to compare).
- **html**: one self-contained file (``templates/reports/report.html.j2``):
  inline CSS, charts as inline SVG (each with a title, a description and a
  data table), no script and no external resource — a Content-Security-Policy
  forbids loading any — so it reads the same offline, printed or archived.

Chart geometry is computed here (pure) and drawn by the template.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mailroom.reports.data import OUTCOMES, EscalationRow, Report, month_label
from mailroom.vocabulary import EscalationOutcome

__all__ = [
    "FORMATS",
    "Chart",
    "csv_rows",
    "render_csv",
    "render_html",
    "render_json",
    "render_report",
    "render_text",
    "report_dict",
]

FORMATS = ("text", "json", "csv", "html")
HTML_TEMPLATE = "reports/report.html.j2"
OUTCOME_LABELS = {
    EscalationOutcome.REMOVED: "Removed", EscalationOutcome.RESTRICTED: "Restricted",
    EscalationOutcome.DECLINED: "Declined", EscalationOutcome.NO_ACTION: "No action",
    "awaiting": "Awaiting outcome",
}


def render_report(report: Report, fmt: str, templates_dir: Path) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "html":
        return render_html(report, templates_dir)
    renderers = {"text": render_text, "json": render_json, "csv": render_csv}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return renderers[fmt](report)


def label(key: str) -> str:
    """``social_worker`` → ``Social worker``."""
    text = key.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def fmt_hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f}"


def fmt_percent(rate: float | None) -> str:
    """A 0–1 rate as a whole percentage (half up): 0.6667 → ``67%``."""
    return "-" if rate is None else f"{int(rate * 100 + 0.5)}%"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# --- JSON ----------------------------------------------------------------------------


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain data (the JSON format)."""
    cases, response = report.cases, report.first_response
    return {
        "helpline": report.helpline,
        "generated_at": report.generated_at.isoformat(),
        "timezone": report.timezone,
        "opening_hours": report.opening_hours,
        "period": _period_dict(report.period) | {"kind": report.kind},
        "previous_period": _period_dict(report.previous_period),
        "cases": {
            "opened": cases.current, "previous": cases.previous, "change": cases.absolute,
            "change_percent": _round(cases.percent, 1), "summary": cases.sentence(report.kind),
        },
        "by_month": [
            {"month": m.month, "cases": m.cases, "previous": m.previous}
            for m in report.by_month
        ],
        "by_category": dict(report.by_category),
        "by_role": dict(report.by_role),
        "by_platform": dict(report.by_platform),
        "first_response": {
            "cases": response.cases, "answered": response.answered,
            "unanswered": response.unanswered,
            "median_business_hours": _round(response.median_hours, 2),
        },
        "escalations": [_escalation_dict(row) for row in report.escalations],
        "escalation_total": _escalation_dict(report.escalation_total),
    }


def _period_dict(period: Any) -> dict[str, Any]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def _escalation_dict(row: EscalationRow) -> dict[str, Any]:
    return {
        "platform": row.platform, "name": row.name, "opened": row.opened,
        "answered": row.answered,
        "median_answer_business_hours": _round(row.median_answer_hours, 2),
        "outcomes": {o: row.outcomes.get(o, 0) for o in (*OUTCOMES, *row.outcomes)},
        "with_outcome": row.with_outcome,
        "awaiting_outcome": row.awaiting_outcome, "removal_rate": _round(row.removal_rate, 4),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


# --- CSV -----------------------------------------------------------------------------

CsvRow = tuple[str, str, str, Any]


def csv_rows(report: Report) -> Iterator[CsvRow]:
    """One figure per row: (section, key, metric, value); None for "cannot be computed"."""
    data = report_dict(report)
    for which in ("period", "previous_period"):
        key = "current" if which == "period" else "previous"
        yield ("period", key, "from", data[which]["from"])
        yield ("period", key, "to", data[which]["to"])
    for metric in ("opened", "previous", "change", "change_percent"):
        yield ("cases", "opened", "count" if metric == "opened" else metric,
               data["cases"][metric])
    for metric in ("cases", "answered", "median_business_hours"):
        yield ("first_response", "all", metric, data["first_response"][metric])
    for month in data["by_month"]:
        yield ("month", month["month"], "cases", month["cases"])
        yield ("month", month["month"], "previous", month["previous"])
    for section, counts in (("category", report.by_category), ("role", report.by_role),
                            ("platform", report.by_platform)):
        yield from ((section, key, "cases", n) for key, n in counts.items())
    for row in [*data["escalations"], data["escalation_total"]]:
        yield from _escalation_csv(row)


def _escalation_csv(row: dict[str, Any]) -> Iterator[CsvRow]:
    key = row["platform"]
    for metric in ("opened", "answered", "median_answer_business_hours"):
        yield ("escalation", key, metric, row[metric])
    for outcome, count in row["outcomes"].items():
        yield ("escalation", key, f"outcome_{outcome}", count)
    yield ("escalation", key, "awaiting_outcome", row["awaiting_outcome"])
    yield ("escalation", key, "removal_rate", row["removal_rate"])


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "metric", "value"))
    for section, key, metric, value in csv_rows(report):
        writer.writerow((section, key, metric, "" if value is None else value))
    return out.getvalue()


# --- text ----------------------------------------------------------------------------


def render_text(report: Report) -> str:
    parts = [
        _text_heading(report), _text_months(report),
        _text_counts("Category", report.by_category, report.cases.current, label),
        _text_counts("Professional role", report.by_role, report.cases.current, label),
        _text_counts("Platform named", report.by_platform, report.cases.current,
                     report.platform_name),
        _text_escalations(report),
        f"Business hours: {report.opening_hours}. A case naming several platforms counts "
        "under each.",
    ]
    return "\n\n".join(parts) + "\n"


def _text_heading(report: Report) -> str:
    cases, response = report.cases, report.first_response
    return "\n".join([
        f"{report.helpline}: cases from {report.period.label()}",
        f"Compared with {report.previous_period.label()} ({report.timezone})",
        "",
        f"Cases opened: {cases.current} ({cases.sentence(report.kind)}: {cases.previous})",
        f"Median time to first response: {fmt_hours(response.median_hours)} business hours "
        f"({response.answered} of {response.cases} cases answered)",
    ])


def _text_months(report: Report) -> str:
    rows = [[month_label(m.month), m.cases, m.previous, f"{m.cases - m.previous:+d}"]
            for m in report.by_month]
    cases = report.cases
    rows.append(["Total", cases.current, cases.previous, f"{cases.absolute:+d}"])
    return _table(["Month", "Cases", "Year before", "Change"], rows, "lrrr")


def _text_counts(title: str, counts: dict[str, int], total: int, name: Any) -> str:
    if not counts:
        return f"{title}: none"
    rows = [[name(key), n, fmt_percent(_share(n, total))] for key, n in counts.items()]
    return _table([title, "Cases", "Share"], rows, "lrr")


def _text_escalations(report: Report) -> str:
    if not report.escalations:
        return "Escalations to platforms: none in this period"
    headers = ["Escalations", "Opened", "Answered", "Median answer (h)",
               *(OUTCOME_LABELS[o] for o in OUTCOMES), "Awaiting", "Removal rate"]
    rows = [_escalation_cells(row) for row in [*report.escalations, report.escalation_total]]
    return _table(headers, rows, "l" + "r" * (len(headers) - 1))


def _escalation_cells(row: EscalationRow) -> list[Any]:
    return [row.name, row.opened, row.answered, fmt_hours(row.median_answer_hours),
            *(row.outcomes.get(o, 0) for o in OUTCOMES), row.awaiting_outcome,
            fmt_percent(row.removal_rate)]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str) -> str:
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.ljust(w) if a == "l" else c.rjust(w)
                  for c, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


# --- charts (pure geometry) ----------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # CSS class suffix: current, previous, category, removed, …
    key: str
    value: int
    title: str  # tooltip and accessible name


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    cls: str = ""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = "grid"


@dataclass
class Chart:
    """One SVG chart and the data table that goes with it."""

    id: str
    title: str
    description: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (series, label)
    headers: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)


WIDTH = 900
HALF_WIDTH = 440


def nice_max(value: int) -> tuple[int, int]:
    """An axis maximum at or above ``value`` and its tick step (1, 2 or 5 × 10^k)."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    return step * math.ceil(value / step), step


def month_chart(report: Report) -> Chart:
    """Grouped columns: each month of the period beside the same month a year before."""
    now_name, before_name = _series_names(report)
    chart = Chart(
        "chart-months", "Cases opened by month",
        f"Cases opened each month, {now_name} beside {before_name}. "
        f"{report.cases.current} cases in all, {report.cases.sentence(report.kind)}.",
        WIDTH, 300, legend=[("current", now_name), ("previous", before_name)],
        headers=["Month", now_name, before_name, "Change"],
    )
    top, bottom, left, right = 20, 254, 44, WIDTH - 12
    peak, step = nice_max(max([m.cases for m in report.by_month] +
                              [m.previous for m in report.by_month] + [1]))
    scale = (bottom - top) / peak
    _y_axis(chart, peak, step, scale, left, right, bottom)
    group = (right - left) / len(report.by_month)
    bar = min(34.0, group * 0.36)
    for index, row in enumerate(report.by_month):
        centre = left + group * (index + 0.5)
        _month_bars(chart, row, centre, bar, scale, bottom, len(report.by_month) <= 12)
        _month_label(chart, row.month, centre, bottom, first=index == 0)
        chart.rows.append([month_label(row.month), row.cases, row.previous,
                           f"{row.cases - row.previous:+d}"])
    return chart


def _series_names(report: Report) -> tuple[str, str]:
    start, end = report.period.start, report.period.end
    if start.year == end.year:
        return str(start.year), str(start.year - 1)
    return "This period", "A year before"


def _y_axis(chart: Chart, peak: int, step: int, scale: float, left: float, right: float,
            bottom: float) -> None:
    for tick in range(0, peak + 1, step):
        y = bottom - tick * scale
        chart.lines.append(Line(left, y, right, y, "axis" if tick == 0 else "grid"))
        chart.texts.append(Text(left - 6, y + 4, str(tick), "end", "tick"))


def _month_bars(chart: Chart, row: Any, centre: float, bar: float, scale: float,
                bottom: float, values: bool) -> None:
    name = month_label(row.month)
    for series, value, x in (("previous", row.previous, centre - bar - 1),
                             ("current", row.cases, centre + 1)):
        height = value * scale
        year = "a year before" if series == "previous" else "this period"
        chart.bars.append(Bar(x, bottom - height, bar, height, series, row.month, value,
                              f"{name}, {year}: {value} cases"))
        if values:
            chart.texts.append(Text(x + bar / 2, bottom - height - 4, str(value), "middle",
                                    f"value value-{series}"))


def _month_label(chart: Chart, month: str, centre: float, bottom: float, *, first: bool) -> None:
    short = month_label(month, short=True)
    name, year = short.split()
    chart.texts.append(Text(centre, bottom + 16, name, "middle", "tick"))
    if first or name == "Jan":
        chart.texts.append(Text(centre, bottom + 31, year, "middle", "tick year"))


def bar_chart(ident: str, title: str, counts: dict[str, int], *, names: Any, total: int,
              series: str, what: str, width: int = WIDTH) -> Chart:
    """Horizontal bars, one per key, largest first, each with its count and share."""
    rows = list(counts.items())
    height = 24 + 30 * max(len(rows), 1)
    description = f"{title}: " + "; ".join(f"{names(k)} {n}" for k, n in rows) + "."
    chart = Chart(ident, title, description if rows else f"{title}: none.", width, height,
                  headers=[what, "Cases", "Share of all cases"])
    left = 190 if width >= WIDTH else 120
    right = width - 80
    peak = max([n for _, n in rows] + [1])
    for index, (key, n) in enumerate(rows):
        y, length = 12 + 30 * index, (right - left) * n / peak
        share = fmt_percent(_share(n, total))
        chart.bars.append(Bar(left, y, length, 20, series, key, n,
                              f"{names(key)}: {n} cases ({share})"))
        chart.texts.append(Text(left - 8, y + 15, names(key), "end", "name"))
        chart.texts.append(Text(left + length + 6, y + 15, f"{n} · {share}", "start", "value"))
        chart.rows.append([names(key), n, share])
    chart.lines.append(Line(left, 6, left, height - 6, "axis"))
    return chart


def outcome_chart(report: Report) -> Chart:
    """Stacked bars per platform: escalations by outcome, awaiting ones last."""
    rows = report.escalations
    series = [*OUTCOMES, "awaiting"]
    chart = Chart(
        "chart-outcomes", "Escalations to platforms by outcome",
        _outcome_description(report), WIDTH, 16 + 34 * max(len(rows), 1),
        legend=[(s, OUTCOME_LABELS[s]) for s in series],
        headers=["Platform", "Opened", "Answered", "Median answer (business hours)",
                 *(OUTCOME_LABELS[s] for s in series), "Removal rate"],
    )
    left, right = 190, WIDTH - 110
    peak = max([r.opened for r in rows] + [1])
    for index, row in enumerate(rows):
        _outcome_row(chart, row, 8 + 34 * index, left, (right - left) / peak)
        chart.rows.append(_escalation_cells(row)[:4] + [
            *(row.outcomes.get(o, 0) for o in OUTCOMES), row.awaiting_outcome,
            fmt_percent(row.removal_rate)])
    return chart


def _outcome_row(chart: Chart, row: EscalationRow, y: float, left: float, unit: float) -> None:
    x = left
    counts = [(o, row.outcomes.get(o, 0)) for o in OUTCOMES] + [("awaiting",
                                                                   row.awaiting_outcome)]
    for outcome, n in counts:
        if not n:
            continue
        width = n * unit
        chart.bars.append(Bar(x, y, width, 22, outcome, row.platform, n,
                              f"{row.name}, {OUTCOME_LABELS[outcome].lower()}: {n}"))
        if width >= 18:
            chart.texts.append(Text(x + width / 2, y + 15.5, str(n), "middle",
                                    f"inside inside-{outcome}"))
        x += width
    chart.texts.append(Text(left - 8, y + 15.5, row.name, "end", "name"))
    chart.texts.append(Text(x + 6, y + 15.5, f"{row.opened} opened", "start", "value"))


def _outcome_description(report: Report) -> str:
    total = report.escalation_total
    if not total.opened:
        return "No escalations to platforms in this period."
    parts = [f"{r.name}: {r.opened} opened, {r.answered} answered, "
             f"{r.outcomes.get(EscalationOutcome.REMOVED, 0)} removed" for r in report.escalations]
    return (f"{total.opened} escalations to {len(report.escalations)} platforms. "
            + "; ".join(parts) + ".")


# --- HTML ----------------------------------------------------------------------------


def html_context(report: Report) -> dict[str, Any]:
    """What the HTML template shows: the report, its charts and preformatted figures."""
    total = report.cases.current
    return {
        "report": report,
        "kind": report.kind,
        "change": report.cases.sentence(report.kind),
        "median_response": fmt_hours(report.first_response.median_hours),
        "escalations": report.escalation_total,
        "removal_rate": fmt_percent(report.escalation_total.removal_rate),
        "answer_rate": fmt_percent(_share(report.escalation_total.answered,
                                          report.escalation_total.opened)),
        "median_answer": fmt_hours(report.escalation_total.median_answer_hours),
        "months": month_chart(report),
        "categories": bar_chart("chart-categories", "Cases by category", report.by_category,
                                names=label, total=total, series="category",
                                what="Category", width=HALF_WIDTH),
        "roles": bar_chart("chart-roles", "Cases by professional role", report.by_role,
                           names=label, total=total, series="role", what="Professional role",
                           width=HALF_WIDTH),
        "platforms": bar_chart("chart-platforms", "Platforms named in cases",
                               report.by_platform, names=report.platform_name, total=total,
                               series="platform", what="Platform"),
        "outcomes": outcome_chart(report),
        "generated": _local_time(report),
    }


def _local_time(report: Report) -> str:
    local = report.generated_at.astimezone(ZoneInfo(report.timezone))
    return f"{local.day} {local:%B %Y, %H:%M}"


def render_html(report: Report, templates_dir: Path) -> str:
    env = Environment(loader=FileSystemLoader(templates_dir), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _svg_number
    return env.get_template(HTML_TEMPLATE).render(html_context(report))


def _svg_number(value: float) -> str:
    """Coordinates with at most one decimal, no trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
