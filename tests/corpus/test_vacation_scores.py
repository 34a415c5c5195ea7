"""How well ``vacation_reasons`` tells absence notices from people's mail, on real mail.

Reads the shared corpora in place (never copied; skipped when absent):

* **people's replies**: every fixture of the reply-stripping projects (talon,
  email_reply_parser and its ports, quotequail) and the reply strings inlined
  in talon's, zapier's and quotequail's Python tests. None may match, neither
  the whole text nor the new text ``strip_quotes`` keeps (the pipeline passes
  the latter). Precision first: this holds at 100 %.
* **all other mail** of the corpora that ``classify`` calls ``normal`` (lkml,
  RT, helpdesk, spam…): measured, and held at no match either.
* **automatic replies**: the vacation and other auto-replies of the Perl
  bounce parser's corpus and of our own ``tests/fixtures/classify/automatic``,
  read as if their automatic-reply headers were missing (subject and text
  only). :data:`NOT_A_NOTICE` lists the ones that deliberately do not count.

The scores appear in pytest's summary and in ``var/vacation-scores.json``.
"""

from __future__ import annotations

import ast
import email
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import inscriptis
import pytest

from mailroom.errors import MailError
from mailroom.intake.classify import ClassificationKind as Kind
from mailroom.intake.classify import classify, vacation_reasons
from mailroom.intake.message import parse_message_tree, parse_mime
from mailroom.intake.quotes import strip_quotes
from tests.corpus.corpus_files import CORPORA, PERL, corpus_messages, needs_corpora, relative

pytestmark = needs_corpora

SCORES_FILE = Path(__file__).resolve().parents[2] / "var" / "vacation-scores.json"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "classify"

REPLY_FOLDERS = (
    "mailgun-talon/tests/fixtures",
    "github-email_reply_parser/test/emails",
    "zapier-email-reply-parser/test/emails",
    "willdurand-EmailReplyParser/tests/Fixtures",
    "crisp-email-reply-parser/test/fixtures",
    "closeio-quotequail/tests/files",
)
REPLY_TEST_CODE = (
    "mailgun-talon/tests/text_quotations_test.py",
    "zapier-email-reply-parser/test/test_email_reply_parser.py",
    "closeio-quotequail/tests/test_quote.py",
    "closeio-quotequail/tests/test_unwrap.py",
)
NOT_TEXT = frozenset({".py", ".js", ".rb", ".php", ".json", ".pyc"})

AUTOMATIC = (
    PERL / "aol-vacation.msg",
    PERL / "warning-6.msg",
    PERL / "polish-autoreply.msg",
    PERL / "autoreply.msg",
    FIXTURES / "automatic" / "exchange-oof.eml",
    FIXTURES / "automatic" / "german-oof-subject-only.eml",
    FIXTURES / "automatic" / "vacation-responder.eml",
)
# "Thank you for you e-mail. I will endeavour to reply as soon as possible." is an
# automatic receipt, not an absence notice, and a person could write it word for word.
NOT_A_NOTICE = frozenset({"autoreply.msg"})


@dataclass
class Score:
    matched: int = 0
    total: int = 0
    names: list[str] = field(default_factory=list)  # the matches (or, for notices, the misses)


# --- reading ------------------------------------------------------------------------------


def reply_texts() -> Iterator[tuple[str, str]]:
    """(name, text) of every reply fixture and inlined reply string."""
    for folder in REPLY_FOLDERS:
        for path in sorted((CORPORA / folder).rglob("*")):
            if path.is_file() and path.suffix not in NOT_TEXT and "LICENSE" not in path.name:
                yield relative(path), fixture_text(path)
    for name in REPLY_TEST_CODE:
        path = CORPORA / name
        if path.is_file():
            for index, text in enumerate(string_constants(path)):
                yield f"{name}#{index}", text


def fixture_text(path: Path) -> str:
    if path.suffix == ".eml":
        return message_text(read_message(path))
    text = path.read_text(encoding="utf-8", errors="replace")
    return inscriptis.get_text(text) if path.suffix == ".html" else text


def string_constants(path: Path) -> list[str]:
    """Every string of 40 characters or more in a Python test module: its mail samples."""
    tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and len(node.value) >= 40]


def read_message(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def message_text(message: EmailMessage) -> str:
    try:
        body = message.get_body(("plain", "html"))
        text = body.get_content() if body is not None else ""
    except (LookupError, KeyError, ValueError, AssertionError):
        return ""
    if body is not None and body.get_content_type() == "text/html":
        return str(inscriptis.get_text(text))
    return str(text)


def subject_of(message: EmailMessage) -> str:
    try:
        return str(message.get("Subject", ""))
    except (ValueError, IndexError, AttributeError):
        return ""


# --- scoring ------------------------------------------------------------------------------


def matches(subject: str, text: str) -> bool:
    return bool(vacation_reasons(subject, text)) or bool(
        vacation_reasons(subject, strip_quotes(text)))


class ScoreReport:
    """Prints the scores in pytest's summary."""

    def __init__(self) -> None:
        self.scores: dict[str, Score] = {}

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.scores:
            terminalreporter.section("vacation-text scores")
            for name, score in self.scores.items():
                terminalreporter.write_line(score_line(name, score))


def score_line(name: str, score: Score) -> str:
    percent = round(100 * score.matched / score.total) if score.total else 0
    return f"vacation text, {name}: {score.matched}/{score.total} match ({percent}%)"


@pytest.fixture(scope="module")
def board(pytestconfig: pytest.Config) -> Iterator[dict[str, Score]]:
    report = ScoreReport()
    pytestconfig.pluginmanager.register(report, "vacation-scores")
    yield report.scores
    if report.scores:
        SCORES_FILE.parent.mkdir(exist_ok=True)
        summary = {name: {"matched": s.matched, "total": s.total, "names": s.names}
                   for name, s in report.scores.items()}
        SCORES_FILE.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def test_no_human_reply_reads_as_an_absence_notice(board: dict[str, Score]) -> None:
    score = Score()
    for name, text in reply_texts():
        score.total += 1
        if matches("", text):
            score.matched += 1
            score.names.append(name)
    board["human replies (must be 0)"] = score
    print(score_line("human replies", score))
    assert score.total > 300
    assert score.names == []


def test_no_other_mail_of_the_corpora_reads_as_an_absence_notice(
    board: dict[str, Score],
) -> None:
    """Every corpus message ``classify`` calls normal, parsed as the pipeline parses it."""
    score = Score()
    for path in corpus_messages():
        raw = path.read_bytes()
        try:
            parsed, tree = parse_message_tree(raw)
        except MailError:
            continue
        kind = classify(tree if tree is not None else parse_mime(raw), envelope_sender=None,
                        our_domains=("helpline.example",),
                        loop_token="helpline@helpline.example").kind
        if kind != Kind.NORMAL:
            continue
        score.total += 1
        if matches(parsed.subject, parsed.text):
            score.matched += 1
            score.names.append(relative(path))
    board["other mail called normal (must be 0)"] = score
    print(score_line("other mail", score))
    assert score.total > 300
    assert score.names == []


def test_auto_replies_without_their_headers_are_recognised(board: dict[str, Score]) -> None:
    score, misses = Score(), []
    for path in AUTOMATIC:
        if not path.is_file():
            continue
        message = read_message(path)
        found = vacation_reasons(subject_of(message), strip_quotes(message_text(message)))
        expected = path.name not in NOT_A_NOTICE
        score.total += 1
        if bool(found) == expected:
            score.matched += 1
        else:
            misses.append(path.name)
    score.names = misses
    board["auto-replies read without headers (as expected)"] = score
    print(score_line("auto-replies", score))
    assert misses == []
