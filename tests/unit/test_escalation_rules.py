"""The pure rules of escalations: URLs, case numbers, acknowledgements, which
escalation an outcome is for, evidence names, and what the mails may say.

No database: rows are unsaved model objects; the directory is the shipped
``config/platforms.toml``; templates are the repository's.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.cases.escalations import (
    check_urls,
    choose_escalation,
    escalation_context,
    escalation_template,
    escalation_view,
    evidence_name,
    find_platform_ref,
    is_acknowledgement,
    known_platform,
    urls_for_platform,
)
from mailroom.errors import MailroomError
from mailroom.intake.classify import Classification
from mailroom.intake.classify import ClassificationKind as Kind
from mailroom.outbox.render import Renderer
from mailroom.platforms import Platform, load_platforms
from mailroom.resources import shipped_path
from mailroom.store.models import Escalation, Ticket

REPO = Path(__file__).resolve().parents[2]
PLATFORMS, _ = load_platforms(tomllib.loads((shipped_path("data/platforms.toml")).read_text()))
OPENED = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


# --- URLs -----------------------------------------------------------------------------------

URL_OWNERS = {
    "tiktok-short": ("https://vm.tiktok.com/ZMabc123/", "tiktok"),
    "tiktok-vt": ("https://vt.tiktok.com/ZSxyz/", "tiktok"),
    "facebook-mobile": ("https://m.facebook.com/story.php?id=1", "facebook"),
    "facebook-watch": ("https://fb.watch/xYz12/", "facebook"),
    "instagram-short": ("https://instagr.am/p/Cabc/", "instagram"),
    "youtube-short": ("https://youtu.be/dQw4w9WgXcQ", "youtube"),
    "google-country": ("https://www.google.co.uk/maps/place/x", "google"),
    "x-short": ("https://t.co/abc", "x"),
    "look-alike": ("https://notfacebook.com/fake", None),
    "suffix-trick": ("https://facebook.com.evil.example/x", None),
    "unlisted-country": ("https://www.facebook.co.uk/x", None),
}


@pytest.mark.parametrize(("url", "owner"), URL_OWNERS.values(), ids=URL_OWNERS)
def test_urls_for_platform(url: str, owner: str | None) -> None:
    for key in ("tiktok", "facebook", "instagram", "youtube", "google", "x"):
        assert urls_for_platform([url, url], key, PLATFORMS) == ([url] if key == owner else [])


def test_check_urls_cleans_and_keeps_links_on_no_platform() -> None:
    given = ["<vm.tiktok.com/ZMabc/>", "https://bit.ly/x1", "https://vm.tiktok.com/ZMabc/"]
    assert check_urls(PLATFORMS, PLATFORMS["tiktok"], given) == [
        "https://vm.tiktok.com/ZMabc/", "https://bit.ly/x1"]


BAD_URLS = {
    "other-platform": ("https://www.instagram.com/x", "is on Instagram, not TikTok: escalate"),
    "ftp": ("ftp://tiktok.com/x", "not a web (http or https) URL"),
    "space": ("https://tiktok.com/a b", "not a URL"),
    "no-host": ("https://", "not a URL"),
    "word": ("hello", "not a URL"),
}


@pytest.mark.parametrize(("url", "message"), BAD_URLS.values(), ids=BAD_URLS)
def test_check_urls_refuses(url: str, message: str) -> None:
    with pytest.raises(MailroomError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_urls(PLATFORMS, PLATFORMS["tiktok"], [url])


def test_unknown_platform_lists_the_known_ones() -> None:
    assert known_platform(PLATFORMS, " TikTok ").key == "tiktok"
    with pytest.raises(MailroomError) as error:
        known_platform(PLATFORMS, "myspace")
    assert str(error.value).startswith("unknown platform 'myspace' (known: discord, facebook,")


# --- the platform's case number -------------------------------------------------------------

REFS = {
    "tiktok-subject": ("tiktok", ["Re: [Helpline #1] Escalation [Case ID: TT7731942]", ""],
                       "TT7731942"),
    "tiktok-body": ("tiktok", ["Re: escalation", "Your report number: 4419203."], "4419203"),
    "tiktok-word-is-no-ref": ("tiktok", ["Report received", "Thank you for your report"], None),
    "our-reference-quoted": ("microsoft", ["Re: Case reference: HL-000001", ""], None),
    "ours-then-theirs": ("microsoft", ["Case reference: HL-000001",
                                       "Tracking number: MS-12345678"], "MS-12345678"),
    "google-bracketed": ("google", ["Your case [1-2345678901234]", ""], "1-2345678901234"),
    "facebook-short-number": ("facebook", ["Case 1234", "nothing"], None),
    "subject-before-body": ("x", ["Case #998877", "ticket 112233"], "998877"),
}


@pytest.mark.parametrize(("key", "texts", "expected"), REFS.values(), ids=REFS)
def test_find_platform_ref(key: str, texts: list[str], expected: str | None) -> None:
    assert find_platform_ref(PLATFORMS[key], texts, own="HL-000001") == expected


def test_no_pattern_no_ref() -> None:
    bare = Platform(key="p", name="P", address="p@example.org", domains=("p.example",),
                    follow_up_days=5, max_follow_ups=2, case_ref_pattern="", template="p")
    assert find_platform_ref(bare, ["Case 12345678"], own=None) is None


# --- acknowledgement or answer --------------------------------------------------------------

ACKS = {
    "person": (Kind.NORMAL, "We removed the video.", False),
    "auto-submitted": (Kind.AUTO_REPLY, "We removed the video.", True),
    "says-automated": (Kind.NORMAL, "This is an automated message. Report 123 received.", True),
    "sent-automatically": (Kind.NORMAL, "This email was sent automatically.", True),
    "mentions-automation": (Kind.NORMAL, "Automated systems flagged the video; we removed it.",
                            False),
}


@pytest.mark.parametrize(("kind", "text", "expected"), ACKS.values(), ids=ACKS)
def test_is_acknowledgement(kind: str, text: str, expected: bool) -> None:
    assert is_acknowledgement(Classification(kind, ()), text) is expected


# --- which escalation an outcome is for ------------------------------------------------------


def esc(ident: int, platform: str, status: str, day: int = 2) -> Escalation:
    return Escalation(id=ident, platform=platform, status=status,
                      opened_at=OPENED.replace(day=day))


CHOICES = {
    "only-open": ([esc(1, "tiktok", "resolved"), esc(2, "x", "sent")], None, 2),
    "named": ([esc(1, "tiktok", "sent"), esc(2, "x", "sent")], "TikTok", 1),
    "the-one-answered": ([esc(1, "tiktok", "sent"), esc(2, "x", "responded")], None, 2),
    "named-the-one-answered": ([esc(1, "x", "sent"), esc(2, "x", "responded")], "x", 2),
    "no-response-counts": ([esc(1, "x", "no_response")], None, 1),
    "correct-the-only-one": ([esc(1, "x", "resolved")], None, 1),
    "correct-the-only-one-named": ([esc(1, "x", "resolved"), esc(2, "tiktok", "sent")], "x", 1),
}


@pytest.mark.parametrize(("rows", "platform", "chosen"), CHOICES.values(), ids=CHOICES)
def test_choose_escalation(rows: list[Escalation], platform: str | None, chosen: int) -> None:
    assert choose_escalation(rows, platform, reference="HL-000001").id == chosen


UNCLEAR = {
    "none": ([], None, "case HL-000001 has no escalation$"),
    "named-absent": ([esc(1, "x", "sent")], "tiktok", "has no escalation to tiktok"),
    "two-platforms": ([esc(1, "x", "sent"), esc(2, "tiktok", "sent")], None,
                      r"open escalations 1 \(x, sent\), 2 \(tiktok, sent\): name the platform"),
    "two-answered": ([esc(1, "x", "responded"), esc(2, "tiktok", "responded")], None,
                     "name the platform"),
    "same-platform-never-the-latest": (
        [esc(1, "x", "responded", 2), esc(2, "x", "responded", 3)], "x",
        r"open escalations 1 \(x, responded\), 2 \(x, responded\): reply to the notice"),
    "two-resolved": ([esc(1, "x", "resolved"), esc(2, "x", "resolved")], None,
                     r"has escalations 1 .*, 2 .*`mailroom escalations outcome ID VALUE`"),
}


@pytest.mark.parametrize(("rows", "platform", "message"), UNCLEAR.values(), ids=UNCLEAR)
def test_choose_escalation_refuses(rows: list[Escalation], platform: str | None,
                                   message: str) -> None:
    with pytest.raises(MailroomError, match=message):
        choose_escalation(rows, platform, reference="HL-000001")


# --- evidence file names ------------------------------------------------------------------------

NAMES = {
    "png": (1, "Jo Teacher screenshot.PNG", "evidence-1.png"),
    "no-suffix": (2, "README", "evidence-2"),
    "odd-suffix": (3, "x.p n g", "evidence-3"),
    "double": (4, "video.tar.gz", "evidence-4.gz"),
}


@pytest.mark.parametrize(("number", "name", "expected"), NAMES.values(), ids=NAMES)
def test_evidence_name(number: int, name: str, expected: str) -> None:
    assert evidence_name(number, name) == expected


# --- what the mail says --------------------------------------------------------------------------


def ticket(role: str | None) -> Ticket:
    return Ticket(id=7, reference="HL-000007", category="impersonation", role=role,
                  requester="jo.teacher@stmarys.example", requester_name="Jo Teacher",
                  subject="Jo Teacher from St Mary's: fake account")


ROLES = {
    "teacher": ("teacher", "reported to us by a teacher."),
    "police": ("police", "reported to us by a police officer."),
    "school-staff": ("school_staff", "reported to us by a member of school staff."),
    "custom": ("youth_worker", "reported to us by a youth worker."),
    "other": ("other", "reported to us by a professional."),
    "unknown": (None, "reported to us by a professional."),
}


@pytest.mark.parametrize(("role", "phrase"), ROLES.values(), ids=ROLES)
def test_escalation_mail_describes_the_role_never_the_person(role: str | None,
                                                             phrase: str) -> None:
    case = ticket(role)
    row = Escalation(id=3, platform="tiktok", urls=["https://vm.tiktok.com/ZMabc/"],
                     context="A pupil's parent made it.")
    context = escalation_context("Test Helpline", case, row, PLATFORMS["tiktok"])
    text, _ = Renderer(shipped_path("templates")).render("escalation/default",
                                                  {**context, "attachments": []})
    assert phrase in text and "Dear TikTok Trust and Safety team" in text
    assert "- https://vm.tiktok.com/ZMabc/" in text and "A pupil's parent made it." in text
    for secret in ("jo.teacher", "Jo Teacher", "St Mary", "stmarys"):
        assert secret not in text


NOTICES = {
    "response": ("practitioner/escalation_response", {
        "sender": "safety@tiktok.example", "subject": "Re: escalation", "text": "Removed.",
        "attachments": [], "withheld_count": 0, "withheld_reason": None},
        "TikTok answered the escalation of case HL-000007"),
    "no-response": ("practitioner/escalation_no_response", {"follow_ups": 2, "reason": None},
                    "nor any of the 2 follow-ups"),
}


@pytest.mark.parametrize(("name", "extra", "phrase"), NOTICES.values(), ids=NOTICES)
def test_practitioner_notices_render(name: str, extra: dict[str, object], phrase: str) -> None:
    context = {"reference": "HL-000007", "escalation_id": 3, "platform": "TikTok",
               "status": "responded",
               "platform_ref": "TT123456", "opened_at": OPENED,
               "urls": ["https://vm.tiktok.com/ZMabc/"], **extra}
    text, _ = Renderer(shipped_path("templates")).render(name, context)
    assert phrase in text and "TT123456" in text and "#outcome removed" in text
    assert "this escalation (3) only" in text


TEMPLATE_CHOICES = {
    "configured-default-wins": ("tiktok", "default", "escalation/default"),
    "configured-own": ("tiktok", "tiktok", "escalation/tiktok"),
    "configured-missing-key-exists": ("tiktok", "gone", "escalation/tiktok"),
    "nothing-of-its-own": ("x", "x", "escalation/default"),
    "never-the-follow-up": ("follow_up", "follow_up", "escalation/default"),
}


@pytest.mark.parametrize(("key", "template", "expected"), TEMPLATE_CHOICES.values(),
                         ids=TEMPLATE_CHOICES)
def test_escalation_template(tmp_path: Path, key: str, template: str, expected: str) -> None:
    (tmp_path / "escalation").mkdir()
    for name in ("default", "follow_up", "tiktok"):
        (tmp_path / "escalation" / f"{name}.txt.j2").write_text("x\n")
    platform = Platform(key=key, name=key, address="t@example.org", domains=("t.example",),
                        follow_up_days=3, max_follow_ups=2, case_ref_pattern="",
                        template=template)
    assert escalation_template(Renderer(tmp_path), platform) == expected


def test_escalation_view() -> None:
    row = Escalation(id=3, ticket_id=7, platform="tiktok", status="responded",
                     platform_ref="TT1", urls=["https://vm.tiktok.com/ZMabc/"], context=None,
                     opened_at=OPENED, responded_at=OPENED, follow_ups=1, outcome=None)
    view = escalation_view(row)
    assert view["opened_at"] == "2026-03-02T11:00:00+00:00" and view["resolved_at"] is None
    assert {"platform", "status", "platform_ref", "opened_at", "follow_ups", "outcome", "urls",
            "responded_at", "resolved_at", "next_follow_up_at"} <= set(view)
