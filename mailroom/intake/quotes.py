"""The new text of a reply: quoted history, signatures and footers removed.

``strip_quotes`` is what step 6 of the pipeline calls for every message, from
requesters, practitioners and platforms alike. It works line by line on plain
text (HTML bodies are rendered to text before, see ``mailroom.intake.htmltext``):

1. The text is cut at the first *boundary* that starts the history:
   an attribution line ("On Mon, 1 Jan 2024 at 10:00, Name <a@b> wrote:" and its
   wrapped and localised forms, ``Am … schrieb …:``, ``Le … a écrit :``,
   ``2016/11/08 14:26、Name <a@b> のメッセージ:``…) followed by unquoted text;
   an Outlook header block (``From:/Sent:/To:/Subject:`` in about twenty
   languages, also bold ``*From:*``); an "Original Message" separator; an
   underscore line; the ``-- `` signature delimiter; a mobile signature
   ("Sent from my iPhone", "Get Outlook for iOS", "Von meinem iPhone gesendet"…).
   Attributions wrapped over two or three lines (an address broken after "<",
   "mailto:" on its own line, "> wrote:") are read whole. An attribution at the
   very top, above the answer and a ``>`` quote, is removed and the answer kept
   (with no quote under it, it is a pasted message, kept whole: see 3).
2. ``>``-quoted blocks (with their attribution line) are removed at the end of
   the new text, and at its start when exactly one stretch of new text follows
   (bottom posting). Quotes *between* new paragraphs stay: an inline answer
   without the question it answers is useless to whoever reads it. Weaker
   attributions count only above a quote: old Gmail's "2013/7/20 Name <a@b>"
   (whose quote may be ``| `` lines) and a date, a time and a name without
   "wrote" ("On 28/04/2017 11:53, Jo Bloggs").
3. **Forwards are content.** When the first boundary is a forward marker
   ("---------- Forwarded message ---------", "Begin forwarded message:" and
   their translations), the forwarded message is kept whole, whatever the note
   above it says: a professional forwarding harmful content to the helpline *is*
   the case. A message with no new text at all keeps what follows when that is
   a header block (an Outlook forward has no marker) or an attribution with
   unquoted text (a pasted message): ``ReplyParts.forwarded`` says so.
4. ``from_html``: the text was rendered from HTML, where a quote is an indented
   block instead of ``>`` lines and a ``<hr>`` runs "From:" into the line above.

Precision matters more than recall here: a requester quoting what an abuser
"wrote:" must keep that text, so an attribution line only ends the new text
when it looks like one a mail client writes (an address, or a full date with a
time and a name rather than "he"), and a looser "Name wrote:" only counts when a
``>`` quote follows it. Likewise "Sent via Snapchat" is no signature, and
"Sent from my <something>" naming no device ends the text only at its end. The
raw message is always stored, so a missed cut costs some noise, never evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = ["ReplyParts", "parse_reply", "strip_quotes"]


@dataclass(frozen=True)
class ReplyParts:
    """A reply split into what is new and what was cut off."""

    text: str  # the new text (with the forwarded message when ``forwarded``)
    history: str  # what was removed after the new text: quotes, signature, footer
    forwarded: bool  # the message forwards another one, which ``text`` keeps


class Kind(Enum):
    """Why the new text ends at a line."""

    ATTRIBUTION = "attribution"  # "On … wrote:" followed by unquoted history
    HEADER_BLOCK = "header-block"  # From:/Sent:/To:/Subject:
    ORIGINAL = "original-message"  # -----Original Message-----
    RULE = "rule"  # a line of underscores (Outlook separator, list footer)
    SIGNATURE = "signature"  # "-- " or a mobile signature line
    FORWARD = "forward"  # ---------- Forwarded message ---------


@dataclass(frozen=True)
class Boundary:
    kind: Kind
    index: int  # first line of the history


# --------------------------------------------------------------------------
# Vocabulary. Everything that goes into a pattern is re.escape'd.
# --------------------------------------------------------------------------

_WROTE = (
    "wrote", "writes", "has written", "a écrit", "écrit", "escribió", "escribio",
    "ha escrito", "ha escrit", "escreveu", "escrevera", "schrieb", "hat geschrieben",
    "geschrieben", "schreef", "heeft geschreven", "ha scritto", "scrisse", "skrev",
    "skriver", "kirjoitti", "napisał(a)", "napisał", "napisała", "napisal", "napsal",
    "napísal", "pisze", "написал(а)", "написал", "написала", "написав", "пишет",
    "írta", "yazdı", "a scris", "έγραψε", "כתב", "kirjutas", "rakstīja", "rašė",
    "je napisal", "je napisala", "写道", "寫道", "작성", "のメッセージ",
)
_LEAD_WORDS = (
    "On", "Le", "Am", "El", "Op", "Il", "In data", "Em", "No dia", "W dniu", "Dnia",
    "Den", "På", "Dne", "Dňa", "В", "Στις", "Pada", "Vào", "Na", "Dana", "U",
    "Il giorno", "Kl.", "在", "於",
)
_FROM_FIELDS = (
    "From", "De", "Von", "Van", "Da", "Od", "Fra", "Från", "От", "Від", "Kimden",
    "Lähettäjä", "Feladó", "Από", "发件人", "寄件者", "差出人", "보낸 사람", "Dari",
    "Từ", "Expéditeur", "Absender", "Remitente", "Mittente", "Afzender",
)
_DATE_FIELDS = (
    "Sent", "Date", "Gesendet", "Datum", "Envoyé", "Envoyé le", "Enviado",
    "Enviado el", "Fecha", "Inviato", "Data", "Verzonden", "Verstuurd", "Skickat",
    "Sendt", "Dato", "Wysłano", "Wysłane", "Отправлено", "Дата", "Odesláno",
    "Gönderildi", "Tarih", "Lähetetty", "Päivämäärä", "Elküldve", "Dátum",
    "发送时间", "日期", "送信日時", "날짜", "보낸 날짜", "Message du", "Tanggal", "Ngày",
)
_TO_FIELDS = (
    "To", "An", "À", "A", "Aan", "Para", "Per", "Do", "Til", "Till", "Кому", "Komu",
    "Kime", "Vastaanottaja", "Címzett", "收件人", "宛先", "받는 사람", "Kepada", "Đến",
    "Destinataire", "Cc", "Bcc", "Kopie", "Copie à", "Copia", "Kopia", "Копия",
)
_SUBJECT_FIELDS = (
    "Subject", "Betreff", "Objet", "Sujet", "Asunto", "Oggetto", "Onderwerp",
    "Assunto", "Ämne", "Emne", "Temat", "Тема", "Předmět", "Konu", "Aihe", "Tárgy",
    "主题", "主旨", "件名", "제목", "Perihal", "Chủ đề",
)
_ORIGINAL_MESSAGE = (
    "Original Message", "Original", "Ursprüngliche Nachricht", "Originalnachricht",
    "Message d'origine", "Message original", "Mensaje original", "Messaggio originale",
    "Oorspronkelijk bericht", "Origineel bericht", "Mensagem original",
    "Ursprungligt meddelande", "Originalmeddelande", "Oprindelig meddelelse",
    "Oprindelig besked", "Opprinnelig melding", "Alkuperäinen viesti",
    "Wiadomość oryginalna", "Oryginalna wiadomość", "Исходное сообщение",
    "Původní zpráva", "Pôvodná správa", "Eredeti üzenet", "Orijinal Mesaj",
    "Αρχικό μήνυμα", "原始邮件", "原始郵件", "元のメッセージ", "원본 메시지", "Pesan Asli",
    "Thư gốc", "Reply Message",
)
_FORWARD_MARKERS = (
    "Forwarded message", "Forwarded Message", "Begin forwarded message",
    "Weitergeleitete Nachricht", "Anfang der weitergeleiteten Nachricht",
    "Message transféré", "Début du message réexpédié", "Début du message transféré",
    "Mensaje reenviado", "Inicio del mensaje reenviado", "Messaggio inoltrato",
    "Inizio messaggio inoltrato", "Doorgestuurd bericht", "Begin doorgestuurd bericht",
    "Mensagem encaminhada", "Início da mensagem reencaminhada",
    "Mensagem reencaminhada", "Vidarebefordrat meddelande", "Vidarebefordrat brev",
    "Videresendt meddelelse", "Videresendt melding", "Przekazana wiadomość",
    "Wiadomość przekazana dalej", "Пересылаемое сообщение", "Пересланное сообщение",
    "Přeposlaná zpráva", "Továbbított üzenet", "İletilen ileti", "Välitetty viesti",
    "转发的邮件", "轉寄的郵件", "転送されたメッセージ", "전달된 메시지",
)
# Mobile and webmail signatures: whole lines, a few words, no sentence.
_MOBILE_SIGNATURES = (
    r"sent from my \w[\w'’®™\-]*(?: [\w'’®™\-]+){0,4}",
    r"sent from (?:yahoo mail|mail|outlook|aol|proton ?mail|samsung|typeapp|blue ?mail"
    r"|spark|gmail|mymail|edison|airmail|newton|polymail|superhuman|zoho mail|icloud"
    r"|windows mail|nine|aqua mail|k-9 mail|tuta(?:nota)?|fastmail|mobile|huawei"
    r"|xiaomi|the all new aol app)\b[\w'’®™\- ]{0,40}",
    r"sent (?:with|via|using) (?:my |the )?[\w'’®™\-]+(?: [\w'’®™\-]+){0,5}",
    r"get outlook for (?:ios|android)",
    r"envoyé (?:de|depuis|à partir de|avec) [\w'’\- ]{2,40}",
    r"obtenir outlook pour (?:ios|android)",
    r"von meinem [\w'’\- ]{2,30} gesendet",
    r"gesendet (?:von|mit|vom) [\w'’\- ]{2,40}",
    r"holen sie sich outlook für (?:ios|android)",
    r"enviado (?:desde|do|de|con|com) [\w'’\- ]{2,40}",
    r"obtener outlook para (?:ios|android)",
    r"inviato da [\w'’\- ]{2,40}",
    r"(?:verzonden|verstuurd) (?:vanaf|met|van) [\w'’\- ]{2,40}",
    r"skickat från [\w'’\- ]{2,40}",
    r"sendt fra [\w'’\- ]{2,40}",
    r"wysłane z [\w'’\- ]{2,40}",
    r"lähetetty [\w'’\- ]{2,30}(?:sta|stä|lla|llä)",
    r"отправлено (?:с|из) [\w'’\- ]{2,40}",
    r"odesláno z [\w'’\- ]{2,40}",
    r"\w+['’]?(?:umdan|imden|undan|ından) gönderildi",
    r"(?:iphone|ipad|android)から送信",
    r"发自我的\s?\w+",
    r"從我的\s?\w+\s?傳送",
    r"\w+에서 보냄",
)


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_TIME = re.compile(r"\d{1,2}[:.h]\d{2}")
_YEAR_OR_NUMERIC_DATE = re.compile(r"\b(?:19|20)\d{2}\b|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{4}年")
_DATE_START = re.compile(r"^\d{1,4}(?:[./\-年\s]|$)")
_WROTE_WORD = re.compile(r"(?<!\w)(?:" + _alternation(_WROTE) + r")(?!\w)", re.IGNORECASE)
_WROTE_CJK = re.compile(r"(?:写道|寫道|작성|のメッセージ)")
_ENDS_AS_ATTRIBUTION = re.compile(r"(?:[:：]|(?<!\w)wrote)$", re.IGNORECASE)
_LEAD = re.compile(r"^(?:" + _alternation(_LEAD_WORDS) + r")(?=[\s,])")
_FRAMED = re.compile(r"^\s*-{2,}\s.*\s-{2,}\s*$")  # "---- John Smith wrote ----" (Android)
_PRONOUN_WROTE = re.compile(
    r"(?<!\w)(?:he|she|they|someone|somebody|it|we|i|er|sie|il|elle|ils|él|ella|hij|zij)"
    r"\s+(?:" + _alternation(_WROTE) + r")",
    re.IGNORECASE,
)
_YOU_WROTE = re.compile(r"(?<!\w)you wrote[:：]?$", re.IGNORECASE)
_DECORATION = re.compile(r"^[\s>*\-–—]+|[\s*\-–—]+$")

_QUOTED = re.compile(r"^\s*>")
_LINK_ONLY = re.compile(r"^\s*[(<]?(?:https?://|mailto:)\S*[)>]?\s*>?\s*$")
_ADDRESS_CLOSE = re.compile(
    r"^\s*>\s*(?:(?:" + _alternation(_WROTE) + r")\s*)?[:：]\s*$", re.IGNORECASE)
# Old Gmail quoted with "| " under "2013/7/20 Name <a@b>": a quote only under such a line.
_PIPE_QUOTED = re.compile(r"^\s*\|(?:\s|$)")
_FIELD = re.compile(
    r"^\s*\*?\s*(?P<name>"
    + _alternation(_FROM_FIELDS + _DATE_FIELDS + _TO_FIELDS + _SUBJECT_FIELDS)
    + r")\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_RUN_IN_FROM = re.compile(
    r"(?<=\S)\s+(?=(?:" + _alternation(_FROM_FIELDS) + r")\s*[:：])", re.IGNORECASE
)
_FIELD_KIND = {
    **{name.casefold(): "to" for name in _TO_FIELDS},
    **{name.casefold(): "subject" for name in _SUBJECT_FIELDS},
    **{name.casefold(): "date" for name in _DATE_FIELDS},
    **{name.casefold(): "from" for name in _FROM_FIELDS},
}
_ORIGINAL = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:" + _alternation(_ORIGINAL_MESSAGE) + r")\s*[-_=*]{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"^[\s>*\-–—_=]*(?:" + _alternation(_FORWARD_MARKERS) + r")\s*(?:[:：]|[-–—_=*]*)\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^(?:(?:kind|best|warm|warmest|many)\s+)?(?:regards|thanks|thank you|thx|cheers|best"
    r"|best wishes|sincerely|yours(?: sincerely| truly)?|ciao|bye|take care|all the best"
    r"|mit freundlichen grüßen|viele grüße|liebe grüße|grüße|lg|cordialement|bien à vous"
    r"|saludos|un saludo|atentamente|cordiali saluti|saluti|met vriendelijke groet(?:en)?"
    r"|groeten|pozdrawiam|с уважением|hälsningar|mvh|med vänlig hälsning)\b",
    re.IGNORECASE,
)
_RULE = re.compile(r"^\s*_{2,}\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^--\s*$")
_MOBILE = re.compile(r"^(?:" + "|".join(_MOBILE_SIGNATURES) + r")\.?$", re.IGNORECASE)
_DEVICE = re.compile(
    r"(?<!\w)(?:iphone|ipad|ipod|android|blackberry|galaxy|samsung|huawei|xiaomi|pixel"
    r"|nokia|motorola|moto|sony|xperia|htc|oneplus|oppo|wiko|verizon|t-mobile|sprint|at&t"
    r"|vodafone|smartphone|mobile|tablet|kindle|windows|outlook|yahoo|aol|gmail|proton ?mail"
    r"|sparrow|typeapp|blue ?mail|spark|mymail|edison|airmail|newton|polymail|superhuman"
    r"|mailspring|zoho|icloud|aqua mail|k-9 mail|tuta(?:nota)?|fastmail|mail\.ru)(?!\w)"
    r"|iphone|ipad|android",  # CJK lines have no word boundary before the device
    re.IGNORECASE,
)
_POSSESSIVE = re.compile(
    r"(?<!\w)(?:my|mon|ma|mi|meu|minha|mio|mia|mijn|min|mitt|mojego|моего|mého|meinem)(?!\w)",
    re.IGNORECASE,
)
_LINK_TAIL = re.compile(r"\s*(?:<[^>]*>|\((?:https?://|www\.)[^)]*\)|\[[^\]]*\])\s*$")
_SEPARATOR = re.compile(r"^\s*[-_=*~—–]*\s*$")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060\ufeff]")
_SPACES = str.maketrans({"\xa0": " ", "\u202f": " ", "\u2007": " "})

_MAX_ATTRIBUTION_LINES = 3
_MAX_ATTRIBUTION_CHARS = 400
_HEADER_BLOCK_SPAN = 7
_WRAP_WIDTH = 60


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


def strip_quotes(text: str, *, from_html: bool = False) -> str:
    """The new text of a reply, without quoted history and signature.

    ``from_html`` says ``text`` was rendered from an HTML body: quotes there are
    indented blocks rather than ``>`` lines. A forwarded message is kept.
    """
    return parse_reply(text, from_html=from_html).text


def parse_reply(text: str, *, from_html: bool = False) -> ReplyParts:
    """Split a reply into its new text and the history cut off after it."""
    lines = _lines(text)
    if from_html:
        lines = _split_run_in_headers(lines)
    boundary = _find_boundary(lines, from_html=from_html)
    forward = _forward_start(lines, boundary, from_html=from_html)
    if forward is not None:
        return _forwarded(lines, boundary, forward)
    cut = boundary.index if boundary else len(lines)
    kept, end = _new_text(_trim_end(lines[:cut]), from_html=from_html)
    text = _join(kept)
    if not text and boundary and boundary.kind == Kind.ATTRIBUTION:
        answer = _answer_under_attribution(lines, boundary, from_html=from_html)
        if answer is not None:
            return answer
    if not text and boundary:
        start = _unmarked_forward_start(lines, boundary, from_html=from_html)
        if start is not None:
            return ReplyParts(text=_join(lines[start:]), history="", forwarded=True)
    return ReplyParts(text=text, history=_join(lines[end:]), forwarded=False)


def _answer_under_attribution(
    lines: Sequence[str], boundary: Boundary, *, from_html: bool
) -> ReplyParts | None:
    """An attribution misplaced at the very top, above the answer and the quote it
    belongs to ("On … wrote:", the answer, then ``>`` lines): the answer without the
    line. With no quote under the text it is a pasted message, which stays whole."""
    span = _match_attribution(lines, boundary.index)
    if span is None or not any(_is_quoted(line) for line in lines[span.end :]):
        return None
    rest = parse_reply("\n".join(lines[span.end :]), from_html=from_html)
    if not rest.text or rest.forwarded:
        return None
    return ReplyParts(text=rest.text, history=rest.history, forwarded=False)


def _find_boundary(lines: Sequence[str], *, from_html: bool = False) -> Boundary | None:
    """The first line where the history (or signature, or forward) starts."""
    for index, line in enumerate(lines):
        if not line.strip() or _is_quoted(line):
            continue
        kind = _boundary_kind(lines, index, from_html=from_html)
        if kind is not None:
            return Boundary(kind, index)
    return None


# --------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text).translate(_SPACES)
    return [line.rstrip() for line in text.split("\n")]


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines).strip("\n").rstrip()


def _split_run_in_headers(lines: list[str]) -> list[str]:
    """Put "From:" on its own line when HTML rendering ran it into the text above.

    A ``<hr>`` renders as nothing, so "Bob<hr><b>From:</b> a@b" becomes
    "Bob From: a@b"; it is split only when header fields follow on the next line.
    """
    result = []
    for index, line in enumerate(lines):
        match = _RUN_IN_FROM.search(line)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if match and _field_kind(following) and _field_kind(line[match.start() :]) == "from":
            result.extend([line[: match.start()].rstrip(), line[match.start() :].lstrip()])
        else:
            result.append(line)
    return result


def _is_quoted(line: str) -> bool:
    return bool(_QUOTED.match(line))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# --------------------------------------------------------------------------
# Boundaries
# --------------------------------------------------------------------------


def _boundary_kind(
    lines: Sequence[str], index: int, *, from_html: bool, vague: bool = True
) -> Kind | None:
    """What starts at ``lines[index]``; ``vague`` allows a vague mobile signature."""
    line = lines[index]
    if _FORWARD.match(line):
        return Kind.FORWARD
    if _ORIGINAL.match(line):
        return Kind.ORIGINAL
    if _RULE.match(line):
        return Kind.RULE
    if _is_signature(line):
        return Kind.SIGNATURE
    if vague and _mobile_signature(line) == "vague" and _ends_the_text(lines, index, from_html):
        return Kind.SIGNATURE
    if _is_header_block(lines, index):
        return Kind.HEADER_BLOCK
    span = _match_attribution(lines, index)
    if span and span.strong and not _quote_follows(lines, span.end, from_html=from_html):
        return Kind.ATTRIBUTION
    return None


def _is_signature(line: str) -> bool:
    """"-- ", or a mobile signature line that names a device or a mail app."""
    return bool(_SIGNATURE_DELIMITER.match(line)) or _mobile_signature(line) == "device"


def _mobile_signature(line: str) -> str | None:
    """"device" ("Sent from my iPhone"), "vague" ("Sent from my pocket"), or None.

    "Sent via Snapchat" says where the abuse happened: it is no signature.
    """
    probe = _LINK_TAIL.sub("", line.strip())
    if len(probe) > 70 or not _MOBILE.match(probe):
        return None
    if _DEVICE.search(probe):
        return "device"
    return "vague" if _POSSESSIVE.search(probe) else None


def _ends_the_text(lines: Sequence[str], index: int, from_html: bool) -> bool:
    """Nothing but history after this line: nothing, a quote, or another boundary."""
    following = _next_content(lines, index + 1)
    if following is None or _is_quoted(lines[following]):
        return True
    return _boundary_kind(lines, following, from_html=from_html, vague=False) is not None


def _field_kind(line: str) -> str | None:
    match = _FIELD.match(line)
    return _FIELD_KIND.get(match.group("name").casefold()) if match else None


def _is_header_block(lines: Sequence[str], index: int) -> bool:
    """From:/Sent:/To:/Subject: lines (any order, wrapped values allowed)."""
    if _field_kind(lines[index]) not in ("from", "date"):
        return False
    kinds = set()
    for line in lines[index : index + _HEADER_BLOCK_SPAN]:
        if not line.strip():
            break
        kind = _field_kind(line)
        if kind:
            kinds.add(kind)
    if len(kinds) < 2:
        return False
    return "from" in kinds or bool(_TIME.search(lines[index]))


def _unmarked_forward_start(
    lines: Sequence[str], boundary: Boundary, *, from_html: bool
) -> int | None:
    """Where the history starts when there is no new text but it is worth keeping.

    An empty note above a header block is an Outlook forward; above an
    attribution and unquoted text it is a pasted message (a reply always says
    something, and a client quotes with ">" when it says nothing).
    """
    if boundary.kind == Kind.SIGNATURE:  # "Get Outlook for iOS" above the forward
        after = _boundary_after_signature(lines, boundary.index, from_html=from_html)
        if after is None:
            return None
        boundary = after
    if boundary.kind in (Kind.ORIGINAL, Kind.ATTRIBUTION):
        return boundary.index
    start = boundary.index + (1 if boundary.kind == Kind.RULE else 0)
    following = _next_content(lines, start)
    if following is not None and following - start < 3 and _is_header_block(lines, following):
        return following
    return None


def _forward_start(
    lines: Sequence[str], boundary: Boundary | None, *, from_html: bool
) -> int | None:
    """Where the forwarded message starts, when the history is a forward."""
    if boundary is None:
        return None
    if boundary.kind == Kind.FORWARD:
        return boundary.index
    if boundary.kind != Kind.SIGNATURE:
        return None
    rest = _boundary_after_signature(lines, boundary.index, from_html=from_html)
    return rest.index if rest and rest.kind == Kind.FORWARD else None


def _boundary_after_signature(
    lines: Sequence[str], start: int, *, from_html: bool
) -> Boundary | None:
    """The first boundary after a signature that is not itself a signature line."""
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if not line.strip() or _is_quoted(line):
            continue
        kind = _boundary_kind(lines, index, from_html=from_html)
        if kind is not None and kind != Kind.SIGNATURE:
            return Boundary(kind, index)
    return None


def _forwarded(lines: Sequence[str], boundary: Boundary | None, start: int) -> ReplyParts:
    note_end = boundary.index if boundary else start
    note = _join(_trim_end(lines[:note_end]))
    forwarded = _join(lines[start:])
    text = f"{note}\n\n{forwarded}" if note else forwarded
    return ReplyParts(text=text, history=_join(lines[note_end:start]), forwarded=True)


def _trim_end(lines: Sequence[str]) -> list[str]:
    """Drop the blank and separator lines that led up to a boundary."""
    end = len(lines)
    while end and _SEPARATOR.match(lines[end - 1]):
        end -= 1
    return list(lines[:end])


# --------------------------------------------------------------------------
# Attribution lines ("On … wrote:")
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    start: int
    end: int  # index after the last line
    strong: bool  # an address or a date with a time: a mail client wrote it


def _match_attribution(lines: Sequence[str], index: int) -> Attribution | None:
    """The attribution line(s) starting at ``index``, longest wrap first."""
    for count in range(_MAX_ATTRIBUTION_LINES, 0, -1):
        chunk = lines[index : index + count]
        if len(chunk) < count or not all(_joinable(line) for line in chunk):
            continue
        if count > 1 and not _opens_attribution(chunk[0]):
            continue
        joined = " ".join(line.strip() for line in chunk)
        strength = _attribution_strength(joined)
        if strength is not None:
            return Attribution(index, index + count, strength)
    return None


def _joinable(line: str) -> bool:
    if _ADDRESS_CLOSE.match(line):  # "Name <a@b.org" wrapped before ">:"
        return True
    return bool(line.strip()) and not _is_quoted(line) and len(line) <= _MAX_ATTRIBUTION_CHARS


def _opens_attribution(line: str) -> bool:
    """Could a wrapped attribution start with this line?"""
    probe = _DECORATION.sub("", line)
    if not probe or probe[0] in "<(" or probe[-1] in ".!?" or _continues_address(probe):
        return False
    return bool(_LEAD.match(probe) or re.search(r"\d", probe[:16]))


def _continues_address(probe: str) -> bool:
    """'bob@x.org> wrote:' carries on an address opened on the line before."""
    for opening, closing in (("<", ">"), ("(", ")")):
        close = probe.find(closing)
        if close != -1 and opening not in probe[:close]:
            return True
    return False


def _attribution_strength(joined: str) -> bool | None:
    """True for a client-written attribution, False for "Name wrote:", else None."""
    probe = _DECORATION.sub("", joined)
    if len(probe) > _MAX_ATTRIBUTION_CHARS:
        return None
    has_verb = bool(_WROTE_WORD.search(probe) or _WROTE_CJK.search(probe))
    if not _ENDS_AS_ATTRIBUTION.search(probe):
        # Old Gmail wrote "2011/4/7 Name <a@b.org>" with no colon at all; others write a
        # date, a time and a name ("On 28/04/2017 11:53, Jo Bloggs"). Both are weak: they
        # count only when a quote follows.
        old_gmail = not has_verb and _DATE_START.match(probe) and _ends_with_email(probe)
        return False if old_gmail or _dated_name(probe, has_verb) else None
    if has_verb:
        return _is_client_attribution(probe, joined)
    if _EMAIL.search(probe) and _TIME.search(probe) and probe.endswith((":", "：")):
        return bool(re.search(r"\d", probe[:16]))
    return None


def _is_client_attribution(probe: str, joined: str) -> bool:
    """An address, a full date with a time, or dashes around it: a mail client wrote it.

    "On Monday at 10:30 he wrote:" is a person telling what happened: no year,
    and a pronoun for a name.
    """
    if _EMAIL.search(probe) or _FRAMED.match(joined):
        return True
    if _YOU_WROTE.search(probe):
        return bool(_YEAR_OR_NUMERIC_DATE.search(probe))
    if _PRONOUN_WROTE.search(probe):
        return False
    opens_like_a_date = bool(_LEAD.match(probe) or _DATE_START.match(probe))
    full_date = _YEAR_OR_NUMERIC_DATE.search(probe) and _TIME.search(probe)
    return bool(opens_like_a_date and full_date)


def _dated_name(probe: str, has_verb: bool) -> bool:
    """"On 28/04/2017 11:53, Jo Bloggs": opens like a date, has a full date with a time,
    ends in a name (no sentence punctuation), and is short."""
    if has_verb or not probe or len(probe) > 80 or probe[-1] in ".!?;,":
        return False
    opens_like_a_date = bool(_LEAD.match(probe) or _DATE_START.match(probe))
    full_date = _YEAR_OR_NUMERIC_DATE.search(probe) and _TIME.search(probe)
    name = re.search(r"[,，]\s*(?-i:[A-Z][\w.'’-]+)(?:\s+(?-i:[A-Z][\w.'’-]+)){0,3}$", probe)
    return bool(opens_like_a_date and full_date and name)


def _ends_with_email(probe: str) -> bool:
    return bool(re.search(r"<[^<>]*@[^<>]*>$", probe))


def _quote_follows(lines: Sequence[str], end: int, *, from_html: bool) -> bool:
    """Is the attribution ending before ``end`` followed by a quoted block?"""
    following = _next_content(lines, end)
    if following is None:
        return False
    if _is_quoted(lines[following]) or _PIPE_QUOTED.match(lines[following]):
        return True
    return from_html and _indent(lines[following]) >= _indent(lines[end - 1]) + 2


def _next_content(lines: Sequence[str], start: int) -> int | None:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return index
    return None


# --------------------------------------------------------------------------
# '>' quote runs inside the kept text
# --------------------------------------------------------------------------


def _line_roles(lines: Sequence[str], *, from_html: bool) -> list[str]:
    """'q' for a quote line or its attribution, 'b' blank, 't' new text."""
    roles = ["b" if not line.strip() else "q" if _is_quoted(line) else "t" for line in lines]
    _mark_wrapped_quotes(lines, roles)
    index = 0
    while index < len(lines):
        span = _match_attribution(lines, index) if roles[index] == "t" else None
        if span and _quote_follows(lines, span.end, from_html=from_html):
            roles[span.start : span.end] = ["q"] * (span.end - span.start)
            index = _mark_pipe_quoted(lines, roles, span.end)
            if from_html:
                index = _mark_indented(lines, roles, span)
        else:
            index += 1
    return roles


def _mark_pipe_quoted(lines: Sequence[str], roles: list[str], start: int) -> int:
    """The ``| `` lines (and blanks among them) under an attribution are its quote."""
    index = start
    while index < len(lines) and (not lines[index].strip() or _PIPE_QUOTED.match(lines[index])):
        if lines[index].strip():
            roles[index] = "q"
        index += 1
    return index if index > start else start


def _mark_wrapped_quotes(lines: Sequence[str], roles: list[str]) -> None:
    """A long quoted line re-wrapped by a client goes on unquoted, in lower case."""
    for index in range(1, len(lines)):
        if roles[index] != "t" or roles[index - 1] != "q":
            continue
        line = lines[index]
        rewrapped = len(lines[index - 1]) >= _WRAP_WIDTH and line.lstrip()[:1].islower()
        if rewrapped or _LINK_ONLY.match(line):
            roles[index] = "q"


def _mark_indented(lines: Sequence[str], roles: list[str], span: Attribution) -> int:
    """In HTML-rendered text, the block indented under an attribution is the quote."""
    base = _indent(lines[span.end - 1])
    index = span.end
    while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > base):
        if lines[index].strip():
            roles[index] = "q"
        index += 1
    return index


def _new_text(lines: Sequence[str], *, from_html: bool) -> tuple[list[str], int]:
    """The new lines, and where the trailing history starts.

    Trailing quotes go, and so does a leading quote above a single answer.
    """
    roles = _line_roles(lines, from_html=from_html)
    end = len(lines)
    while end and roles[end - 1] in "qb":
        end -= 1
    roles = roles[:end]
    start = roles.index("t") if "t" in roles else end
    if "q" in roles[:start] and "q" not in roles[start:]:
        return list(lines[start:end]), end
    _drop_quote_above_sign_off(lines, roles)
    return [line for line, role in zip(lines, roles, strict=False) if role != "x"], end


def _drop_quote_above_sign_off(lines: Sequence[str], roles: list[str]) -> None:
    """Some clients put the sign-off under the quote: the quote still goes.

    Quoted lines are marked ``"x"`` (removed) in ``roles`` and later skipped.
    """
    last_quote = max((i for i, role in enumerate(roles) if role == "q"), default=None)
    if last_quote is None or "t" not in roles[:last_quote]:
        return
    tail = [line for line in lines[last_quote + 1 : len(roles)] if line.strip()]
    if not tail or len(tail) > 3 or not _SIGN_OFF.match(tail[0].strip()):
        return
    if any(len(line) > _WRAP_WIDTH for line in tail):
        return
    first = last_quote
    while first > 0 and roles[first - 1] in "qb":
        first -= 1
    roles[first : last_quote + 1] = ["x"] * (last_quote + 1 - first)
