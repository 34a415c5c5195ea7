"""Build raw MIME by hand, the way real mailers write it (pure).

The generated mail must look like what clients really send: declared
charsets with their usual transfer encodings (quoted-printable Latin-1, raw
8-bit KOI8-R, 7-bit ISO-2022-JP, base64 GB2312), RFC 2047 headers, folded
base64 attachments. Parts are built with ``\\n`` line ends and turned into
CRLF (as on the wire) by :func:`to_wire` at the end.
"""

from __future__ import annotations

import base64
import quopri
from collections.abc import Sequence
from email.header import Header
from email.utils import formataddr

# The transfer encoding a typical mailer picks for each charset.
CHARSET_ENCODINGS = {
    "us-ascii": "7bit",
    "utf-8": "quoted-printable",
    "iso-8859-1": "quoted-printable",
    "iso-8859-2": "quoted-printable",
    "windows-1252": "quoted-printable",
    "koi8-r": "8bit",
    "iso-2022-jp": "7bit",
    "gb2312": "base64",
}


def encode_text(text: str, charset: str, encoding: str | None = None) -> tuple[bytes, str]:
    """``text`` in ``charset`` with a transfer encoding: (payload, encoding name)."""
    data = text.encode(charset, "replace")
    encoding = encoding or CHARSET_ENCODINGS.get(charset, "quoted-printable")
    if encoding == "quoted-printable":
        return quopri.encodestring(data), encoding
    if encoding == "base64":
        return base64.encodebytes(data), encoding
    return data, encoding


def text_part(text: str, subtype: str, charset: str, encoding: str | None = None) -> bytes:
    """A ``text/plain`` or ``text/html`` leaf."""
    payload, encoding = encode_text(text, charset, encoding)
    flowed = "; format=flowed" if subtype == "plain" and encoding == "8bit" else ""
    head = (f'Content-Type: text/{subtype}; charset="{charset}"{flowed}\n'
            f"Content-Transfer-Encoding: {encoding}\n\n")
    return head.encode("ascii") + payload


def binary_part(
    data: bytes, content_type: str, filename: str, *, content_id: str | None = None
) -> bytes:
    """A base64 attachment (``inline`` with a Content-ID when it has one)."""
    disposition = "inline" if content_id else "attachment"
    head = [f'Content-Type: {content_type}; name="{filename}"',
            f'Content-Disposition: {disposition}; filename="{filename}"',
            "Content-Transfer-Encoding: base64"]
    if content_id:
        head.append(f"Content-ID: <{content_id}>")
    return ("\n".join(head) + "\n\n").encode("ascii") + base64.encodebytes(data)


def message_part(inner: bytes, filename: str | None = None) -> bytes:
    """A forwarded message as a ``message/rfc822`` part."""
    head = "Content-Type: message/rfc822\n"
    if filename:
        head += f'Content-Disposition: attachment; filename="{filename}"\n'
    return head.encode("ascii") + b"\n" + inner


def multipart(subtype: str, parts: Sequence[bytes], boundary: str, **params: str) -> bytes:
    """A multipart body (with its Content-Type header) around ``parts``."""
    extra = "".join(f'; {key.replace("_", "-")}="{value}"' for key, value in params.items())
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra}\n\n'
    delimiter = f"--{boundary}\n".encode("ascii")
    body = b"".join(delimiter + part.rstrip(b"\n") + b"\n" for part in parts)
    return head.encode("ascii") + body + f"--{boundary}--\n".encode("ascii")


def header_text(value: str, charset: str) -> str:
    """A header value, RFC 2047-encoded in ``charset`` when it is not ASCII."""
    if value.isascii():
        return value
    if charset in _MANUAL_WORDS:  # the library mislabels these (e.g. "eucgb2312_cn")
        return _encoded_words(value, charset)
    return Header(value, charset).encode(maxlinelen=76)


_MANUAL_WORDS = frozenset({"gb2312"})


def _encoded_words(value: str, charset: str, chars_per_word: int = 12) -> str:
    """``=?charset?B?…?=`` words of a few characters each, folded."""
    chunks = [value[i : i + chars_per_word] for i in range(0, len(value), chars_per_word)]
    words = [
        f"=?{charset}?B?{base64.b64encode(c.encode(charset, 'replace')).decode()}?="
        for c in chunks
    ]
    return "\n ".join(words)


def address(name: str, addr: str, charset: str) -> str:
    """``"Name" <addr>`` with the name encoded when it is not ASCII."""
    if not name:
        return addr
    if name.isascii():
        return formataddr((name, addr))
    return f"{header_text(name, charset)} <{addr}>"


def headers(fields: Sequence[tuple[str, str]]) -> bytes:
    """The header block: one ``Name: value`` per field (values already folded)."""
    return "".join(f"{name}: {value}\n" for name, value in fields).encode("ascii")


def to_wire(message: bytes) -> bytes:
    """``\\n`` line ends to CRLF, as a message travels over SMTP."""
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def quote_lines(text: str, prefix: str = "> ") -> str:
    """The text quoted the way a mail client quotes a reply."""
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.splitlines())
