"""BinHex 4.0 (``application/mac-binhex40``), decoded to the file it carries (pure).

Old Mac mailers send files as BinHex: a line ``(This file must be converted
with BinHex 4.0)``, then the data between two colons, six bits a character,
run-length encoded (``0x90``), holding a header (the file's name, its type and
creator, the lengths of its two forks) and the data fork, then the resource
fork, each with a CRC. The standard library's ``binhex`` module is gone since
Python 3.11, so this is the decoder, after the format's description
(RFC 1741). The file is the data fork, exactly its declared length: the header,
the resource fork and the CRCs are no part of it. ``None`` when the text is not
BinHex or its CRCs do not match, so that the caller keeps the part as it came.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

_ALPHABET = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
_VALUE = {ch: index for index, ch in enumerate(_ALPHABET)}
_BODY = re.compile(r"(?:^|[\r\n]):([^:]*):")  # Mac files break lines with CR alone
_RUN = 0x90


@dataclass(frozen=True)
class BinHexFile:
    name: str
    data: bytes


def decode_binhex(text: str) -> BinHexFile | None:
    """The file in a BinHex 4.0 text, or None."""
    match = _BODY.search(text)
    if match is None:
        return None
    chars = "".join(match.group(1).split())
    if not chars or any(ch not in _VALUE for ch in chars):
        return None
    return _read(_expand_runs(_six_bit(chars)))


def _six_bit(chars: str) -> bytes:
    bits, count, out = 0, 0, bytearray()
    for ch in chars:
        bits, count = (bits << 6) | _VALUE[ch], count + 6
        if count >= 8:
            count -= 8
            out.append((bits >> count) & 0xFF)
    return bytes(out)


def _expand_runs(data: bytes) -> bytes:
    """``0x90 n`` repeats the octet before it to ``n`` in all; ``0x90 0`` is 0x90."""
    out = bytearray()
    index = 0
    while index < len(data):
        octet = data[index]
        if octet == _RUN and index + 1 < len(data):
            count = data[index + 1]
            if count == 0:
                out.append(_RUN)
            elif out:
                out.extend(out[-1:] * (count - 1))
            index += 2
            continue
        out.append(octet)
        index += 1
    return bytes(out)


def _read(data: bytes) -> BinHexFile | None:
    if not data:
        return None
    length = data[0]
    header_end = 1 + length + 1 + 4 + 4 + 2 + 4 + 4  # name, version, type, creator, flags, forks
    if len(data) < header_end + 2:
        return None
    header = data[:header_end]
    if not _crc_matches(header, data[header_end : header_end + 2]):
        return None
    data_length = int.from_bytes(header[-8:-4], "big")
    start = header_end + 2
    fork = data[start : start + data_length]
    crc = data[start + data_length : start + data_length + 2]
    if len(fork) != data_length or not _crc_matches(fork, crc):
        return None
    return BinHexFile(name=header[1 : 1 + length].decode("mac_roman"), data=fork)


def _crc_matches(data: bytes, crc: bytes) -> bool:
    """BinHex's CRC (CCITT, as ``binascii.crc_hqx``), with or without the two zero
    octets that the format's description appends (encoders differ)."""
    if len(crc) != 2:
        return False
    found = int.from_bytes(crc, "big")
    return found in (binascii.crc_hqx(data, 0), binascii.crc_hqx(data + b"\0\0", 0))
