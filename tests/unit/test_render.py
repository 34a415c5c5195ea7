"""Rendering: every template renders with a sample of its documented context."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import TemplateNotFound, UndefinedError

from mailroom.outbox.render import Renderer, filesize, join_words, tidy_text, with_article
from mailroom.resources import shipped_path
from mailroom.runtime.wiring import template_globals

TEMPLATES = shipped_path("templates")
AUDIENCES = ("requester", "practitioner", "escalation", "answers")
CANNED = {"reference": "HL-000123", "helpline_name": "Test Helpline"}
CLOSED_AT = datetime(2025, 3, 31, 9, 0, tzinfo=UTC)  # Monday 10:00 BST

REQUESTER = {"helpline_name": "Online Safety Helpline", "reference": "HL-000123"}
# [signposting] as a helpline in the US might set it: nothing in the templates is the UK's.
SERVICES = {
    "emergency_number": "911",
    "police_number": "your local police non-emergency number",
    "hotlines": [{"name": "the NCMEC CyberTipline", "url": "https://report.cybertip.org",
                  "phone": "1-800-843-5678", "note": None},
                 {"name": "the Internet Watch Foundation (IWF)", "url": "https://report.iwf.org.uk",
                  "phone": None, "note": "for content in the UK"}],
    "takedown": [{"name": "Take It Down, from NCMEC", "url": "https://takeitdown.ncmec.org",
                  "phone": None, "note": "for images taken before the age of 18"}],
    "police_report": [{"name": "the FBI", "url": "https://tips.fbi.gov", "phone": None,
                       "note": None}],
    "support": [{"name": "the 988 Lifeline", "url": None, "phone": "988", "note": None}],
}
SIGNPOSTING = {**REQUESTER, "platforms": ["Instagram", "TikTok"], "signposting": SERVICES}
PRACTITIONER_CASE = {
    "reference": "HL-000123",
    "subject": "Fake account of our school",
    "sender": "Jo Bloggs <jo@school.example>",
    "category": "impersonation",
    "role": "head_teacher",
    "priority": "normal",
    "country": None,
    "platforms": ["Instagram"],
    "sla_due": datetime(2025, 3, 4, 12, 0, tzinfo=UTC),
    "text": "Someone made an account with our logo: https://instagram.com/fake.school",
    "attachments": [{"filename": "screenshot.png", "content_type": "image/png", "size": 48213}],
    "withheld_count": 1,
    "withheld_reason": "the case may involve illegal images",
    "new_sender": None,
    "unverified": None,
    "receiving": ["jo@school.example"],
    "failing": [],
    "pending": [],
    "related": [],
    "repeats": [],
}
ESCALATION = {
    "helpline_name": "Online Safety Helpline",
    "platform": "Instagram",
    "reference": "HL-000123",
    "category": "impersonation",
    "urls": ["https://instagram.com/fake.school"],
    "context": "The account uses the school's logo and messages pupils.",
    "reporter_role": "head_teacher",
    "organisation_type": "primary school",
    "attachments": [],
    "reported": [{"url": "https://www.instagram.com/fake.school/", "professionals": 3,
                  "since": datetime(2025, 2, 3, 9, 0, tzinfo=UTC)}],
}
ESCALATION_NOTICE = {
    "reference": "HL-000123",
    "escalation_id": 7,
    "platform": "Instagram",
    "status": "responded",
    "platform_ref": "1234567890",
    "opened_at": datetime(2025, 3, 3, 11, 0, tzinfo=UTC),
    "urls": ["https://instagram.com/fake.school"],
}

SLA_NOTICE: dict[str, Any] = {
    "reference": "HL-000123", "subject": "Fake account [link]", "answer": "first",
    "due": datetime(2025, 3, 3, 13, 0, tzinfo=UTC), "priority": "high",
    "category": "impersonation", "status": "open", "assignee": None}
SAMPLES: dict[str, dict[str, Any]] = {
    "requester/acknowledgement": {
        **REQUESTER,
        "subject": "Fake account <of> our school",
        "is_open": False,
        "next_opening": CLOSED_AT,
        "hours_text": "Monday to Friday, 10:00 to 16:00 (Europe/London)",
        "signposting": SERVICES,
    },
    "requester/closure": {**REQUESTER, "subject": "Fake account of our school"},
    "requester/relay": {
        **REQUESTER, "text": "Hi Jo,\n\nWe have reported the <account>.\nIt may take a few days."},
    "practitioner/command_report": {
        "reference": "HL-000123", "done": ["category reputation"],
        "refused": ['#category sextortion: "sextortion" is not a category (one of: bullying)'],
        "notices": ["#escalate tiktok: nothing was sent to TikTok"],
        "held": "Hi Jo,\n\nWe have reported the account.",
        "held_reason": "a command in it was refused, so its text was not sent"},
    "requester/signposting/illegal_images": SIGNPOSTING,
    "requester/signposting/threats": SIGNPOSTING,
    "requester/signposting/under13_privacy": SIGNPOSTING,
    "requester/signposting/impersonation": SIGNPOSTING,
    "requester/signposting/defamation": SIGNPOSTING,
    "requester/signposting/sextortion": SIGNPOSTING,
    "practitioner/new_case": PRACTITIONER_CASE,
    "practitioner/digest": {
        "helpline_name": "Online Safety Helpline", "at": CLOSED_AT,
        "breached": [{"reference": "HL-000120", "subject": "Fake account", "assignee": None,
                      "due": CLOSED_AT, "since": CLOSED_AT, "first": True}],
        "due_today": [], "due_later": [], "waiting": [],
        "chases": [{"reference": "HL-000123", "platform": "Instagram", "opened_at": CLOSED_AT,
                    "follow_ups": 1, "next_chase": None, "case_closed": False}],
        "failing": [{"reference": "HL-000121", "address": "jo@school.example",
                     "since": CLOSED_AT}],
        "bad": 2, "shunt": 0, "empty": False},
    "practitioner/delivery_failed": {
        "reference": "HL-000123", "addresses": ["jo@school.example"],
        "reason": "Undelivered Mail Returned to Sender (permanent failure, from "
                  "MAILER-DAEMON@mx.school.example)", "requester": "jo@school.example"},
    "practitioner/follow_up": PRACTITIONER_CASE,
    "practitioner/reply_refused": {
        "reference": "HL-000123", "reason": "the address you replied to has expired",
        "text": "#close\n\nHi Jo, all done."},
    "practitioner/outbox_failed": {
        "reference": "HL-000123",
        "kind": "acknowledgement",
        "recipients": ["jo@school.example"],
        "subject": "[Helpline #123] Fake account of our school",
        "message_id": "mailroom.hl-000123.abc@helpline.example",
        "attempts": 8,
        "error": "550 5.1.1 mailbox unavailable",
    },
    "escalation/default": ESCALATION,
    "escalation/follow_up": {
        **{
            k: ESCALATION[k] for k in ("helpline_name", "platform", "reference", "category", "urls")
        },
        "opened_at": datetime(2025, 3, 3, 11, 0, tzinfo=UTC),
        "follow_up_number": 1,
        "platform_ref": None,
    },
    "practitioner/escalation_response": {
        **ESCALATION_NOTICE,
        "sender": "Instagram Trust and Safety <safety@instagram.example>",
        "subject": "Re: [Helpline #123] Escalation HL-000123: impersonation on Instagram",
        "text": "We have removed the account for impersonation.",
        "attachments": [],
        "withheld_count": 0,
        "withheld_reason": None,
    },
    "practitioner/help": {
        "reference": "HL-000123",
        "answers": [{"name": "screenshots", "first_line": "Before you report anything, …"}]},
    "practitioner/reminder": {
        "reference": "HL-000123", "subject": "Fake account", "status": "waiting",
        "priority": "high", "assignee": "anna@helpline.example",
        "set_at": datetime(2025, 3, 3, 11, 0, tzinfo=UTC),
        "last_at": datetime(2025, 3, 4, 9, 30, tzinfo=UTC)},
    "practitioner/sla_warning": SLA_NOTICE,
    "practitioner/sla_breach": {**SLA_NOTICE, "supervisor_copy": True},
    "answers/screenshots": CANNED,
    "answers/report_in_app": CANNED,
    "answers/out_of_remit": CANNED,
    "practitioner/outcome_recorded": {
        **ESCALATION_NOTICE, "status": "resolved", "outcome": "removed", "before": "declined",
        "actor": "anna@helpline.example", "outcomes": ["removed", "restricted", "declined",
                                                       "no_action"]},
    "practitioner/escalation_no_response": {
        **ESCALATION_NOTICE,
        "status": "no_response",
        "follow_ups": 2,
        "reason": None,
    },
}
NEED_HTML = {"requester/acknowledgement", "requester/closure"}


def template_files() -> list[Path]:
    """Every template file, partials (``_name``) excluded."""
    return sorted(
        path
        for audience in AUDIENCES
        for path in (TEMPLATES / audience).rglob("*.j2")
        if not path.name.startswith("_")
    )


def template_name(path: Path) -> str:
    return str(path.relative_to(TEMPLATES)).removesuffix(".txt.j2").removesuffix(".html.j2")


def documented_variables(path: Path) -> set[str]:
    """Names listed under ``Context:`` in the template's opening comment."""
    source = path.read_text(encoding="utf-8")
    assert source.startswith("{#"), f"{path.name} must open with a {{# ... #}} comment"
    doc = source[: source.index("#}")]
    return set(re.findall(r"^  (\w+)\s{2,}\S", doc, re.MULTILINE))


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES, globals=template_globals())


def test_every_template_has_a_sample() -> None:
    names = {template_name(p) for p in template_files()}
    assert names == set(SAMPLES), "add a sample context for each template (and only those)"


@pytest.mark.parametrize("name", sorted(SAMPLES), ids=sorted(SAMPLES))
def test_template_renders(renderer: Renderer, name: str) -> None:
    text, html = renderer.render(name, SAMPLES[name])
    assert text.strip() and text.endswith("\n") and not text.endswith("\n\n")
    assert "{{" not in text and "{%" not in text and "{#" not in text
    if name in NEED_HTML:
        assert html is not None and "<p>" in html
    if SAMPLES[name].get("reference"):
        assert SAMPLES[name]["reference"] in text


@pytest.mark.parametrize(
    "path", template_files(), ids=[str(p.relative_to(TEMPLATES)) for p in template_files()]
)
def test_documented_context_matches_the_sample(path: Path) -> None:
    assert documented_variables(path) == set(SAMPLES[template_name(path)])


@pytest.mark.parametrize("name", sorted(SAMPLES), ids=sorted(SAMPLES))
def test_a_missing_variable_is_an_error(renderer: Renderer, name: str) -> None:
    always_used = "reference" if "reference" in SAMPLES[name] else next(iter(SAMPLES[name]))
    context = {k: v for k, v in SAMPLES[name].items() if k != always_used}
    with pytest.raises(UndefinedError):
        renderer.render(name, context)


def test_text_is_not_escaped_and_html_is(renderer: Renderer) -> None:
    text, html = renderer.render("requester/acknowledgement", SAMPLES["requester/acknowledgement"])
    assert '"Fake account <of> our school"' in text
    assert html is not None
    assert "Fake account &lt;of&gt; our school" in html
    assert "<of>" not in html


@pytest.mark.parametrize(
    ("is_open", "expected", "unexpected"),
    [
        (False, "Monday 31 March 2025 at 10:00 BST", "We are open now"),
        (True, "We are open now", "while we are closed"),
    ],
    ids=["closed", "open"],
)
def test_acknowledgement_says_when_to_expect_an_answer(
    renderer: Renderer, is_open: bool, expected: str, unexpected: str
) -> None:
    context = {**SAMPLES["requester/acknowledgement"], "is_open": is_open}
    text, html = renderer.render("requester/acknowledgement", context)
    assert expected in text and unexpected not in text
    assert html is not None and expected in html
    assert "Monday to Friday, 10:00 to 16:00" in text
    assert "do not send us images" in text.lower()


def test_illegal_images_signposting(renderer: Renderer) -> None:
    text, _ = renderer.render(
        "requester/signposting/illegal_images", SAMPLES["requester/signposting/illegal_images"]
    )
    assert "- The Internet Watch Foundation (IWF): https://report.iwf.org.uk" in text
    assert "- The NCMEC CyberTipline, 1-800-843-5678: https://report.cybertip.org\n" in text
    assert "call the police now on 911" in text
    assert "Do not forward" in text and "not to us" in text
    assert "Instagram and TikTok" in text


def test_threats_signposting_names_the_police_numbers(renderer: Renderer) -> None:
    text, _ = renderer.render("requester/signposting/threats", {**SIGNPOSTING, "platforms": []})
    assert "call the police now on 911" in text
    assert "to the police on your local police non-emergency number" in text
    assert "999" not in text and "101" not in text  # the configured numbers, not the UK's
    assert "reporting tools" not in text  # no platform paragraph without platforms


def test_sextortion_signposting_is_its_own(renderer: Renderer) -> None:
    text, _ = renderer.render("requester/signposting/sextortion", SIGNPOSTING)
    for words in ("Do not pay", "Do not delete the messages", "Do not forward",
                  "call the police now on 911", "- Take It Down, from NCMEC: "
                  "https://takeitdown.ncmec.org (for images taken before the age of 18)",
                  "- The FBI: https://tips.fbi.gov", "- The 988 Lifeline, 988"):
        assert words in text, words
    illegal, _ = renderer.render("requester/signposting/illegal_images", SIGNPOSTING)
    assert "Do not pay" not in illegal and "sextortion" not in illegal


def test_signposting_without_services_leaves_their_paragraphs_out(renderer: Renderer) -> None:
    bare = {**SERVICES, "hotlines": [], "takedown": [], "police_report": [], "support": []}
    for name in ("illegal_images", "sextortion"):
        text, _ = renderer.render(f"requester/signposting/{name}",
                                  {**SIGNPOSTING, "signposting": bare})
        assert ":\n\n" not in text and "http" not in text, text  # no heading without its list
        assert "call the police now on 911" in text


def test_practitioner_summary_and_withheld_attachments(renderer: Renderer) -> None:
    text, _ = renderer.render("practitioner/new_case", PRACTITIONER_CASE)
    first = text.splitlines()[0]
    assert first == (
        "New case HL-000123 | category: impersonation | platforms: Instagram | "
        "role: head teacher | SLA due: Tuesday 4 March 2025 at 12:00 GMT"
    )
    assert "- screenshot.png (image/png, 47.1 KB)" in text
    assert "1 attachment was withheld from this email: the case may involve illegal images" in text
    assert "\n-- \n" in text  # signature separator keeps its space


def test_the_summary_names_the_country_of_a_helpline_with_several(renderer: Renderer) -> None:
    for name in ("practitioner/new_case", "practitioner/follow_up"):
        text, _ = renderer.render(name, {**PRACTITIONER_CASE, "priority": "high",
                                         "country": "IE"})
        assert text.splitlines()[0].endswith(" | priority: HIGH | country: IE"), name


def test_practitioner_notification_says_who_receives_answers(renderer: Renderer) -> None:
    text, _ = renderer.render("practitioner/follow_up", {
        **PRACTITIONER_CASE, "new_sender": "stranger@evil.example", "unverified": "dmarc=fail",
        "receiving": ["jo@school.example", "head@school.example"],
        "failing": ["old.head@school.example"],
        "pending": ["stranger@evil.example", "deputy@school.example"],
        "related": [{"reference": "HL-000007"}],
        "repeats": [{"url": "https://www.instagram.com/fake.school/", "account": True,
                     "references": ["HL-000031", "HL-000044"]}]})
    assert ("This account was reported in 2 other cases (HL-000031, HL-000044): "
            "https://www.instagram.com/fake.school/") in text
    lines = text.splitlines()
    assert lines[1].startswith("UNVERIFIED SENDER: the sender's domain failed authentication "
                               "(dmarc=fail)")
    assert ("NEW SENDER, not on this case: stranger@evil.example. They receive nothing from this "
            "case until you allow them (#allow stranger@evil.example).") in lines
    assert "Your answer goes to: jo@school.example, head@school.example" in lines
    assert ("Mail bounces, sent nothing: old.head@school.example. Once the address works "
            "again: #retry ADDRESS.") in lines
    assert ("Not receiving answers: stranger@evil.example, deputy@school.example. To include "
            "them: #allow ADDRESS (or #allow all).") in lines
    assert any("#merge HL-000007" in line for line in lines)


def test_practitioner_notification_of_an_ordinary_message(renderer: Renderer) -> None:
    text, _ = renderer.render("practitioner/new_case", PRACTITIONER_CASE)
    assert text.splitlines()[1] == "Your answer goes to: jo@school.example"
    assert "NEW SENDER" not in text and "UNVERIFIED" not in text
    assert "also belongs to case" not in text


def test_practitioner_without_optional_values(renderer: Renderer) -> None:
    context = {
        **PRACTITIONER_CASE,
        "category": None,
        "role": None,
        "platforms": [],
        "sla_due": None,
        "attachments": [],
        "withheld_count": 0,
        "withheld_reason": None,
    }
    text, _ = renderer.render("practitioner/follow_up", context)
    assert "category: not set | platforms: none found | role: not set | SLA due: nothing due" in (
        text
    )
    assert "No attachments." in text and "withheld" not in text


def test_escalation_describes_the_reporter_without_contact_details(renderer: Renderer) -> None:
    text, _ = renderer.render("escalation/default", ESCALATION)
    assert "reported to us by a head teacher working for a primary school." in text
    assert "- https://instagram.com/fake.school" in text
    assert ("Reported to us by more than one professional:\n"
            "- https://www.instagram.com/fake.school/: 3 professionals since Monday 3 February 2025"
            ) in text
    for path in (TEMPLATES / "escalation").glob("*.j2"):
        assert not documented_variables(path) & {"sender", "requester", "email", "phone"}


@pytest.mark.parametrize(
    ("number", "ref", "expected"),
    [
        (1, None, "We are following up on the content Online Safety Helpline reported"),
        (2, "IG-55", "This is reminder number 2 about the content"),
    ],
    ids=["first", "second-with-platform-ref"],
)
def test_escalation_follow_up(
    renderer: Renderer, number: int, ref: str | None, expected: str
) -> None:
    context = {**SAMPLES["escalation/follow_up"], "follow_up_number": number, "platform_ref": ref}
    text, _ = renderer.render("escalation/follow_up", context)
    assert expected in text
    assert "Monday 3 March 2025" in text
    assert ("your reference IG-55" in text) is (ref is not None)


# -- the renderer itself ---------------------------------------------------------------


@pytest.fixture
def scratch(tmp_path: Path) -> Renderer:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "typo.txt.j2").write_text("Hello {{ nmae }}\n")
    (tmp_path / "t" / "when.txt.j2").write_text("{{ at|localtime }} / {{ at|localdate }}\n")
    (tmp_path / "t" / "both.txt.j2").write_text("<{{ v }}>\n")
    (tmp_path / "t" / "both.html.j2").write_text("<p>{{ v }}</p>\n")
    return Renderer(tmp_path)


def test_misspelt_variable_is_an_error(scratch: Renderer) -> None:
    with pytest.raises(UndefinedError):
        scratch.render("t/typo", {"name": "Jo"})


def test_html_is_optional_and_escaped(scratch: Renderer) -> None:
    assert scratch.render("t/typo", {"nmae": "<Jo>"}) == ("Hello <Jo>\n", None)
    assert scratch.render("t/both", {"v": "<b>&"}) == ("<<b>&>\n", "<p>&lt;b&gt;&amp;</p>\n")


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (
            datetime(2025, 1, 6, 9, 5, tzinfo=UTC),
            "Monday 6 January 2025 at 09:05 GMT / Monday 6 January 2025\n",
        ),
        (
            datetime(2025, 7, 6, 23, 30, tzinfo=UTC),
            "Monday 7 July 2025 at 00:30 BST / Monday 7 July 2025\n",
        ),
    ],
    ids=["winter", "summer-crosses-midnight"],
)
def test_localtime_filter(scratch: Renderer, at: datetime, expected: str) -> None:
    assert scratch.render("t/when", {"at": at})[0] == expected


def test_localtime_refuses_naive_datetimes(scratch: Renderer) -> None:
    with pytest.raises(ValueError):
        scratch.render("t/when", {"at": datetime(2025, 1, 6, 9, 5)})


@pytest.mark.parametrize(
    "name",
    ["../secrets", "t/../t/typo", "/etc/passwd", "t/typo.txt.j2", "T/Typo", ""],
    ids=["parent", "dot-dot-inside", "absolute", "with-suffix", "upper-case", "empty"],
)
def test_bad_names_are_refused(scratch: Renderer, name: str) -> None:
    with pytest.raises(ValueError):
        scratch.render(name, {})


def test_missing_template_and_exists(scratch: Renderer) -> None:
    assert scratch.exists("t/typo")
    assert not scratch.exists("t/nothing")
    with pytest.raises(TemplateNotFound):
        scratch.render("t/nothing", {})


@pytest.mark.parametrize(
    ("items", "expected"),
    [([], ""), (["A"], "A"), (["A", "B"], "A and B"), (["A", "B", "C"], "A, B and C")],
    ids=["none", "one", "two", "three"],
)
def test_join_words(items: list[str], expected: str) -> None:
    assert join_words(items) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, "0 bytes"), (1023, "1023 bytes"), (2048, "2.0 KB"), (5 * 1024**2, "5.0 MB")],
    ids=["zero", "bytes", "kilobytes", "megabytes"],
)
def test_filesize(size: int, expected: str) -> None:
    assert filesize(size) == expected


@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        ("teacher", "a teacher"),
        ("officer", "an officer"),
        ("Early years lead", "an Early years lead"),
    ],
    ids=["consonant", "vowel", "capital-vowel"],
)
def test_with_article(noun: str, expected: str) -> None:
    assert with_article(noun) == expected


def test_tidy_text() -> None:
    assert tidy_text("\n\nA  \n\n\n\nB\n-- \nC\n\n") == "A\n\nB\n-- \nC\n"


def test_the_summary_shows_a_priority_that_is_not_normal(renderer: Renderer) -> None:
    normal, _ = renderer.render("practitioner/new_case", PRACTITIONER_CASE)
    urgent, _ = renderer.render("practitioner/new_case", {**PRACTITIONER_CASE,
                                                          "priority": "urgent"})
    assert "priority" not in normal.split("\n")[0]
    assert urgent.split("\n")[0].endswith("at 12:00 GMT | priority: URGENT")
    assert urgent.split("\n")[1] == normal.split("\n")[1]
