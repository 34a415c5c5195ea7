"""How much of real-world reply text ``strip_quotes`` gets exactly right.

The fixtures are other projects' test mail in ``../shared/corpora`` (never
copied here). Their expected results are scattered through those projects' test
code as fragment flags, regexes and equalities; the tables below turn each into
the visible text a reader should see (``_note`` of talon's EXPECTED.derived.json,
``email_reply_parser_test.rb``, ``test_email_reply_parser.py``,
``EmailParserTest.php``/``EmailReplyParserTest.php``, crisp's ``test.js`` and,
as an extra set of HTML replies and forwards, quotequail's ``test_unwrap_html``).

Each case may carry a note:

- ``derived``: upstream only checks part of the text (a fragment *contains* a
  phrase); the table says what our policy gives for the rest.
- ``policy``: upstream keeps a signature that our contract removes ("Sent from
  my iPhone"); the table expects it removed.
- ``disagree``: our policy deliberately differs (sign-offs and inline quotes are
  kept, a lone "From:" line is no cut); the upstream text is kept, so the case
  counts as a miss and the score stays comparable with the libraries'.
- ``known miss``: a limit we know of.

Comparison is on normalised whitespace. Scores appear in pytest's summary, go
to ``var/quote-scores.json`` and are held above a floor, so a regression fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email import message_from_binary_file, policy
from pathlib import Path

import inscriptis
import pytest

from mailroom.intake.quotes import strip_quotes

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
SCORES_FILE = Path(__file__).resolve().parents[2] / "var" / "quote-scores.json"

COMMON = (
    "Fusce bibendum, quam hendrerit sagittis tempor, dui turpis tempus erat, pharetra "
    "sodales ante sem sit amet metus.\nNulla malesuada, orci non vulputate lobortis, massa "
    "felis pharetra ex, convallis consectetur ex libero eget ante.\nNam vel turpis posuere, "
    "rhoncus ligula in, venenatis orci. Duis interdum venenatis ex a rutrum.\nDuis ut libero "
    "eu lectus consequat consequat ut vel lorem. Vestibulum convallis lectus urna,\net mollis "
    "ligula rutrum quis. Fusce sed odio id arcu varius aliquet nec nec nibh."
)
RIAK = (
    "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after\n"
    "running a test?\nI am currently using the Java HTTP API."
)
ANOTHER = "Here is another email"
BULLETS = (
    "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n\n"
    "   - how about bullets\n   - and another"
)
NOT_SIGNATURE = "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
TOP_POST = "Oh thanks.\n\nHaving the function would be great."
HTML_REPLY = "Hi. I am fine.\n\nThanks,\nAlex"

# Floors: a little below what the code reaches today (see var/quote-scores.json).
FLOORS = {
    "talon": 20, "github": 18, "zapier": 21, "willdurand": 57, "crisp": 72, "quotequail": 7,
}


@dataclass(frozen=True)
class Lines:
    """Lines ``first``..``last`` (1-based, inclusive) of the fixture itself."""

    first: int
    last: int


WHOLE = Lines(1, 10**9)


@dataclass(frozen=True)
class Case:
    fixture: str
    expected: str | Lines | tuple[str | Lines, ...]
    note: str = ""  # "derived: …" or "disagree: …" (see module docstring)
    fill: tuple[str, str] | None = None  # replace a placeholder in the fixture
    html: bool = False
    eml: bool = False


@dataclass
class Score:
    passed: int = 0
    total: int = 0
    misses: list[str] = field(default_factory=list)


TALON = "mailgun-talon/tests/fixtures"
TALON_CASES = [
    *(
        Case(f"standard_replies/{name}.eml", "Hello", eml=True)
        for name in (
            "android", "aol", "apple_mail", "apple_mail_2", "comcast", "gmail",
            "hotmail", "outlook", "thunderbird", "yahoo",
        )
    ),
    # talon extracts quotations only and keeps signatures; ours removes them.
    Case("standard_replies/iphone.eml", "Hello", "policy: mobile signature removed", eml=True),
    Case("standard_replies/sparrow.eml", "Hello", "policy: '-- ' signature removed", eml=True),
    *(
        Case(f"html_replies/{name}.html", HTML_REPLY, html=True)
        for name in (
            "gmail", "hotmail", "mail_ru", "ms_outlook_2003", "ms_outlook_2007",
            "ms_outlook_2010", "thunderbird", "windows_mail", "yandex_ru",
        )
    ),
]

GITHUB = "github-email_reply_parser/test/emails"
GITHUB_CASES = [
    Case("correct_sig.txt", "this is an email with a correct -- signature."),
    Case("email_1_1.txt", RIAK, "disagree: '-Abhishek Kona' is a sign-off, we keep it"),
    Case("email_1_2.txt", Lines(1, 34)),
    Case("email_1_3.txt", TOP_POST, "disagree: '-Abhishek Kona' is a sign-off, we keep it"),
    Case("email_1_4.txt", "Awesome! I haven't had another problem with it."),
    Case("email_1_5.txt", WHOLE),
    Case(
        "email_1_6.txt",
        "I get proper rendering as well.\n\nSent from a magnificent torch of pixels",
    ),
    Case("email_1_7.txt", ":+1:"),
    Case("email_1_8.txt", Lines(1, 19)),
    Case("email_2_1.txt", "Outlook with a reply"),
    Case("email_2_2.txt", "Outlook with a reply directly above line"),
    Case("email_2_3.txt", "Outlook with a reply directly above line"),
    Case("email_BlackBerry.txt", ANOTHER),
    Case("email_bullets.txt", BULLETS),
    Case("email_iPhone.txt", ANOTHER),
    Case("email_long_quote.txt", Lines(1, 8), "disagree: '-Abhishek Kona' sign-off kept"),
    Case("email_multi_word_sent_from_my_mobile_device.txt", ANOTHER),
    Case("email_one_is_not_on.txt", Lines(1, 5)),
    Case("email_sent_from_my_not_signature.txt", NOT_SIGNATURE),
    Case("email_sig_delimiter_in_middle_of_line.txt", WHOLE),
    Case("greedy_on.txt", Lines(1, 6)),
    Case("pathological.txt", Lines(1, 2), "derived: the Ruby test only times it"),
]

ZAPIER = "zapier-email-reply-parser/test/emails"
ZAPIER_CASES = [
    *(case for case in GITHUB_CASES if case.fixture != "email_long_quote.txt"
      and case.fixture != "email_2_3.txt"),
    Case("email_2_3.txt", "Outlook with a reply above headers using unusual format"),
    Case("email_gmail.txt", "This is a test for inbox replying to a github message."),
    Case("email_partial_quote_header.txt", Lines(1, 6)),
    Case("email_headers_no_delimiter.txt", "And another reply!"),
]

WILLDURAND = "willdurand-EmailReplyParser/tests/Fixtures"
DATE_HEADERS = (
    "On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:",
    "2014-03-20 8:48 GMT+01:00 Rémi Dolan <do_not_reply@dolan.com>:",
    "2014-03-20 20:48 GMT+01:00 Rémi Dolan <do_not_reply@dolan.com>:",
    "2014-03-09 20:48 GMT+01:00 Rémi Dolan <do_not_reply@dolan.com>:",
    "Le 19 mars 2014 10:37, Cédric Lombardot <cedric.lombardot@gmail.com> a écrit :",
    "El 19/03/2014 11:34, Juan Pérez <juan.perez@mailcatch.com> escribió:",
    "El 19/03/2014 11:34, Juan Pérez <juan.perez@mailcatch.com> ha escrit:",
    "W dniu 7 stycznia 2015 15:24 użytkownik Paweł Brzoski <pbrzoski91@gmail.com> napisał:",
    "Le 19/03/2014 11:34, Georges du chemin a écrit :",
    "W dniu 2015-01-07 14:23, pbrzoski91@gmail.com pisze: ",
    "Den 08/06/2015 kl. 21.21 skrev Test user <test@example.com>:",
    "Am 25.06.2015 um 10:55 schrieb Test user:",
    "Test user <test@example.com> schrieb:",
    "在 2016年11月8日，下午2:23，Test user <test@example.com> 写道：",
    "2016. 11. 8. 오후 12:39 Test user <test@example.com> 작성:",
    "2016/11/08 14:26、Test user <test@example.com> のメッセージ:",
    "tir. 18. apr. 2017 kl. 13:09 skrev Test user <test@example.com>:",
)
FROM_HEADERS = (
    "From: foo@example.com <foo@example.com>",
    "De: foo@example.com <foo@example.com>",
    "Van: foo@example.com <foo@example.com>",
    "Da: foo@example.com <foo@example.com>",
)
WILLDURAND_CASES = [
    Case("email_1.txt", RIAK, "disagree: '-Abhishek Kona' is a sign-off, we keep it"),
    Case(
        "email_2.txt",
        ("Hi,", Lines(9, 34)),
        "disagree: we keep quotes between new paragraphs (inline answers)",
    ),
    Case("email_3.txt", TOP_POST, "disagree: '-Abhishek Kona' is a sign-off, we keep it"),
    Case("email_4.txt", "Awesome! I haven't had another problem with it."),
    Case("email_5.txt", WHOLE),
    Case(
        "email_6.txt",
        "I get proper rendering as well.\n\nSent from a magnificent torch of pixels",
    ),
    *(Case(f"email_{number}.txt", COMMON) for number in (
        7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 22, 23)),
    Case("email_norwegian_gmail.txt", COMMON),
    Case(
        "email_23_1.txt",
        "\n".join(COMMON.splitlines()[:3]) + "\n\nSomething wrote:\n"
        + "\n".join(COMMON.splitlines()[3:]),
    ),
    Case(
        "email_19.txt",
        "On Thursday, I get proper rendering.\n\nSent from a magnificent torch of pixels",
    ),
    Case("email_20.txt", "On Thursday."),
    Case("email_21.txt", WHOLE, "derived: no quote in it"),
    Case("email_2_1.txt", "Outlook with a reply"),
    Case("email_blackberry.txt", ANOTHER),
    Case("email_iphone.txt", ANOTHER),
    Case("email_multi_word_sent_from_my_mobile_device.txt", ANOTHER),
    Case("email_sent_from_my_not_signature.txt", NOT_SIGNATURE),
    Case("email_w10_mail.txt", "Great thanks Bort, going for a test now.\nBraxton"),
    Case("email_bullets.txt", BULLETS),
    Case("email_unquoted_reply.txt", "This is my reply."),
    Case("email_thread.txt", "This is new email reply in thread from bellow."),
    Case("email_custom_quote_header.txt", "Thank you!", "upstream adds a custom regex"),
    Case("email_customer_quote_header_2.txt", "Thank you very much."),
    Case(
        "email_customer_quote_header_3.txt",
        "bonjour,\nje n'ai pas eu de retour sur ma précision..\nmerci d'avance",
    ),
    Case("email_one_is_not_on.txt", Lines(1, 5)),
    Case("email_zimbra_free_en.txt", Lines(1, 9), "derived: contains 'Michael Scott' only"),
    Case("email_zimbra_free_fr.txt", Lines(1, 10), "derived: contains 'Michael Scott' only"),
    Case("email_issue_77.txt", Lines(1, 9), "derived: fixture without a test, like zimbra"),
    Case("email_ls-l.txt", Lines(1, 28), "derived: body before '-- ' (custom regex upstream)"),
    Case("correct_sig.txt", "this is an email with a correct -- signature."),
    Case("sig_no_empty_line.txt", "this is an email with a signature with no empty line above."),
    *(
        Case("email_with_date_headers.txt", "Thank you very much.", fill=("[DATE]", header))
        for header in DATE_HEADERS
    ),
    *(
        Case(
            "email_with_from_headers.txt", "", "disagree: a lone From: line is not a cut",
            fill=("[FROM]", header),
        )
        for header in FROM_HEADERS
    ),
]

CRISP = "crisp-email-reply-parser/test/fixtures"
CRISP_CASES = [
    Case("email_1.txt", RIAK + "\n\n-Abhishek Kona"),
    Case("email_2.txt", Lines(1, 34)),
    Case("email_3.txt", TOP_POST + "\n\n-Abhishek Kona"),
    Case("email_4.txt", "Awesome! I haven't had another problem with it."),
    Case("email_5.txt", WHOLE),
    Case("email_6.txt", "I get proper rendering as well.\n\nSent a magnificent torch of pixels"),
    *(Case(f"email_{number}.txt", COMMON) for number in (
        7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 22, 23, 24, 25, 26)),
    *(
        Case(f"email_{name}.txt", COMMON)
        for name in (
            "portuguese", "german", "german_2", "german_3", "german_outlook",
            "norwegian_gmail", "finnish", "italian", "russian", "outlook_split_line_from",
            "gmail_split_line_from", "ios_outlook_fr", "ios_outlook", "msn", "fr_multiline",
            "french_2", "en_multiline_2", "original_message", "original_message_2",
            "danish_dash_separator", "french_dash_separator", "tricky_5_mixed_languages",
            "tricky_10_special_chars_in_name", "tricky_12_no_space_after_header",
            "tricky_14_long_quote_header", "tricky_15_original_message_variations",
        )
    ),
    Case("correct_sig.txt", "this is an email with a correct -- signature."),
    Case("sig_no_empty_line.txt", "this is an email with a signature with no empty line above."),
    Case("email_one_is_not_on.txt", Lines(1, 5)),
    Case(
        "email_sent_from.txt",
        "Hi it can happen to any texts you type, as long as you type in between words or "
        "paragraphs.",
    ),
    Case("email_emoji.txt", "\U0001f389\n\n\u2014\nJohn Doe\nCEO at Pandaland\n\n@pandaland"),
    Case("email_not_a_signature.txt", WHOLE),
    Case("email_not_a_signature_2.txt", WHOLE),
    Case("email_reply_header.txt", Lines(1, 11)),
    Case(
        "email_zoho.txt",
        "What is the best way to clear a Riak bucket of all key, values after\nrunning a test?",
    ),
    Case(
        "email_with_regards.txt",
        "Hi,\n\nI still have the same problem....\n\nCan you help?",
        "disagree: 'Regards, John Doe' is a sign-off, we keep it",
    ),
    Case("email_tricky_1_on_false_positive.txt", WHOLE),
    Case("email_tricky_2_url_with_wrote.txt", WHOLE, "derived"),
    Case("email_tricky_3_code_block.txt", WHOLE, "derived"),
    Case("email_tricky_4_from_in_body.txt", WHOLE, "derived"),
    Case("email_tricky_6_regards_in_sentence.txt", WHOLE, "derived"),
    Case("email_tricky_7_multiple_dashes.txt", WHOLE, "derived"),
    Case("email_tricky_8_sent_from_in_content.txt", WHOLE, "derived"),
    Case("email_tricky_9_nested_quotes.txt", "I agree with the points below.", "derived"),
    Case(
        "email_tricky_11_double_signature.txt",
        "Thanks for your help!\n\nBest regards,\nJohn",
        "derived: cut at '--'",
    ),
    Case("email_tricky_13_timestamp_variations.txt", WHOLE),
    Case("email_tricky_16_unicode_signatures.txt", WHOLE, "derived: no delimiter"),
    Case("email_tricky_17_forward_header.txt", WHOLE, "derived: forwards are content"),
    Case("email_tricky_18_inline_reply.txt", WHOLE, "derived: inline answers keep quotes"),
    Case("email_tricky_19_quote_without_header.txt", WHOLE, "derived"),
    Case(
        "email_tricky_20_html_entities.txt",
        "The data should be &gt; 100 and &lt; 200.\n\n"
        "We need to ensure that &amp; symbols are handled correctly.",
        "derived",
    ),
]

QUOTEQUAIL = "closeio-quotequail/tests/files"
QUOTEQUAIL_CASES = [
    # quotequail's unwrap_html: "type" reply → its html_top is the new text.
    Case("apple_reply.html", "Foo\n\nBar", html=True),
    Case("gmail_reply.html", "foo\n\nbar", html=True),
    Case(
        "ios_mail_reply_unescaped_address.html",
        "Sounds good, I'll be there at 2.",
        "policy: 'Sent from my iPhone' removed",
        html=True,
    ),
    Case(
        "yahoo_reply_unescaped_address.html",
        "Thanks Jane, that looks great. One question on item 2 - can we ship it before "
        "Friday?\n\nDan",
        html=True,
    ),
    # "type" forward: the forwarded message is the content, all of it stays.
    *(
        Case(f"{name}_forward.html", WHOLE, "derived: forwards are content", html=True)
        for name in ("apple", "gmail", "mailru", "thunderbird")
    ),
    Case(
        "outlook_forward.html", WHOLE,
        "known miss: an Outlook forward with a note has no marker and reads as a reply",
        html=True,
    ),
]

SUITES = {
    "talon": (TALON, TALON_CASES),
    "github": (GITHUB, GITHUB_CASES),
    "zapier": (ZAPIER, ZAPIER_CASES),
    "willdurand": (WILLDURAND, WILLDURAND_CASES),
    "crisp": (CRISP, CRISP_CASES),
    "quotequail": (QUOTEQUAIL, QUOTEQUAIL_CASES),
}


def normalise(text: str) -> str:
    return " ".join(text.replace("\u200b", "").split())


def read_input(folder: Path, case: Case) -> str:
    """The text a mail reader would hand to ``strip_quotes``."""
    path = folder / case.fixture
    if case.eml:
        with path.open("rb") as handle:
            message = message_from_binary_file(handle, policy=policy.default)
        part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        return part.get_content()
    text = path.read_text(encoding="utf-8", errors="replace")
    if case.fill:
        text = text.replace(*case.fill)
    return inscriptis.get_text(text) if case.html else text


def expected_text(source: str, case: Case) -> str:
    parts = case.expected if isinstance(case.expected, tuple) else (case.expected,)
    lines = source.replace("\r\n", "\n").split("\n")
    return "\n".join(
        "\n".join(lines[part.first - 1 : part.last]) if isinstance(part, Lines) else part
        for part in parts
    )


def score_suite(folder: Path, cases: list[Case], strip=strip_quotes) -> Score:
    score = Score()
    for case in cases:
        source = read_input(folder, case)
        got = strip(source, from_html=case.html)
        score.total += 1
        if normalise(got) == normalise(expected_text(source, case)):
            score.passed += 1
        else:
            label = case.fixture + (f" [{case.fill[1][:30]}]" if case.fill else "")
            score.misses.append(f"{label}{' (' + case.note + ')' if case.note else ''}")
    return score


class ScoreReport:
    """A plugin registered at run time: prints the scores in pytest's summary."""

    def __init__(self) -> None:
        self.scores: dict[str, Score] = {}

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.scores:
            terminalreporter.section("quote-stripping scores")
            for name, score in self.scores.items():
                terminalreporter.write_line(score_line(name, score))


@pytest.fixture(scope="module")
def board(pytestconfig: pytest.Config):
    """Collects the scores; they end in pytest's summary and in var/quote-scores.json."""
    report = ScoreReport()
    pytestconfig.pluginmanager.register(report, "quote-scores")
    yield report.scores
    if report.scores:
        SCORES_FILE.parent.mkdir(exist_ok=True)
        summary = {
            name: {"passed": s.passed, "total": s.total, "misses": s.misses}
            for name, s in report.scores.items()
        }
        text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        SCORES_FILE.write_text(text, encoding="utf-8")


def score_line(name: str, score: Score) -> str:
    percent = round(100 * score.passed / score.total) if score.total else 0
    return f"quote-stripping {name}: {score.passed}/{score.total} ({percent}%)"


@pytest.mark.parametrize("suite", list(SUITES), ids=list(SUITES))
def test_quote_stripping_score(suite: str, board: dict[str, Score]) -> None:
    folder_name, cases = SUITES[suite]
    folder = CORPORA / folder_name
    if not folder.is_dir():
        pytest.skip(f"corpus not present: {folder}")
    score = score_suite(folder, cases)
    board[suite] = score
    print(score_line(suite, score))
    assert score.passed >= FLOORS[suite], (
        f"{score_line(suite, score)} fell below {FLOORS[suite]}; misses: {score.misses}"
    )
