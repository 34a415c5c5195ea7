"""The one table ``make bench`` prints, and the same as JSON.

Each :class:`Figure` is one row: what was measured, its value as text, the
target as text, whether it was met (``None`` for reference rows without a
target), and the numbers behind it for the JSON file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    name: str
    value: str
    target: str = "-"
    met: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)
    failed: bool = False  # the part crashed: value holds the error

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


def machine() -> dict[str, Any]:
    """What the numbers were measured on, including how busy it was."""
    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def render_table(figures: list[Figure]) -> str:
    """A plain-text table: figure, value, target, met?"""
    head = ("figure", "value", "target", "met?")
    rows = [head] + [(f.name, f.value, f.target, f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(lines)


def write_json(figures: list[Figure], context: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"figures": [asdict(f) | {"verdict": f.verdict} for f in figures], **context}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def rate_text(per_second: float, megabytes: float | None = None) -> str:
    text = f"{per_second:,.1f} msg/s"
    return f"{text} ({megabytes:,.1f} MB/s)" if megabytes is not None else text


def megabytes(size: float) -> str:
    return f"{size / 1e6:,.0f} MB"
