"""The geometry of a table's chart (pure): bars, texts and lines for an inline SVG.

:func:`draw` lays out any :class:`~mailroom.reports.document.Table` that has a
:class:`~mailroom.reports.document.Chart`, by its kind (``columns``, ``bars``,
``stacked``); the HTML template only writes the shapes down. Coordinates are
in SVG user units: a chart is 900 wide, or 440 for a table half a page wide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailroom.reports.document import Chart, Row, Table, for_people

__all__ = ["Bar", "Drawing", "Line", "Text", "draw", "nice_max"]

WIDTH = 900
HALF_WIDTH = 440
MAX_LABELLED_GROUPS = 12  # a columns chart writes each value above its bar up to this


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # CSS class suffix: current, previous, category, removed, …
    key: str
    value: Any
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
class Drawing:
    """One SVG chart."""

    id: str
    title: str
    description: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (series, label)


def draw(table: Table) -> Drawing | None:
    """The table's chart, or None when it has none."""
    if table.chart is None:
        return None
    return DRAWERS[table.chart.kind](table, table.chart)


def nice_max(value: int) -> tuple[int, int]:
    """An axis maximum at or above ``value`` and its tick step (1, 2 or 5 × 10^k)."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    return step * math.ceil(value / step), step


def _drawing(table: Table, chart: Chart, width: int, height: int) -> Drawing:
    """An empty drawing with its legend: the series named, in the table's column order."""
    order = [column.key for column in table.columns]
    named = sorted((s for s in chart.series if s.legend), key=lambda s: order.index(s.column))
    return Drawing(f"chart-{table.id}", table.title, chart.description, width, height,
                   legend=[(s.style, s.legend) for s in named])


def _shown(table: Table, row: Row) -> dict[str, str]:
    """The row's values as people read them, by column key."""
    return {c.key: for_people(row.values.get(c.key), c.kind) for c in table.columns}


def _title(template: str, table: Table, row: Row, value: Any, kind: str) -> str:
    return template.format(row=row.label, value=for_people(value, kind), **_shown(table, row))


# --- columns: groups of vertical bars on a y axis -------------------------------------------


def columns_chart(table: Table, chart: Chart) -> Drawing:
    drawing = _drawing(table, chart, WIDTH, 300)
    top, bottom, left, right = 20, 254, 44, WIDTH - 12
    values = [row.values[s.column] or 0 for row in table.rows for s in chart.series]
    peak, step = nice_max(max([*values, 1]))
    scale = (bottom - top) / peak
    _y_axis(drawing, peak, step, scale, left, right, bottom)
    group = (right - left) / max(len(table.rows), 1)
    bar = min(34.0, group * 0.36)
    labelled = len(table.rows) <= MAX_LABELLED_GROUPS
    previous = ""
    for index, row in enumerate(table.rows):
        centre = left + group * (index + 0.5)
        _column_group(drawing, table, chart, row, centre, bar, scale, bottom, labelled)
        previous = _group_label(drawing, row, centre, bottom, previous, first=index == 0)
    return drawing


def _y_axis(drawing: Drawing, peak: int, step: int, scale: float, left: float, right: float,
            bottom: float) -> None:
    for tick in range(0, peak + 1, step):
        y = bottom - tick * scale
        drawing.lines.append(Line(left, y, right, y, "axis" if tick == 0 else "grid"))
        drawing.texts.append(Text(left - 6, y + 4, str(tick), "end", "tick"))


def _column_group(drawing: Drawing, table: Table, chart: Chart, row: Row, centre: float,
                  bar: float, scale: float, bottom: float, labelled: bool) -> None:
    """One bar per series, side by side, 2 apart, centred on ``centre``."""
    x = centre - (len(chart.series) * (bar + 2) - 2) / 2
    for series in chart.series:
        kind = table.column(series.column).kind
        value = row.values[series.column]
        height = (value or 0) * scale
        drawing.bars.append(Bar(x, bottom - height, bar, height, series.style, row.key, value,
                                _title(series.title, table, row, value, kind)))
        if labelled:
            drawing.texts.append(Text(x + bar / 2, bottom - height - 4, for_people(value, kind),
                                      "middle", f"value value-{series.style}"))
        x += bar + 2


def _group_label(drawing: Drawing, row: Row, centre: float, bottom: float, previous: str, *,
                 first: bool) -> str:
    """``Jan`` under the group, and ``2025`` below it where it changes; returns the latter."""
    name, _, rest = (row.short or row.label).partition(" ")
    drawing.texts.append(Text(centre, bottom + 16, name, "middle", "tick"))
    if rest and (first or rest != previous):
        drawing.texts.append(Text(centre, bottom + 31, rest, "middle", "tick year"))
    return rest


# --- bars: one horizontal bar per row -----------------------------------------------------


def bars_chart(table: Table, chart: Chart) -> Drawing:
    width = HALF_WIDTH if table.half else WIDTH
    drawing = _drawing(table, chart, width, 24 + 30 * max(len(table.rows), 1))
    [series] = chart.series
    kind = table.column(series.column).kind
    left, right = (190 if width >= WIDTH else 120), width - 80
    peak = max([row.values[series.column] or 0 for row in table.rows] + [1])
    for index, row in enumerate(table.rows):
        value = row.values[series.column]
        y, length = 12 + 30 * index, (right - left) * (value or 0) / peak
        drawing.bars.append(Bar(left, y, length, 20, series.style, row.key, value,
                                _title(series.title, table, row, value, kind)))
        drawing.texts.append(Text(left - 8, y + 15, row.label, "end", "name"))
        drawing.texts.append(Text(left + length + 6, y + 15,
                                  chart.label.format(**_shown(table, row)), "start", "value"))
    drawing.lines.append(Line(left, 6, left, drawing.height - 6, "axis"))
    return drawing


# --- stacked: one horizontal bar per row, a segment per series -----------------------------


def stacked_chart(table: Table, chart: Chart) -> Drawing:
    drawing = _drawing(table, chart, WIDTH, 16 + 34 * max(len(table.rows), 1))
    left, right = 190, WIDTH - 110
    peak = max([_row_total(row, chart) for row in table.rows] + [1])
    for index, row in enumerate(table.rows):
        _stacked_row(drawing, table, chart, row, 8 + 34 * index, left, (right - left) / peak)
    return drawing


def _row_total(row: Row, chart: Chart) -> float:
    return sum(row.values[s.column] or 0 for s in chart.series)


def _stacked_row(drawing: Drawing, table: Table, chart: Chart, row: Row, y: float, left: float,
                 unit: float) -> None:
    x = left
    for series in chart.series:
        value = row.values[series.column]
        if not value:
            continue
        kind = table.column(series.column).kind
        width = value * unit
        drawing.bars.append(Bar(x, y, width, 22, series.style, row.key, value,
                                _title(series.title, table, row, value, kind)))
        if width >= 18:
            drawing.texts.append(Text(x + width / 2, y + 15.5, for_people(value, kind),
                                      "middle", f"inside inside-{series.style}"))
        x += width
    drawing.texts.append(Text(left - 8, y + 15.5, row.label, "end", "name"))
    drawing.texts.append(Text(x + 6, y + 15.5, chart.label.format(**_shown(table, row)),
                              "start", "value"))


DRAWERS: dict[str, Callable[[Table, Chart], Drawing]] = {
    "columns": columns_chart,
    "bars": bars_chart,
    "stacked": stacked_chart,
}

