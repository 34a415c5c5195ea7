"""What stops a mail loop across senders: one case tag per subject, and the content
keys of the acknowledgement circuit breaker (normalised subject, body fingerprint)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.cases.replies import MIN_BODY_CHARS, content_keys, normalise_new_text
from mailroom.outbox.compose import normalise_subject, tag_subject, untagged_subject

TEMPLATE = "[Helpline #{id}]"
ANY_TAG = re.compile(r"\[\s*helpline\s*#\s*\d+\s*\]", re.IGNORECASE)
SECRET = b"test-secret-key"
AUTORESPONDER = "Thank you for contacting Example Support. Your request has been received."


# --- one tag per subject --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [Helpline #51] Re: [Helpline #50] Fake account", "Re: [Helpline #52] Fake account"),
        ("[helpline #7] [HELPLINE # 8] Fake account", "[Helpline #52] Fake account"),
        ("Fake account [Helpline #3]", "[Helpline #52] Fake account"),
        ("Re: Fwd: [Helpline #123456789012345678901234] x", "Re: [Helpline #52] x"),
        ("[Helpline #[Helpline #1]2] x", "[Helpline #52] x"),
        ("AW: SV: Re: [Helpline #52] x", "Re: [Helpline #52] x"),
    ],
    ids=["loop-growth", "any-case-and-spacing", "at-the-end", "huge-number", "nested",
         "own-tag-and-prefixes"],
)
def test_every_tag_of_ours_goes_before_the_case_tag(subject: str, expected: str) -> None:
    assert tag_subject(subject, TEMPLATE, 52) == expected


PIECES = ["[Helpline #", "[helpline  # ", "]", "1", "23", " ", "Re:", "AW: ", "[", "#", "x",
          "[Helpline #7]", "\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=25).map("".join))
def test_a_tagged_subject_carries_exactly_one_tag(subject: str) -> None:
    tagged = tag_subject(subject, TEMPLATE, 9)
    assert ANY_TAG.findall(tagged) == ["[Helpline #9]"]


def test_fifty_rounds_of_a_loop_keep_one_tag_and_one_re() -> None:
    subject = "Fake account"
    for case in range(1, 51):
        ticket_subject = untagged_subject(f"Re: {subject}", TEMPLATE)  # the new case
        subject = tag_subject(f"Re: {ticket_subject}", TEMPLATE, case)  # its acknowledgement
        assert ANY_TAG.findall(subject) == [f"[Helpline #{case}]"]
    assert subject == "Re: [Helpline #50] Fake account"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [Helpline #51] Re: [Helpline #50] Fake account", "Re: Fake account"),
        ("[Helpline #3] Fake account", "Fake account"),
        ("Fwd: [Helpline #3] photos", "Fwd: photos"),
        ("[Helpline #3]", ""),
        ("Re: Re: no tag of ours", "Re: Re: no tag of ours"),
        ("About case #3", "About case #3"),
    ],
    ids=["loop-growth", "tag-only-prefix", "forward", "only-a-tag", "untagged-kept",
         "not-a-tag"],
)
def test_a_new_case_keeps_its_subject_without_our_tags(subject: str, expected: str) -> None:
    assert untagged_subject(subject, TEMPLATE) == expected


# --- the normalised subject ------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    ["Fake account", "RE: [Helpline #5] AW:  Fake Account",
     "Re: [Helpline #51] Re: [Helpline #50] Fake account", "SV: Fwd: fake\taccount ",
     "[helpline #9] Re[2]: FAKE ACCOUNT"],
    ids=["plain", "prefixes-and-tag", "loop-growth", "forward-and-tab", "numbered-reply"],
)
def test_subjects_that_say_the_same_thing_normalise_the_same(subject: str) -> None:
    assert normalise_subject(subject, TEMPLATE) == "fake account"


def test_words_that_start_like_prefixes_are_kept() -> None:
    assert normalise_subject("Ref: 12345 Recap", TEMPLATE) == "ref: 12345 recap"
    assert normalise_subject("Re:", TEMPLATE) == ""


# --- the body fingerprint -------------------------------------------------------------------


def test_new_text_loses_quotes_digits_white_space_and_case() -> None:
    text = "Thank you for case HL-000051.\n\n> Quoted line\n  >> deeper\nSee You  Soon\n"
    assert normalise_new_text(text) == "thankyouforcasehl-.seeyousoon"


def test_the_same_content_gives_the_same_keys_whatever_the_round() -> None:
    first = content_keys("Re: [Helpline #1] Fake account",
                         AUTORESPONDER + "\nTicket 1\n> Your case HL-000001", tag_template=TEMPLATE,
                         secret=SECRET)
    later = content_keys("Re: Re: [Helpline #50] fake  ACCOUNT",
                         AUTORESPONDER + "\nTicket 50\n> Your case HL-000050",
                         tag_template=TEMPLATE, secret=SECRET)
    assert first == later
    assert first.subject and first.body and first.subject != first.body
    assert re.fullmatch(r"[0-9a-f]{32}", first.subject)


def test_different_content_gives_different_keys() -> None:
    one = content_keys("Fake account", AUTORESPONDER, tag_template=TEMPLATE, secret=SECRET)
    other = content_keys("Nude image shared", "Someone shared a picture of our pupil widely.",
                         tag_template=TEMPLATE, secret=SECRET)
    assert one.subject != other.subject and one.body != other.body


def test_keys_depend_on_the_secret_and_hold_no_text() -> None:
    one = content_keys("Fake account", AUTORESPONDER, tag_template=TEMPLATE, secret=SECRET)
    other = content_keys("Fake account", AUTORESPONDER, tag_template=TEMPLATE, secret=b"other")
    assert one.subject != other.subject and one.body != other.body
    assert "fake" not in (one.subject or "") + (one.body or "")


def test_an_empty_subject_and_a_short_text_give_no_key() -> None:
    keys = content_keys("Re: [Helpline #4]", "Please see attached.", tag_template=TEMPLATE,
                        secret=SECRET)
    assert keys.subject is None and keys.body is None
    assert len(normalise_new_text("Please see attached.")) < MIN_BODY_CHARS
