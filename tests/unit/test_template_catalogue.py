"""``mailroom templates list``: every template, where it is read from, its variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailroom.cli.main import main
from mailroom.outbox.catalogue import template_catalogue
from mailroom.resources import shipped_path
from tests.factories import build_settings

SHIPPED = shipped_path("templates")


def test_every_shipped_template_is_listed_with_what_its_comment_says() -> None:
    found = {info.name: info for info in template_catalogue([SHIPPED])}
    names = {str(p.relative_to(SHIPPED)).split(".")[0] for p in SHIPPED.rglob("*.j2")}
    assert set(found) == names
    ack = found["requester/acknowledgement"]
    assert ack.formats == ["html", "txt"] or ack.formats == ["txt", "html"]
    assert not ack.overridden and ack.purpose.startswith("the first answer to a new requester")
    assert [v.name for v in ack.variables][:3] == ["helpline_name", "reference", "subject"]
    assert ack.variables[1].type == "str" and "HL-000123" in ack.variables[1].meaning
    reported = next(v for v in found["escalation/default"].variables if v.name == "reported")
    assert reported.meaning.endswith("counts only, never who")  # continued lines joined


def test_a_helpline_template_hides_the_shipped_one(tmp_path: Path) -> None:
    own = tmp_path / "own" / "requester"
    own.mkdir(parents=True)
    (own / "acknowledgement.txt.j2").write_text(
        "{#\nrequester/acknowledgement: our own first answer.\n\nContext:\n"
        "  reference      str       the case reference\n#}\nCase {{ reference }}.\n")
    found = {i.name: i for i in template_catalogue([tmp_path / "own", SHIPPED])}
    ack = found["requester/acknowledgement"]
    assert ack.overridden and ack.formats == ["txt"] and ack.purpose == "our own first answer."
    assert [v.name for v in ack.variables] == ["reference"]
    assert not found["requester/relay"].overridden


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    config = str(tmp_path / "mailroom.toml")
    assert main(["--config", config, "templates", "list"]) == 0
    out = capsys.readouterr().out
    assert "requester/acknowledgement [" in out and "    signposting " in out
    assert main(["templates", "list", "--json", "--config", config]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(t["name"] == "practitioner/digest" and t["variables"] for t in listed)


def test_every_template_lists_its_variables_with_their_meaning() -> None:
    """Partials too: those that read their includer's variables (``Reads:``) are described
    as the other templates of their folder describe them. Only a file of macros takes none."""
    for info in template_catalogue([SHIPPED]):
        source = "".join(p.read_text() for p in SHIPPED.glob(f"{info.name}.*.j2"))
        if "{% macro" in source and "Context:" not in source and "Reads:" not in source:
            assert info.variables == [], info.name
            continue
        assert info.variables, info.name
        assert all(v.type and v.meaning for v in info.variables), info.name
    found = {info.name: info for info in template_catalogue([SHIPPED])}
    assert [v.name for v in found["practitioner/_summary"].variables][:2] == [
        "reference", "category"]
    assert found["practitioner/_summary"].variables[0].meaning.startswith("the case reference")


def test_the_signposting_variables_name_the_cases_country() -> None:
    for info in template_catalogue([SHIPPED]):
        for variable in info.variables:
            if variable.name == "signposting":
                assert "country" in variable.meaning, info.name
