"""Generate realistic helpline mail, deterministically from a seed (pure).

A corpus is a list of raw messages (CRLF, as on the wire) in arrival order:

- conversations of one to six messages: a case report, then follow-ups and
  reply-alls with ``In-Reply-To``/``References`` chains and quoted history,
  interleaved with other conversations by date, a few arriving before the
  message they answer;
- HTML alternatives in the styles of Gmail, Outlook (with an inline logo in
  ``multipart/related`` and a ``Thread-Index``), Apple Mail and Thunderbird;
- screenshots attached as PNG/JPEG of phone-screenshot sizes (log-normal,
  median ~180 kB), now and then a PDF letter;
- forwarded messages, inline or as ``message/rfc822``;
- out-of-office auto-replies and delivery-status bounces;
- UTF-8, Windows-1252, Latin-1/2, KOI8-R, ISO-2022-JP and GB2312 bodies and
  RFC 2047 headers.

Attachment bytes are random (incompressible, like real images), so the
content-addressed store never de-duplicates them by accident.
"""

from __future__ import annotations

import html
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from bench import mime
from bench.texts import LANGUAGES, MAIL_DOMAINS, SCHOOLS, URLS, Language

HELPLINE = "helpline@helpline.example"
HELPLINE_NAME = "Test Helpline"
START = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
MAILERS = ("gmail", "outlook", "apple", "thunderbird")
AUTO_REPLY_SHARE = 0.04
BOUNCE_SHARE = 0.02
OUT_OF_ORDER_SHARE = 0.03
BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ORGANISATION_SUFFIXES = (".uk", ".gov.uk", ".sch.uk")
DISCLAIMER = (
    "\n--\nThis email and any files transmitted with it are confidential and intended solely\n"
    "for the use of the individual or entity to whom they are addressed. If you have\n"
    "received this email in error please notify the sender and delete it. Any views or\n"
    "opinions presented are solely those of the author and do not necessarily represent\n"
    "those of the school or the local authority. Pupil information must be handled in\n"
    "line with UK GDPR and the Data Protection Act 2018.\n"
)


@dataclass(frozen=True)
class Person:
    name: str
    addr: str
    language: Language
    charset: str
    mailer: str


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Mail:
    """One message before it is rendered to bytes."""

    sender: Person
    to: tuple[str, ...]
    subject: str
    date: datetime
    message_id: str
    text: str
    cc: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    quoted: tuple[str, str] | None = None  # (attribution line, quoted text)
    uploads: list[Upload] = field(default_factory=list)
    forwarded: bytes | None = None  # a message/rfc822 part
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


class Generator:
    """Draws people, texts and attachments from one seeded random stream."""

    def __init__(self, seed: int, tag: str) -> None:
        self.rng = random.Random(seed)
        self.tag = tag
        self.serial = 0
        self.languages = [lang for lang, _ in LANGUAGES]
        self.weights = [weight for _, weight in LANGUAGES]

    # --- people and ids ------------------------------------------------------------

    def person(self, language: Language | None = None) -> Person:
        rng = self.rng
        lang = language or rng.choices(self.languages, self.weights)[0]
        first, last = rng.choice(lang.first_names), rng.choice(lang.last_names)
        local = f"{_ascii(first)}.{_ascii(last)}{rng.randrange(1, 999)}".lower()
        return Person(name=f"{first} {last}", addr=f"{local}@{rng.choice(MAIL_DOMAINS)}",
                      language=lang, charset=rng.choice(lang.charsets),
                      mailer=rng.choice(MAILERS))

    def message_id(self, person: Person) -> str:
        self.serial += 1
        token = f"{self.tag}{self.serial:07d}{self.rng.getrandbits(64):016x}"
        if person.mailer == "gmail":
            return f"CA{token.upper()}@mail.gmail.com"
        if person.mailer == "outlook":
            return f"DB9PR{token.upper()}@DB9PR01MB6874.eurprd01.prod.outlook.com"
        return f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:]}@{person.addr.split('@')[1]}"

    def url(self) -> str:
        handle = "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789_", k=11))
        digits = "".join(self.rng.choices("0123456789", k=12))
        return self.rng.choice(URLS).format(handle=handle, digits=digits)

    # --- attachments ---------------------------------------------------------------

    def screenshot(self) -> Upload:
        """A phone screenshot: PNG or JPEG, log-normal size (median ~180 kB)."""
        size = int(min(max(math.exp(self.rng.gauss(math.log(180_000), 0.8)), 25_000), 2_500_000))
        stamp = f"{self.rng.randrange(20260101, 20260331)}-{self.rng.randrange(100000, 235959)}"
        if self.rng.random() < 0.6:
            name, ctype, magic = f"Screenshot_{stamp}.png", "image/png", b"\x89PNG\r\n\x1a\n"
        else:
            name, ctype, magic = f"IMG_{self.rng.randrange(1000, 9999)}.jpg", "image/jpeg", \
                b"\xff\xd8\xff\xe0"
        return Upload(name, ctype, magic + self.rng.randbytes(size - len(magic)))

    def letter(self) -> Upload:
        size = self.rng.randrange(60_000, 400_000)
        return Upload("Letter to parents.pdf", "application/pdf",
                      b"%PDF-1.7\n" + self.rng.randbytes(size))

    def logo(self) -> Upload:
        return Upload("image001.png", "image/png",
                      b"\x89PNG\r\n\x1a\n" + self.rng.randbytes(self.rng.randrange(4000, 14000)))


# --- conversations -------------------------------------------------------------------


def case_mail(gen: Generator, person: Person, date: datetime) -> Mail:
    """The first message of a case."""
    rng, lang = gen.rng, person.language
    subject, body = rng.choice(lang.cases)
    text = body.format(url=gen.url(), school=rng.choice(SCHOOLS), name=person.name)
    mail = Mail(sender=person, to=(HELPLINE,), subject=subject, date=date,
                message_id=gen.message_id(person), text=text)
    if rng.random() < 0.35:
        mail.uploads = [gen.screenshot() for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
    if rng.random() < 0.04:
        mail.uploads.append(gen.letter())
    if rng.random() < 0.08:
        forward(gen, mail)
    return mail


def forward(gen: Generator, mail: Mail) -> None:
    """Make ``mail`` forward a message someone received (inline or attached)."""
    stranger = gen.person(mail.sender.language)
    original = Mail(sender=stranger, to=(gen.person().addr,), subject="you will regret this",
                    date=mail.date - timedelta(days=1), message_id=gen.message_id(stranger),
                    text=f"Everyone at school knows what you did. Look: {gen.url()}\n")
    mail.subject = f"Fwd: {mail.subject}"
    if gen.rng.random() < 0.5:
        mail.forwarded = render(gen, original, wire=False)
        return
    mail.text += (f"\n---------- Forwarded message ---------\nFrom: {stranger.addr}\n"
                  f"Date: {format_datetime(original.date)}\nSubject: {original.subject}\n\n"
                  f"{original.text}")


def reply_mail(gen: Generator, thread: list[Mail], date: datetime) -> Mail:
    """A follow-up on the thread: the requester again, or a colleague they copied."""
    rng, parent = gen.rng, thread[-1]
    first = thread[0].sender
    colleague = rng.random() < 0.25
    sender = gen.person(first.language) if colleague else first
    lang = sender.language
    text = rng.choice(lang.replies).format(url=gen.url())
    attribution = lang.wrote.format(date=format_datetime(parent.date), name=parent.sender.name)
    refs = (*parent.references, parent.message_id)[-10:]
    mail = Mail(sender=sender, to=(HELPLINE,), subject=_reply_subject(parent.subject), date=date,
                message_id=gen.message_id(sender), text=text, in_reply_to=parent.message_id,
                references=refs, quoted=(attribution, parent.text),
                cc=(first.addr,) if colleague else ())
    if rng.random() < 0.12:
        mail.uploads = [gen.screenshot()]
    return mail


def conversation(gen: Generator, start: datetime) -> list[Mail]:
    """A case and its follow-ups, hours to days apart."""
    length = gen.rng.choices((1, 2, 3, 4, 5, 6), (45, 25, 15, 7, 5, 3))[0]
    thread = [case_mail(gen, gen.person(), start)]
    date = start
    for _ in range(length - 1):
        date += timedelta(hours=math.exp(gen.rng.gauss(math.log(6), 1.2)))
        thread.append(reply_mail(gen, thread, date))
    return thread


def auto_reply(gen: Generator, date: datetime) -> Mail:
    """An out-of-office answer to one of our acknowledgements."""
    person = gen.person()
    prefix, body = person.language.away
    ours = f"mailroom.{gen.rng.getrandbits(96):024x}@helpline.example"
    return Mail(sender=person, to=(HELPLINE,), date=date, message_id=gen.message_id(person),
                subject=f"{prefix}[Helpline #{gen.rng.randrange(1, 9000)}] Your message",
                text=body, in_reply_to=ours, references=(ours,),
                extra_headers=[("Auto-Submitted", "auto-replied"),
                               ("X-Auto-Response-Suppress", "All"),
                               ("Precedence", "auto_reply")])


# --- rendering -----------------------------------------------------------------------


def render(gen: Generator, mail: Mail, *, wire: bool = True) -> bytes:
    """The raw message: headers, then the MIME body the sender's mailer would build."""
    body = _body(gen, mail)
    raw = mime.headers(_header_fields(gen, mail)) + body
    return mime.to_wire(raw) if wire else raw


def _header_fields(gen: Generator, mail: Mail) -> list[tuple[str, str]]:
    person, charset = mail.sender, mail.sender.charset
    host = person.addr.split("@")[1]
    fields = [
        ("Return-Path", f"<{person.addr}>"),
        ("Received", f"from mx.{host} (mx.{host} [192.0.2.{gen.rng.randrange(1, 254)}])\n"
                     f"\tby mx.helpline.example (Postfix) with ESMTPS id "
                     f"{gen.rng.getrandbits(40):010X}\n\tfor <{HELPLINE}>; "
                     f"{format_datetime(mail.date)}"),
        ("Authentication-Results", f"mx.helpline.example; dkim=pass header.d={host};\n\t"
                                   f"spf=pass smtp.mailfrom={host}; dmarc=pass header.from={host}"),
        ("DKIM-Signature", _dkim(gen, host)),
        ("MIME-Version", "1.0"),
        ("Date", format_datetime(mail.date)),
        ("From", mime.address(person.name, person.addr, charset)),
        ("To", ", ".join(mail.to)),
    ]
    if mail.cc:
        fields.append(("Cc", ", ".join(mail.cc)))
    fields += [("Subject", mime.header_text(mail.subject, charset)),
               ("Message-ID", f"<{mail.message_id}>")]
    if mail.in_reply_to:
        fields.append(("In-Reply-To", f"<{mail.in_reply_to}>"))
    if mail.references:
        fields.append(("References", "\n ".join(f"<{ref}>" for ref in mail.references)))
    fields += _mailer_headers(gen, mail) + mail.extra_headers
    return fields


def _dkim(gen: Generator, host: str) -> str:
    signature = "".join(gen.rng.choices(BASE64_ALPHABET, k=344))
    folded = "\n\t ".join(signature[i : i + 70] for i in range(0, len(signature), 70))
    return (f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={host}; s=s2026;\n\t"
            f"h=from:to:subject:date:message-id; bh={signature[:43]}=;\n\tb={folded}")


def _mailer_headers(gen: Generator, mail: Mail) -> list[tuple[str, str]]:
    mailer = mail.sender.mailer
    if mailer == "outlook":
        index = "AQHc" + "".join(gen.rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", k=28))
        return [("Thread-Topic", mime.header_text(mail.subject, mail.sender.charset)),
                ("Thread-Index", index + "=="), ("X-MS-Has-Attach", "yes" if mail.uploads else ""),
                ("Content-Language", "en-GB")]
    if mailer == "apple":
        return [("X-Mailer", "iPhone Mail (22D82)")]
    if mailer == "thunderbird":
        return [("User-Agent", "Mozilla Thunderbird"), ("Content-Language", "en-GB")]
    return []


def _body(gen: Generator, mail: Mail) -> bytes:
    """Plain text, an HTML alternative most of the time, then the attachments."""
    person = mail.sender
    plain = _plain_text(mail)
    body = mime.text_part(plain, "plain", person.charset)
    if gen.rng.random() < 0.7:
        html_body = mime.text_part(_html_text(mail), "html", person.charset,
                                   "quoted-printable" if person.charset != "iso-2022-jp" else None)
        body = mime.multipart("alternative", [body, html_body], _boundary(gen))
        if person.mailer == "outlook":
            logo = gen.logo()
            part = mime.binary_part(logo.data, logo.content_type, logo.filename,
                                    content_id=f"image001.png@01DC{gen.rng.getrandbits(32):08X}")
            body = mime.multipart("related", [body, part], _boundary(gen),
                                  type="multipart/alternative")
    extras = [mime.binary_part(u.data, u.content_type, u.filename) for u in mail.uploads]
    if mail.forwarded is not None:
        extras.append(mime.message_part(mail.forwarded, "message.eml"))
    if extras:
        body = mime.multipart("mixed", [body, *extras], _boundary(gen))
    return b"\n" + body if not body.startswith(b"Content-Type") else body


def _plain_text(mail: Mail) -> str:
    person = mail.sender
    text = f"{mail.text}\n{person.language.regards}\n{person.name}\n"
    if person.addr.endswith(ORGANISATION_SUFFIXES):
        text += DISCLAIMER
    if mail.quoted:
        attribution, quoted = mail.quoted
        text += f"\n{attribution}\n{mime.quote_lines(quoted)}\n"
    return text


def _html_text(mail: Mail) -> str:
    """The HTML a mail client makes of the same text, in its own style."""
    person = mail.sender
    paragraphs = "".join(f"<div>{html.escape(line) or '<br>'}</div>\n"
                         for line in (mail.text + f"\n{person.language.regards}\n{person.name}")
                         .splitlines())
    quoted = ""
    if mail.quoted:
        attribution, text = mail.quoted
        inner = "<br>\n".join(html.escape(line) for line in text.splitlines())
        quoted = (f'<div class="gmail_quote"><div class="gmail_attr">{html.escape(attribution)}'
                  f'</div><blockquote class="gmail_quote" style="margin:0 0 0 .8ex;'
                  f'border-left:1px #ccc solid;padding-left:1ex">{inner}</blockquote></div>')
    if person.mailer == "outlook":
        return _OUTLOOK_HTML.format(body=paragraphs.replace("<div>", '<p class="MsoNormal">')
                                    .replace("</div>", "</p>"), quoted=quoted)
    return f'<div dir="ltr">{paragraphs}</div><br>{quoted}\n'


_OUTLOOK_HTML = """<html xmlns:v="urn:schemas-microsoft-com:vml"
 xmlns:o="urn:schemas-microsoft-com:office:office">
<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="Generator" content="Microsoft Word 15 (filtered medium)">
<style><!--
@font-face {{font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}}
@font-face {{font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}}
p.MsoNormal, li.MsoNormal, div.MsoNormal {{margin:0cm; font-size:11.0pt;
 font-family:"Calibri",sans-serif;}}
a:link, span.MsoHyperlink {{mso-style-priority:99; color:#0563C1; text-decoration:underline;}}
span.EmailStyle17 {{mso-style-type:personal-compose; font-family:"Calibri",sans-serif;
 color:windowtext;}}
.MsoChpDefault {{mso-style-type:export-only; font-family:"Calibri",sans-serif;}}
@page WordSection1 {{size:612.0pt 792.0pt; margin:72.0pt 72.0pt 72.0pt 72.0pt;}}
div.WordSection1 {{page:WordSection1;}}
--></style></head>
<body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
{body}<p class="MsoNormal"><img width="120" height="40" src="cid:image001.png"></p>
<div id="divRplyFwdMsg">{quoted}</div>
</div></body></html>
"""


def _boundary(gen: Generator) -> str:
    return f"----=_Part_{gen.rng.getrandbits(48):012x}"


def _reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _ascii(name: str) -> str:
    kept = "".join(ch for ch in name if ch.isascii() and ch.isalpha())
    return kept or "user"


# --- bounces ---------------------------------------------------------------------------


def bounce(gen: Generator, date: datetime) -> bytes:
    """A Postfix delivery-status notification for one of our acknowledgements."""
    person = gen.person()
    host = person.addr.split("@")[1]
    ours = f"mailroom.{gen.rng.getrandbits(96):024x}@helpline.example"
    boundary = _boundary(gen)
    notice = mime.text_part(
        "This is the mail system at host mx.helpline.example.\n\nI'm sorry to have to inform "
        "you that your message could not\nbe delivered to one or more recipients.\n\n"
        f"<{person.addr}>: host mx.{host} said: 550 5.1.1 User unknown\n", "plain", "us-ascii")
    status = (f"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.helpline.example\n"
              f"Arrival-Date: {format_datetime(date)}\n\nFinal-Recipient: rfc822; {person.addr}\n"
              "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n"
              ).encode("ascii")
    original = (f"Content-Type: text/rfc822-headers\n\nFrom: {HELPLINE_NAME} <{HELPLINE}>\n"
                f"To: {person.addr}\nSubject: Re: [Helpline #{gen.rng.randrange(1, 9000)}] Your "
                f"message\nMessage-ID: <{ours}>\nAuto-Submitted: auto-replied\n").encode("ascii")
    body = mime.multipart("report", [notice, status, original], boundary,
                          report_type="delivery-status")
    self_id = f"{gen.rng.getrandbits(40):010X}.{gen.serial}{gen.tag}@mx.helpline.example"
    gen.serial += 1
    head = mime.headers([
        ("Return-Path", "<>"), ("Date", format_datetime(date)),
        ("From", "MAILER-DAEMON@mx.helpline.example (Mail Delivery System)"),
        ("To", HELPLINE), ("Subject", "Undelivered Mail Returned to Sender"),
        ("Message-ID", f"<{self_id}>"), ("Auto-Submitted", "auto-replied"),
        ("MIME-Version", "1.0"),
    ])
    return mime.to_wire(head + body)


# --- whole corpora ---------------------------------------------------------------------


def generate_corpus(count: int, *, seed: int = 1, tag: str = "c") -> list[bytes]:
    """``count`` messages in arrival order (see the module docstring)."""
    gen = Generator(seed, tag)
    dated: list[tuple[datetime, int, bytes]] = []
    start = START
    while len(dated) < count:
        start += timedelta(minutes=gen.rng.expovariate(1 / 25))
        roll = gen.rng.random()
        if roll < BOUNCE_SHARE:
            dated.append((start, len(dated), bounce(gen, start)))
        elif roll < BOUNCE_SHARE + AUTO_REPLY_SHARE:
            dated.append((start, len(dated), render(gen, auto_reply(gen, start))))
        else:
            for mail in conversation(gen, start):
                dated.append((mail.date, len(dated), render(gen, mail)))
    dated.sort()
    return _shuffle_a_little(gen.rng, [raw for _, _, raw in dated[:count]])


def _shuffle_a_little(rng: random.Random, messages: list[bytes]) -> list[bytes]:
    """MTAs deliver out of order: swap a few neighbours."""
    for index in range(1, len(messages)):
        if rng.random() < OUT_OF_ORDER_SHARE:
            messages[index - 1], messages[index] = messages[index], messages[index - 1]
    return messages


@dataclass(frozen=True)
class ThreadTail:
    """What a reply to a stored case needs to know about it."""

    ticket_id: int
    requester: str
    requester_name: str
    subject: str
    last_inbound_id: str
    ack_id: str
    references: tuple[str, ...]


def generate_sample(
    count: int, threads: Sequence[ThreadTail], reply_address: dict[int, str], *,
    seed: int = 7, tag: str = "s", reply_share: float = 0.4,
) -> list[bytes]:
    """New cases mixed with replies to stored cases (``threads``), for the history test.

    Half the replies answer our acknowledgement (to its signed reply address,
    ``reply_address[ticket_id]``); the others follow up on the requester's own
    last message.
    """
    gen = Generator(seed, tag)
    out: list[bytes] = []
    date = START + timedelta(days=400)
    while len(out) < count:
        date += timedelta(minutes=7)
        if gen.rng.random() < reply_share:
            tail = gen.rng.choice(threads)
            out.append(render(gen, _reply_to_stored(gen, tail, reply_address, date)))
        else:
            out.append(render(gen, case_mail(gen, gen.person(), date)))
    return out


def _reply_to_stored(
    gen: Generator, tail: ThreadTail, reply_address: dict[int, str], date: datetime
) -> Mail:
    person = replace(gen.person(), name=tail.requester_name, addr=tail.requester)
    text = gen.rng.choice(person.language.replies).format(url=gen.url())
    to_ack = gen.rng.random() < 0.5
    parent = tail.ack_id if to_ack else tail.last_inbound_id
    subject = f"Re: [Helpline #{tail.ticket_id}] {tail.subject}" if to_ack else \
        f"Re: {tail.subject}"
    mail = Mail(sender=person, to=(reply_address[tail.ticket_id] if to_ack else HELPLINE,),
                subject=subject, date=date, message_id=gen.message_id(person), text=text,
                in_reply_to=parent, references=(*tail.references, parent)[-10:],
                quoted=("On Monday, the helpline wrote:", "Thank you for contacting us."))
    if gen.rng.random() < 0.12:
        mail.uploads = [gen.screenshot()]
    return mail
