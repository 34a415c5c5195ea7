"""Quote forms found in real mail that the shared corpora do not carry, one class each.

Each class has replies that must be cut and, beside them, text of the same
shape that a person wrote and that must stay (precision first: a requester
quoting what an abuser wrote keeps it). The score per class is printed.

A limit: text written exactly as a client writes an attribution ("On
28/04/2017 11:53, Sam Jones" directly above ``>`` lines) is read as one; the
raw message always keeps it.
"""

from __future__ import annotations

import pytest

from mailroom.intake.quotes import parse_reply, strip_quotes

# (class, id, text, expected new text)
CUT = [
    ("wrapped-attribution", "address-on-its-own-line",
     "Thanks, that worked.\n\nOn Fri, Apr 28, 2017 at 11:53 AM, Jo Bloggs <\n"
     "jo@school.example> wrote:\n> Did it work?\n", "Thanks, that worked."),
    ("wrapped-attribution", "mailto-then-wrote",
     "Thanks, that worked.\n\nOn Fri, Apr 28, 2017 at 11:53 AM, Jo Bloggs <\n"
     "mailto:jo@school.example\n> wrote:\n\n> Did it work?\n", "Thanks, that worked."),
    ("wrapped-attribution", "mailto-in-brackets",
     "Thanks.\n\nOn Fri, 28 Apr 2017 at 11:53, Jo Bloggs <jo@school.example\n"
     "<mailto:jo@school.example>> wrote:\n\n> Did it work?\n", "Thanks."),
    ("name-first-attribution", "german",
     "Danke!\n\nJo Bloggs <jo@school.example> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:\n\n"
     "> Hat es geklappt?\n", "Danke!"),
    ("name-first-attribution", "french",
     "Merci !\n\nJo Bloggs <jo@school.example> a écrit le ven. 28 avr. 2017 à 11:53 :\n\n"
     "> Ça a marché ?\n", "Merci !"),
    ("name-first-attribution", "dutch",
     "Dank je.\n\nJo Bloggs <jo@school.example> schreef op vr 28 apr. 2017 om 11:53:\n\n"
     "> Is het gelukt?\n", "Dank je."),
    ("pipe-quote", "old-gmail-date-line",
     "Yes please.\n\n2013/7/20 Jo Bloggs <jo@school.example>\n\n| Shall we report it?\n| Jo\n",
     "Yes please."),
    ("pipe-quote", "with-blank-pipe-lines",
     "Done.\n\n2013/7/20 Jo Bloggs <jo@school.example>\n| Shall we?\n|\n| Jo\n", "Done."),
    ("top-attribution", "answer-between-line-and-quote",
     "On Fri, 28 Apr 2017 at 11:53, Jo Bloggs <jo@school.example> wrote:\n"
     "The account is still up, here is the new link.\n\nJo\n\n> Is it still up?\n",
     "The account is still up, here is the new link.\n\nJo"),
    ("date-name-no-wrote", "date-time-comma-name",
     "Still there.\n\nOn 28/04/2017 11:53, Jo Bloggs\n> Is it gone?\n", "Still there."),
    ("date-name-no-wrote", "iso-date",
     "Still there.\n\n2017-04-28 11:53 GMT+01:00, Jo Bloggs\n> Is it gone?\n", "Still there."),
]

# Text a person wrote in the same shapes, which stays whole.
KEPT = [
    ("top-attribution", "a-pasted-message-is-evidence",
     "On Mon, 1 Jan 2024 at 10:00, Bully <b@example.com> wrote:\n\nI will find you"),
    ("date-name-no-wrote", "a-sentence-about-a-date",
     "On 28/04/2017 11:53, the account posted this about Mr Smith\n> you are next\n\n"
     "What should we do?"),
    ("pipe-quote", "a-table-with-no-date-line",
     "Here are the accounts:\n\n| name | url |\n| fake_head | tiktok.com/@fake_head |\n"),
    ("name-first-attribution", "someone-telling-what-was-written",
     "The pupil told us: he wrote to her on Friday 28 April at 11:53.\n\nWhat can we do?"),
]

SCORES: dict[str, list[bool]] = {}


@pytest.mark.parametrize(("form", "text", "expected"), [c[0:1] + c[2:] for c in CUT],
                         ids=[f"{c[0]}:{c[1]}" for c in CUT])
def test_a_quote_form_is_cut(form: str, text: str, expected: str) -> None:
    got = strip_quotes(text)
    SCORES.setdefault(form, []).append(got == expected)
    assert got == expected


@pytest.mark.parametrize(("form", "text"), [(c[0], c[2]) for c in KEPT],
                         ids=[f"{c[0]}:{c[1]}" for c in KEPT])
def test_a_person_writing_in_that_shape_is_kept(form: str, text: str) -> None:
    got = parse_reply(text).text
    SCORES.setdefault(form, []).append(" ".join(got.split()) == " ".join(text.split()))
    assert " ".join(got.split()) == " ".join(text.split())


def test_print_the_scores_per_class() -> None:
    for form, results in sorted(SCORES.items()):
        print(f"quote forms {form}: {sum(results)}/{len(results)}")
    assert SCORES, "run with the cases above"
