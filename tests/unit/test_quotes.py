"""strip_quotes: new text kept, history and signatures cut, forwards and evidence kept."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.intake.quotes import parse_reply, strip_quotes

QUOTE = "> Hello, can you help?\n> \n> Sam\n"

REPLIES = [
    (
        "gmail-one-line",
        "Thanks, done.\n\nOn Mon, 1 Jan 2024 at 10:00, Sam Lee <sam@example.org> wrote:\n\n"
        + QUOTE,
        "Thanks, done.",
    ),
    (
        "gmail-wrapped-two-lines",
        "Thanks, done.\n\nOn Mon, 1 Jan 2024 at 10:00, Sam Lee <\nsam@example.org> wrote:\n\n"
        + QUOTE,
        "Thanks, done.",
    ),
    (
        "gmail-wrote-on-own-line",
        "Thanks.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Sam Lee <sam@example.org>\nwrote:\n\n"
        "The old message, not quoted.\n",
        "Thanks.",
    ),
    (
        "gmail-three-lines",
        "Yes.\n\nOn Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@example.com>\nwrote:\n\n"
        + QUOTE,
        "Yes.",
    ),
    (
        "german",
        "Danke!\n\nAm 01.01.2024 um 10:00 schrieb Sam Lee <sam@example.org>:\n\n" + QUOTE,
        "Danke!",
    ),
    (
        "german-no-address",
        "Danke!\n\nAm Mo., 1. Jan. 2024 um 10:00 Uhr schrieb Sam Lee:\n\nAlte Nachricht\n",
        "Danke!",
    ),
    (
        "french",
        "Merci.\n\nLe lun. 1 janv. 2024 à 10:00, Sam Lee <sam@example.org> a écrit :\n\n" + QUOTE,
        "Merci.",
    ),
    (
        "french-wrapped",
        "Merci.\n\nLe lun. 15 nov. 2021 à 19:42, Sam Lee <sam@example.org>\na écrit :\n\n"
        "Ancien message\n",
        "Merci.",
    ),
    (
        "spanish",
        "Gracias.\n\nEl lun, 1 ene 2024 a las 10:00, Sam Lee (<sam@example.org>) escribió:\n\n"
        + QUOTE,
        "Gracias.",
    ),
    (
        "dutch",
        "Bedankt.\n\nOp ma 1 jan. 2024 om 10:00 schreef Sam Lee <sam@example.org>:\n\n" + QUOTE,
        "Bedankt.",
    ),
    (
        "italian",
        "Grazie.\n\nIl giorno lun 1 gen 2024 alle ore 10:00 Sam Lee <sam@example.org> ha "
        "scritto:\n\n" + QUOTE,
        "Grazie.",
    ),
    (
        "portuguese",
        "Obrigado.\n\nEm seg., 1 de jan. de 2024 às 10:00, Sam Lee <sam@example.org> "
        "escreveu:\n\n" + QUOTE,
        "Obrigado.",
    ),
    (
        "swedish",
        "Tack.\n\nDen mån 1 jan. 2024 kl 10:00 skrev Sam Lee <sam@example.org>:\n\n" + QUOTE,
        "Tack.",
    ),
    (
        "polish",
        "Dzięki.\n\npon., 1 sty 2024 o 10:00 Sam Lee <sam@example.org> napisał(a):\n\n"
        + QUOTE,
        "Dzięki.",
    ),
    (
        "russian",
        "Спасибо.\n\nпн, 1 янв. 2024 г. в 10:00, Sam Lee <sam@example.org>:\n\n" + QUOTE,
        "Спасибо.",
    ),
    (
        "japanese",
        "ありがとう。\n\n2024年1月1日(月) 10:00 Sam Lee <sam@example.org>:\n\n" + QUOTE,
        "ありがとう。",
    ),
    (
        "chinese",
        "谢谢。\n\n在 2024年1月1日，上午10:00，Sam Lee <sam@example.org> 写道：\n\n" + QUOTE,
        "谢谢。",
    ),
    (
        "thunderbird",
        "Fine by me.\n\nOn 01/01/2024 10:00, Sam Lee wrote:\n" + QUOTE,
        "Fine by me.",
    ),
    (
        "thunderbird-bottom-post",
        "On 01/01/2024 10:00, Sam Lee wrote:\n> Hi\nHello",
        "Hello",
    ),
    (
        "apple-mail",
        "OK\n\n> On 1 Jan 2024, at 10:00, Sam Lee <sam@example.org> wrote:\n>\n> Hi\n",
        "OK",
    ),
    (
        "outlook-original-message",
        "See you then.\n\n-----Original Message-----\nFrom: Sam Lee\nSent: Monday\n\nHi\n",
        "See you then.",
    ),
    (
        "outlook-header-block",
        "See you then.\n\nFrom: Sam Lee <sam@example.org>\nSent: Monday, January 1, 2024 "
        "10:00 AM\nTo: Helpline <help@example.org>\nSubject: Re: my case\n\nHi\n",
        "See you then.",
    ),
    (
        "outlook-bold-header-block",
        "See you then.\n\n*From:* Sam Lee [mailto:sam@example.org]\n*Sent:* Monday, January 1,"
        " 2024 10:00 AM\n*To:* help@example.org\n*Subject:* Re: my case\n\nHi\n",
        "See you then.",
    ),
    (
        "outlook-german",
        "Bis dann.\n\nVon: Sam Lee <sam@example.org>\nGesendet: Montag, 1. Januar 2024 10:00\n"
        "An: help@example.org\nBetreff: AW: Fall\n\nHallo\n",
        "Bis dann.",
    ),
    (
        "outlook-french",
        "À bientôt.\n\nDe : Sam Lee <sam@example.org>\nEnvoyé : lundi 1 janvier 2024 10:00\n"
        "À : help@example.org\nObjet : RE: dossier\n\nBonjour\n",
        "À bientôt.",
    ),
    (
        "outlook-underscores",
        "Noted.\n________________________________\nFrom: Sam Lee <sam@example.org>\n"
        "Sent: Monday, January 1, 2024 10:00:00 AM\nTo: help@example.org\nSubject: case\n\nHi\n",
        "Noted.",
    ),
    (
        "signature-delimiter",
        "I'll look at it today.\n\n-- \nAlex Doe\nSchool safeguarding lead\n",
        "I'll look at it today.",
    ),
    (
        "mailing-list-footer",
        "Same here.\n\n_______________________________________________\nlist mailing list\n",
        "Same here.",
    ),
    (
        "inline-answers-keep-their-questions",
        "On 01/01/2024 10:00, Sam Lee wrote:\n> Which platform?\n\nTikTok.\n\n"
        "> When did it start?\n\nLast week.\n\n> Anything else?\n",
        "On 01/01/2024 10:00, Sam Lee wrote:\n> Which platform?\n\nTikTok.\n\n"
        "> When did it start?\n\nLast week.",
    ),
    (
        "sign-off-under-the-quote",
        "Test reply\n\nOn 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n> Test\n\nRegards, Roman",
        "Test reply\n\nRegards, Roman",
    ),
    (
        "android-framed-attribution",
        "Test reply\n\n---- John Smith wrote ----\n\n> quoted\n",
        "Test reply",
    ),
    (
        "crlf-line-endings",
        "Yes.\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, Sam <sam@example.org> wrote:\r\n> Hi\r\n",
        "Yes.",
    ),
    ("empty", "", ""),
    ("only-quote", "> Hello\n> there\n", ""),
]

MOBILE_SIGNATURES = [
    "Sent from my iPhone",
    "Sent from my iPad",
    "Sent from my Galaxy",
    "Sent from my Samsung Galaxy smartphone.",
    "Sent from my Verizon Wireless BlackBerry",
    "Sent from Yahoo Mail for Android",
    "Sent from Yahoo Mail on Android",
    "Sent from Mail for Windows 10",
    "Sent from Outlook",
    "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "Get Outlook for Android",
    "Sent with Proton Mail secure email.",
    "Sent from TypeApp<http://www.typeapp.com/r?b=2621>",
    "Von meinem iPhone gesendet",
    "Gesendet von Outlook für Android<https://aka.ms/ghei36>",
    "Envoyé de mon iPhone",
    "Envoyé à partir de Outlook pour iOS",
    "Enviado desde mi iPhone",
    "Enviado do meu iPhone",
    "Inviato da iPhone",
    "Verzonden vanaf mijn iPhone",
    "Skickat från min iPhone",
    "Sendt fra min iPhone",
    "Wysłane z mojego iPhone",
    "Отправлено с iPhone",
    "iPhoneから送信",
    "发自我的iPhone",
]

# Text a requester writes about what someone else wrote: never cut.
EVIDENCE = [
    (
        "he-wrote-with-time",
        "Yesterday at 5pm he wrote:\n\nI know where you live. Delete your account.",
    ),
    ("on-weekday-he-wrote", "On Monday at 10pm he wrote:\n\nyou're dead tomorrow"),
    ("on-weekday-time-he-wrote", "On Monday at 10:30 he wrote:\n\nyou're dead tomorrow"),
    ("on-date-time-she-wrote", "Hi\n\nOn 5 March 2024 at 10:30 she wrote:\n\nsend pics"),
    ("on-date-without-time", "On 5 March 2024 my son's ex wrote:\n\nsend more pics or else"),
    ("lone-from-line", "I got this:\n\nFrom: bully@example.com\n\nEveryone will see it."),
    ("from-in-a-sentence", "The messages come from: an account called @x_y_z\nand others."),
    ("sent-from-sentence", "It was sent from my school laptop, so I think they know."),
    ("dashes-as-formatting", "## Steps\n----\n\n1. Report\n2. Block\n\n====\n\nDone."),
    ("regards-in-sentence", "With regards to the video, it is still up.\nPlease help."),
    ("timestamps", "Times:\n2024-01-15 14:30:25\n15.01.2024 14:30\n\nThat is all."),
    ("on-the-other-hand", "On the one hand it is gone.\nOn the other hand, it may come back."),
    ("something-wrote-unquoted", "She wrote:\nI'll post it everywhere\n\nWhat do I do?"),
    ("sent-via-platform", "He sent pictures of my daughter.\nSent via Snapchat\n\nShe is 14."),
    ("sent-via-platform-at-end", "He sent pictures of my daughter.\nSent via Snapchat"),
    ("sent-from-my-then-content", "Sent from my son's account\n\nHe is being blackmailed."),
]

FORWARDS = [
    (
        "gmail-forward-empty-note",
        "\n\n---------- Forwarded message ---------\nFrom: Bully <b@example.com>\n"
        "Date: Mon, 1 Jan 2024 at 10:00\nSubject: you\nTo: Kid <k@example.org>\n\nthreat text\n",
        ("---------- Forwarded message ---------", "threat text"),
    ),
    (
        "gmail-forward-with-note",
        "Please see below, this was sent to a pupil.\n\n---------- Forwarded message "
        "---------\nFrom: Bully <b@example.com>\nDate: Mon, 1 Jan 2024 at 10:00\n\nthreat text\n",
        ("Please see below, this was sent to a pupil.", "threat text"),
    ),
    (
        "apple-forward-under-mobile-signature",
        "Sent from my iPhone\n\nBegin forwarded message:\n\nFrom: Bully <b@example.com>\n"
        "Date: 1 January 2024 at 10:00:00 GMT\nTo: Kid <k@example.org>\n\nthreat text\n",
        ("Begin forwarded message:", "threat text"),
    ),
    (
        "german-forward",
        "---------- Weitergeleitete Nachricht ---------\nVon: X <x@example.com>\n"
        "Date: Mo., 1. Jan. 2024 um 10:00 Uhr\n\nDrohung\n",
        ("Weitergeleitete Nachricht", "Drohung"),
    ),
    (
        "thunderbird-forward",
        "FYI\n\n-------- Forwarded Message --------\nSubject: \tpics\nDate: \tMon, 1 Jan 2024 "
        "10:00:00 +0000\nFrom: \tX <x@example.com>\n\nthe content\n",
        ("FYI", "the content"),
    ),
    (
        "outlook-forward-without-marker",
        "\n\n________________________________\nFrom: X <x@example.com>\nSent: Monday, January "
        "1, 2024 10:00 AM\nTo: Kid <k@example.org>\nSubject: pics\n\nthe content\n",
        ("From: X <x@example.com>", "the content"),
    ),
    (
        "outlook-ios-forward-under-its-signature",
        "Get Outlook for iOS<https://aka.ms/o0ukef>\n________________________________\n"
        "From: X <x@example.com>\nSent: Monday, January 1, 2024 10:00 AM\nTo: Kid\n"
        "Subject: pics\n\nthe content\n",
        ("From: X <x@example.com>", "the content"),
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [r[1:] for r in REPLIES], ids=[r[0] for r in REPLIES]
)
def test_new_text_is_kept_and_history_cut(text: str, expected: str) -> None:
    assert strip_quotes(text) == expected


@pytest.mark.parametrize("signature", MOBILE_SIGNATURES, ids=MOBILE_SIGNATURES)
def test_mobile_signatures_are_removed(signature: str) -> None:
    text = f"Please call me back.\n\n{signature}\n\nOn Mon, 1 Jan 2024 at 10:00, A <a@b.org> wrote:"
    assert strip_quotes(text) == "Please call me back."


@pytest.mark.parametrize("text", [e[1] for e in EVIDENCE], ids=[e[0] for e in EVIDENCE])
def test_what_an_abuser_wrote_is_never_cut(text: str) -> None:
    assert strip_quotes(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "kept"), [f[1:] for f in FORWARDS], ids=[f[0] for f in FORWARDS]
)
def test_forwarded_messages_are_kept(text: str, kept: tuple[str, ...]) -> None:
    parts = parse_reply(text)
    assert parts.forwarded
    for phrase in kept:
        assert phrase in parts.text


def test_a_vague_mobile_signature_counts_only_at_the_end() -> None:
    assert strip_quotes("Call me.\n\nSent from my pocket") == "Call me."
    assert strip_quotes("Call me.\n\nSent from my pocket\n\n> old") == "Call me."


def test_mobile_signature_above_a_forward_is_dropped() -> None:
    text = "Sent from my iPhone\n\nBegin forwarded message:\n\nFrom: A <a@b.org>\n\nbody"
    assert not strip_quotes(text).startswith("Sent from")


def test_a_forward_inside_the_quoted_history_is_not_kept() -> None:
    text = (
        "Thanks, we have it.\n\nOn Mon, 1 Jan 2024 at 10:00, Sam <sam@example.org> wrote:\n\n"
        "> ---------- Forwarded message ---------\n> From: X <x@example.com>\n>\n> threat\n"
    )
    parts = parse_reply(text)
    assert (parts.text, parts.forwarded) == ("Thanks, we have it.", False)
    assert "threat" in parts.history


def test_a_pasted_message_with_no_note_is_kept() -> None:
    text = "On Mon, 1 Jan 2024 at 10:00, Bully <b@example.com> wrote:\n\nI will find you"
    parts = parse_reply(text)
    assert (parts.text, parts.forwarded) == (text, True)


def test_an_empty_reply_with_a_quote_is_empty() -> None:
    assert strip_quotes("\n\nOn Mon, 1 Jan 2024 at 10:00, Sam <s@example.org> wrote:\n> hi") == ""


def test_html_rendered_quote_is_an_indented_block() -> None:
    text = "Hi. I am fine.\n\nThanks,\nAlex\n  Sasha wrote:\n      Hello! How are you?\n"
    assert strip_quotes(text, from_html=True) == "Hi. I am fine.\n\nThanks,\nAlex"
    assert "Hello!" in strip_quotes(text)  # plain text: "Sasha wrote:" alone proves nothing


def test_html_header_run_into_the_reply_is_split() -> None:
    text = "Hi\n  there\n  Bob From: bob@example.com\n  To: x@example.com\n  Sent: Friday, July"
    text += " 22, 2011 6:20:01 PM\n  Subject: Hello\n\n  Hello\n"
    assert strip_quotes(text, from_html=True) == "Hi\n  there\n  Bob"


def test_invisible_characters_and_no_break_spaces_do_not_hide_a_header() -> None:
    text = "Ok\n\nОт:\u00a0Sam\nОтправлено:\u200e 1\u200e января 2024 г. 10:00\nКому: Alex\n\nold"
    assert strip_quotes(text) == "Ok"


def test_history_holds_what_was_cut() -> None:
    parts = parse_reply("Yes.\n\nOn Mon, 1 Jan 2024 at 10:00, Sam <s@example.org> wrote:\n> Hi")
    assert parts.text == "Yes."
    assert parts.history.endswith("> Hi")


LINE_PIECES = st.sampled_from([
    "", "Hello", "> quoted", "-- ", "Sent from my iPhone", "Sent from my pocket",
    "On Mon, 1 Jan 2024 at 10:00, A <a@b.org> wrote:", "From: A <a@b.org>", "Sent: Monday 10:00",
    "To: B", "Subject: x", "________", "-----Original Message-----",
    "---------- Forwarded message ---------", "Regards, Sam", "wrote:", "#note", "\u200b",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINE_PIECES, st.text(max_size=40)), max_size=40))
def test_never_fails_and_only_removes_lines(pieces: list[str]) -> None:
    text = "\n".join(pieces)
    result = strip_quotes(text)
    source_lines = {_plain(line) for line in re.split(r"\r\n|\r|\n", text)}
    assert all(_plain(line) in source_lines for line in result.split("\n") if line.strip())


def _plain(line: str) -> str:
    return " ".join(re.sub("[\u200b-\u200f\u202a-\u202e\u2060\ufeff]", "", line).split())


def test_many_vague_signatures_in_a_row_do_not_recurse() -> None:
    assert strip_quotes("Hi\n" + "Sent from my pocket\n" * 5000).startswith("Hi")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello\n\n-- \nAlex\nPhone 123", "Hello"),
        ("Hello\n\nSent from my iPhone", "Hello"),
        ("Hello -- not a signature", "Hello -- not a signature"),
    ],
    ids=["delimiter", "mobile", "mid-line-dashes"],
)
def test_signature_goes_with_the_quotes(text: str, expected: str) -> None:
    assert strip_quotes(text) == expected
