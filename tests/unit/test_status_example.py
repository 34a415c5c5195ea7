"""The admin guide's example of ``mailroom status`` lists every scheduled job, at the
schema the code migrates to, so that it does not drift from what the command prints."""

from __future__ import annotations

import re
from pathlib import Path

from mailroom.runtime.jobs import SCHEDULED
from mailroom.store.schema import head_revision

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "admin-guide.md"


def _example() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(r"```\n\$ mailroom status\n(.*?)```", text, re.DOTALL)
    assert found, "the admin guide has no example of mailroom status"
    return found.group(1)


def test_the_example_lists_every_scheduled_job() -> None:
    listed = re.findall(r"^job (\w+) \(every", _example(), re.MULTILINE)
    assert listed == [job.name for job in SCHEDULED]


def test_the_example_is_at_the_current_schema() -> None:
    assert f"schema {head_revision()}\n" in _example()
