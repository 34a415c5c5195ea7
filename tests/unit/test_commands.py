"""parse_commands: the command block at the top of a practitioner's reply."""

from __future__ import annotations

from datetime import date

import pytest

from mailroom.cases.commands import UNITS, Command, parse_commands, remind_day
from mailroom.cases.practitioner import is_signature_only, names_the_writer
from mailroom.store.models import Message

VALID = [
    ("assign-me", "#assign me", Command("assign", ("me",))),
    ("assign-address", "#assign Alex@Example.org", Command("assign", ("alex@example.org",))),
    ("assign-bracketed", "#assign <alex@example.org>", Command("assign", ("alex@example.org",))),
    ("status", "#status waiting", Command("status", ("waiting",))),
    ("status-capitalised", "#Status Closed", Command("status", ("closed",))),
    ("category-spaces", "#category  illegal   images", Command("category", ("illegal images",))),
    ("role", "#role safeguarding lead", Command("role", ("safeguarding lead",))),
    ("escalate-platform-only", "#escalate TikTok", Command("escalate", ("tiktok",))),
    (
        "escalate-with-urls",
        "#escalate tiktok https://www.tiktok.com/@x/video/1 <vm.tiktok.com/ZM1/>",
        Command("escalate", ("tiktok", "https://www.tiktok.com/@x/video/1", "vm.tiktok.com/ZM1/")),
    ),
    ("outcome", "#outcome removed", Command("outcome", ("removed",))),
    ("outcome-hyphen", "#outcome no-action", Command("outcome", ("no_action",))),
    ("note", "#note", Command("note")),
    ("note-upper", "#NOTE", Command("note")),
    ("close", "#close", Command("close")),
    ("close-with-full-stop", "#close.", Command("close")),
    ("bold-from-html", "*#note*", Command("note")),
    ("double-bold-line", "**#status closed**", Command("status", ("closed",))),
    ("trailing-space-and-nbsp", "#close \u00a0 ", Command("close")),
    ("allow-address", "#allow Head@School.example", Command("allow", ("head@school.example",))),
    ("allow-all", "#allow ALL", Command("allow", ("all",))),
    ("remove", "#remove <head@school.example>", Command("remove", ("head@school.example",))),
    ("merge-reference", "#merge hl-000012", Command("merge", ("HL-000012",))),
    ("merge-tag-number", "#merge #12", Command("merge", ("12",))),
    ("withhold", "#withhold", Command("withhold")),
]

ERRORS = [
    ("unknown", "#pending", "#pending: unknown command"),
    ("bad-status", "#status pending", '#status: "pending" is not one of open, waiting, closed'),
    ("missing-status", "#status", "#status: needs one of open, waiting, closed"),
    ("bad-outcome", "#outcome deleted", '#outcome: "deleted" is not one of removed'),
    ("bad-assignee", "#assign bob", '#assign: "bob" is not "me" or an email address'),
    ("missing-assignee", "#assign", "#assign: needs 'me' or an email address"),
    ("close-with-words", "#close now please", '#close: takes nothing after it, got "now please"'),
    ("missing-category", "#category", "#category: needs a name"),
    ("missing-platform", "#escalate", "#escalate: needs a platform"),
    ("escalate-not-url", "#escalate tiktok hello", '#escalate: "hello" is not a URL'),
    ("allow-nothing", "#allow", "#allow: needs an email address"),
    ("allow-name", "#allow the head", '#allow: "the head" is not an email address'),
    ("remove-all", "#remove all", '#remove: "all" is not an email address'),
    ("merge-nothing", "#merge", "#merge: needs the reference of a case"),
    ("merge-words", "#merge the other one", '#merge: "the other one" is not a case reference'),
]


@pytest.mark.parametrize(("line", "command"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_a_command_line_is_parsed(line: str, command: Command) -> None:
    parsed = parse_commands(line + "\n\nThanks for your message.")
    assert parsed.commands == (command,)
    assert parsed.errors == ()
    assert parsed.body == "Thanks for your message."


@pytest.mark.parametrize(("line", "error"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_a_bad_command_line_is_an_error_sentence(line: str, error: str) -> None:
    parsed = parse_commands(line + "\nBody")
    assert parsed.commands == ()
    assert len(parsed.errors) == 1
    assert parsed.errors[0].startswith(error)


def test_commands_only_at_the_top_leading_blank_lines_allowed() -> None:
    parsed = parse_commands("\n\n#assign me\n\n#status waiting\nHello,\n\n#close\nBye")
    assert [c.name for c in parsed.commands] == ["assign", "status"]
    assert parsed.body == "Hello,\n\n#close\nBye"


def test_a_reply_of_only_commands_has_an_empty_body() -> None:
    parsed = parse_commands("#status closed\r\n#outcome removed\r\n")
    assert parsed.body == ""
    assert len(parsed.commands) == 2


def test_note_keeps_the_reply_internal_and_its_text_starts_the_body() -> None:
    parsed = parse_commands("#note spoke to the school\n#status waiting\nThey will call back.")
    assert parsed.is_note
    assert parsed.named("status") == (Command("status", ("waiting",)),)
    assert parsed.body == "spoke to the school\nThey will call back."


def test_errors_and_valid_commands_are_both_reported() -> None:
    parsed = parse_commands("#assign me\n#frobnicate\n#status closed")
    assert [c.name for c in parsed.commands] == ["assign", "status"]
    [error] = parsed.errors
    assert error.startswith("#frobnicate: unknown command (known commands: #assign, #status, ")
    assert all(f"#{unit.name}" in error for unit in UNITS)


@pytest.mark.parametrize(
    "text",
    ["Hello,\n#close", "#1 priority is the video\n#close", "# heading", "> #close\nHi", ""],
    ids=["not-at-top", "hash-digit", "hash-space", "quoted", "empty"],
)
def test_text_that_is_not_a_command_block(text: str) -> None:
    parsed = parse_commands(text)
    assert parsed.commands == ()
    assert parsed.errors == ()
    assert parsed.body == text


# --- the commands added for a helpline's week (pure parts) ---------------------------------

NEW_VALID = {
    "context-keeps-its-full-stop": ("#context The account uses her photo.",
                                    Command("context", ("The account uses her photo.",))),
    "note-keeps-its-full-stop": ("#note called the school.", None),
    "evidence-all": ("#evidence", Command("evidence", ())),
    "evidence-quoted-names": ('#evidence "my screenshot.png" b.pdf',
                              Command("evidence", ("my screenshot.png", "b.pdf"))),
    "priority": ("#Priority URGENT", Command("priority", ("urgent",))),
    "reply-hyphen": ("#reply report-in-app", Command("reply", ("report_in_app",))),
    "spam": ("#spam", Command("spam")),
    "out-of-remit": ("#out-of-remit", Command("out-of-remit")),
    "test": ("#Test", Command("test")),
    "remind-date": ("#remind 2026-03-10", Command("remind", ("2026-03-10",))),
    "remind-weekday": ("#remind Friday", Command("remind", ("friday",))),
    "remind-in-days": ("#remind in 3 days", Command("remind", ("+3",))),
    "send": ("#send", Command("send")),
    "help": ("#help", Command("help")),
}


@pytest.mark.parametrize(("line", "expected"), NEW_VALID.values(), ids=NEW_VALID.keys())
def test_new_commands_parse(line: str, expected: Command | None) -> None:
    parsed = parse_commands(f"{line}\n\nThe answer.")
    assert parsed.errors == ()
    if expected is None:
        assert parsed.body.startswith("called the school.\n")
    else:
        assert parsed.commands == (expected,)


NEW_INVALID = {
    "context-empty": ("#context", "#context: needs the text after it"),
    "evidence-open-quote": ('#evidence "a.png', "cannot read the file names"),
    "priority-other": ("#priority asap",
                       '#priority: "asap" is not one of urgent, high, normal, low'),
    "remind-vague": ("#remind soon", '#remind: "soon" is not a day'),
    "spam-with-text": ("#spam please", "takes nothing after it"),
    "test-with-text": ("#test it", "takes nothing after it"),
    "reply-nothing": ("#reply", "needs the name of a canned answer"),
}


@pytest.mark.parametrize(("line", "error"), NEW_INVALID.values(), ids=NEW_INVALID.keys())
def test_new_commands_refuse_bad_values(line: str, error: str) -> None:
    [found] = parse_commands(line).errors
    assert error in found


TODAY = date(2026, 3, 2)  # a Monday
DAYS = {
    "tomorrow": ("tomorrow", date(2026, 3, 3)),
    "monday-is-next-week": ("monday", date(2026, 3, 9)),
    "friday": ("friday", date(2026, 3, 6)),
    "in-days": ("+10", date(2026, 3, 12)),
    "iso": ("2026-04-01", date(2026, 4, 1)),
    "not-a-date": ("2026-02-30", None),
}


@pytest.mark.parametrize(("value", "expected"), DAYS.values(), ids=DAYS.keys())
def test_remind_day(value: str, expected: date | None) -> None:
    assert remind_day(value, TODAY) == expected


SIGNATURES = {
    "a-name": ("Pat", True),
    "name-title-phone": ("Pat Jones\nPractitioner\n07700 900123", True),
    "a-sentence": ("Thanks for this, I will call the school.", False),
    "a-question": ("Can you send the link?", False),
    "a-bare-short-line-is-held-to-be-sure": ("Call me back", True),
    "long-line": ("Please keep every message she sent you and the dates of them", False),
}


@pytest.mark.parametrize(("text", "expected"), SIGNATURES.values(), ids=SIGNATURES.keys())
def test_is_signature_only(text: str, expected: bool) -> None:
    assert is_signature_only(text) is expected


def test_names_the_writer() -> None:
    anna = Message(sender="anna.smith@helpline.example", sender_name="Anna Smith")
    assert names_the_writer("Anna", anna) and names_the_writer("A. Smith\nPractitioner", anna)
    assert not names_the_writer("Pat", anna)
