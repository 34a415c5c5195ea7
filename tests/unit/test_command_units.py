"""Every command by email is one complete unit, and the help practitioners get lists them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailroom.cases.commands import (
    UNITS,
    Command,
    CommandUnit,
    Known,
    check_commands,
    command_help,
    parse_commands,
)
from mailroom.outbox.render import Renderer
from mailroom.resources import shipped_path
from mailroom.runtime.wiring import template_globals

TEMPLATES = shipped_path("templates")
IDS = [unit.name for unit in UNITS]
# a configuration that names the values of every example
KNOWN = Known(practitioners=("anna@helpline.example",), categories=("bullying",),
              roles=("teacher",), platforms=("tiktok",), answers=("screenshots",),
              countries=("GB", "IE"))
NOTHING_KNOWN = Known(practitioners=(), categories=(), roles=(), platforms=())


@pytest.mark.parametrize("unit", UNITS, ids=IDS)
def test_a_unit_parses_and_passes_its_own_example(unit: CommandUnit) -> None:
    assert unit.example.split()[0] == f"#{unit.name}"
    parsed = parse_commands(f"{unit.example}\n\nThe answer.")
    assert parsed.errors == ()
    assert [command.name for command in parsed.commands] == [unit.name]
    assert parsed.body == "The answer."
    assert check_commands(parsed.commands, KNOWN) == []


@pytest.mark.parametrize("unit", UNITS, ids=IDS)
def test_a_unit_has_help_and_an_effect(unit: CommandUnit) -> None:
    assert re.fullmatch(r"[a-z][a-z-]*", unit.name)
    assert unit.syntax.startswith(f"#{unit.name}")
    assert unit.description.strip() and "\n" not in unit.description
    assert not getattr(type(unit).run, "__isabstractmethod__", False)
    assert not getattr(type(unit).parse, "__isabstractmethod__", False)


def test_names_are_unique_and_every_one_is_known() -> None:
    assert len(set(IDS)) == len(IDS)
    parsed = parse_commands("#frobnicate")
    assert parsed.errors == (
        "#frobnicate: unknown command (known commands: "
        + ", ".join(f"#{name}" for name in IDS) + ")",)


def test_a_unit_without_an_effect_cannot_be_made() -> None:
    class Shrug(CommandUnit):
        name = "shrug"
        description = "nothing at all"
        example = "#shrug"

        def parse(self, rest: str) -> Command | str:
            return Command(self.name)

    with pytest.raises(TypeError, match="abstract"):
        Shrug()  # type: ignore[abstract]


@pytest.mark.parametrize(("line", "error"), [
    ("#assign ben@helpline.example", '#assign: "ben@helpline.example" is not a practitioner'),
    ("#category Bullying", '#category: "Bullying" is not a category (one of: )'),
    ("#role teacher", '#role: "teacher" is not a role'),
    ("#escalate tiktok", '#escalate: "tiktok" is not a platform in the directory'),
    ("#country ie", '#country: "IE" is not a country the helpline has numbers and services '
                    "for (one of: )"),
], ids=["assign", "category", "role", "escalate", "country"])
def test_a_check_names_what_the_configuration_does_not_know(line: str, error: str) -> None:
    [found] = check_commands(parse_commands(line).commands, NOTHING_KNOWN)
    assert found.startswith(error)


def test_the_help_lists_every_command_with_its_syntax_and_description() -> None:
    renderer = Renderer(TEMPLATES, globals=template_globals())
    text, _ = renderer.render("practitioner/command_report", {
        "reference": "HL-000001", "done": [], "refused": ["#frobnicate: unknown"],
        "notices": [], "held": "", "held_reason": ""})
    help_lines = text.split("stay private:\n", 1)[1].splitlines()
    assert len(help_lines) == len(UNITS)
    for line, unit in zip(help_lines, UNITS, strict=True):
        syntax, description = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        assert (syntax, description) == (unit.syntax, unit.description)
    assert [entry.syntax for entry in command_help()] == [unit.syntax for unit in UNITS]



def test_the_readme_documents_every_command_in_a_practitioners_day() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    day = readme.split("## A practitioner's day", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `#([a-z-]+)", day, re.MULTILINE)
    assert documented == IDS  # every command, in the order of the help


@pytest.mark.parametrize(("line", "expected"), [
    ("#country ie", Command("country", ("IE",))),
    ("#Country  DE ", Command("country", ("DE",))),
    ("#country", "#country: needs a two-letter country code, e.g. #country IE"),
    ("#country Ireland",
     '#country: "Ireland" is not a two-letter country code (such as GB, IE, DE)'),
], ids=["lower-case", "spaces", "nothing", "a-name"])
def test_country_takes_a_two_letter_code(line: str, expected: Command | str) -> None:
    parsed = parse_commands(line)
    assert (parsed.commands[0] if parsed.commands else parsed.errors[0]) == expected
