"""Charsets: codecs for declared names, and raw 8-bit header text read by detection (pure).

Header fields must be ASCII (RFC 2047 encoded words for anything else), but
mailers still write raw 8-bit octets in the charset of their user: GBK, Shift_JIS,
Windows-1251, Latin-1 …, without saying which. :func:`legacy_charset` reads them:

1. what is valid UTF-8 is UTF-8 (legacy text almost never is);
2. otherwise every raw value of a message is pooled (more text, a better
   guess), and the candidates are the charset the body declares (the hint:
   a mailer writes its headers in its body's charset), Windows-1252, and what
   charset-normalizer finds among the charsets mail is written in;
3. each candidate's reading is scored by what a wrong reading shows: control,
   private-use or unassigned characters, half-width katakana, Hangul or Han
   characters outside the common sets (KS X 1001, the first levels of GB 2312,
   Big5 and JIS X 0208), combining marks, words that mix scripts or cases,
   accented letters of two scripts,
   symbols inside words, Latin words of four letters or more, all accented, Han in a
   Korean reading; the fewest wins, then the hint, then Windows-1252, then the
   detector's order.

ISO-2022-JP is 7-bit (escape sequences): a header value holding its escapes
is decoded as ISO-2022-JP (:func:`decode_escaped`).
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from charset_normalizer import from_bytes

# Declared names that are wrong in practice, and supersets that decode more.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "big5": "cp950",
    "iso-8859-8-i": "iso8859_8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
}
_UNSAFE_CODECS = frozenset(
    ["unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "mbcs", "oem"]
)
_ESCAPED_HIGH_BYTES = {0xDC00 + byte: byte for byte in range(0x80, 0x100)}

# The charsets raw 8-bit headers are written in, for the detector to choose among.
DETECTED = ("gb18030", "cp932", "cp950", "cp949", "cp1250", "cp1251", "cp1252", "cp1253",
            "cp1254", "cp1255", "cp1256", "cp1257", "koi8_r", "cp874")
# Every candidate, the detector's first: EUC-JP reads Chinese as plausible Japanese, so
# it comes last (Japanese mailers write raw Shift_JIS; EUC-JP comes with its hint).
MAIL_CHARSETS = (*DETECTED, "euc_jp")
WINDOWS_1252 = "cp1252"
MAX_SAMPLE = 4096  # octets of pooled header text given to the detector


def codec_for(name: str) -> str | None:
    """The Python codec for a declared charset, or None if unknown/unsafe."""
    name = CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    codec = info.name.replace("-", "_")
    return None if codec in _UNSAFE_CODECS else ("utf-8" if codec == "utf_8" else info.name)


def decode_windows_1252(data: bytes) -> str:
    """Windows-1252, with its five undefined octets read as Latin-1."""
    text = data.decode("cp1252", "surrogateescape")
    return text.translate(_ESCAPED_HIGH_BYTES) if max(text, default="") >= "\udc80" else text


def decode_with(data: bytes, codec: str) -> str | None:
    """``data`` in ``codec``, strictly (Windows-1252 never fails); None if it cannot."""
    if codec == WINDOWS_1252:
        return decode_windows_1252(data)
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def legacy_charset(samples: list[bytes], hint: str | None) -> str:
    """The codec that reads these raw 8-bit values best (see the module's text)."""
    pooled = b"\n".join(samples)[:MAX_SAMPLE]
    order = [hint, WINDOWS_1252, *_detected(pooled), *MAIL_CHARSETS]
    best, fewest = WINDOWS_1252, len(pooled) + 1
    for codec in dict.fromkeys(c for c in order if c):
        text = decode_with(pooled, codec)
        odd = fewest if text is None else oddness(text) + _unlikely_for(codec, text)
        if odd < fewest:
            best, fewest = codec, odd
    return best


def _detected(data: bytes) -> list[str]:
    try:
        return [match.encoding for match in from_bytes(data, cp_isolation=list(DETECTED))]
    except Exception:  # the detector is a guess; a failure leaves the other candidates
        return []


def _unlikely_for(codec: str, text: str) -> int:
    """Korean is written in Hangul: Han characters in a Korean reading are a wrong one."""
    return sum("\u4e00" <= ch <= "\u9fff" for ch in text) if codec == "cp949" else 0


_ESCAPES = re.compile(r"\x1b[$(][@BJDI]|\x1b\$\([DOPQ]")


def decode_escaped(value: str) -> str:
    """A value holding ISO-2022-JP escape sequences, decoded (else as it was)."""
    if "\x1b" not in value or not _ESCAPES.search(value):
        return value
    try:
        return value.encode("ascii", "surrogateescape").decode("iso2022_jp_ext")
    except (UnicodeError, ValueError):
        return value


# ---------------------------------------------------------------- scoring a reading

_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
_SAME_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "FULLWIDTH": "CJK", "IDEOGRAPHIC": "CJK"}
# Symbols that stand next to letters only in a wrong reading ("Â°", "Ã¼", "ÕÅÎ°", "“c’†").
_ODD_SYMBOLS = frozenset(["So", "Sm", "Sk", "Sc", "No"])
_ODD_PUNCTUATION = frozenset("†‡•‰¦¨¯´¸")


def oddness(text: str) -> int:
    """How many signs of a wrong reading ``text`` shows (0 for a plausible one)."""
    odd = sum(_odd_character(ch) for ch in text if ord(ch) > 0x7F or ch < " " and ch not in "\t\n")
    odd += len({_script(ch) for ch in text if ord(ch) > 0x7F and ch.isalpha()}) > 1
    for token in text.split():
        if not token.isascii() and any(ch.isalpha() for ch in token):
            odd += any(_is_odd_symbol(ch) for ch in token if ord(ch) > 0x7F)
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        letters = [ch for ch in word if ch.isalpha()]
        odd += len({_script(ch) for ch in letters}) > 1
        odd += any(a.islower() and b.isupper() for a, b in zip(letters, letters[1:], strict=False))
        if len(letters) >= 4 and all(_script(ch) == "LATIN" for ch in letters):
            odd += not any(ch.isascii() for ch in letters)
    return odd


def _is_odd_symbol(ch: str) -> bool:
    return ch in _ODD_PUNCTUATION or unicodedata.category(ch) in _ODD_SYMBOLS


def _odd_character(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category in ("Cc", "Co", "Cn", "Cs") or ch == "\ufffd":
        return True
    if "\uff61" <= ch <= "\uff9f":  # half-width katakana: Shift_JIS read wrongly
        return True
    if category == "Mn":  # combining marks: Hebrew points, Thai vowels read from Cyrillic
        return True
    if "\uac00" <= ch <= "\ud7a3":  # Hangul outside the 2,350 of KS X 1001
        return len(_encoded(ch, "euc_kr")) != 2
    if "\u4e00" <= ch <= "\u9fff":  # Han outside the first level of GB 2312, Big5, JIS X 0208
        return not any(_COMMON_HAN[codec](_encoded(ch, codec)) for codec in _COMMON_HAN)
    return False


# The first (most frequent) level of each national set, by its first octet.
_COMMON_HAN = {
    "gb2312": lambda b: len(b) == 2 and 0xB0 <= b[0] <= 0xD7,
    "big5": lambda b: len(b) == 2 and 0xA4 <= b[0] <= 0xC6,
    "shift_jis": lambda b: len(b) == 2 and 0x88 <= b[0] <= 0x98,
}


def _encoded(ch: str, codec: str) -> bytes:
    try:
        return ch.encode(codec)
    except UnicodeEncodeError:
        return b""


def _script(ch: str) -> str:
    word = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
    return _SAME_SCRIPT.get(word, word)
