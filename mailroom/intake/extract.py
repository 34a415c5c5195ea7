"""Step 6: what a message says that is new, and the URLs it reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mailroom.intake.quotes import strip_quotes
from mailroom.intake.urls import find_urls, platform_for_url
from mailroom.mailtypes import ParsedMessage
from mailroom.platforms import Platform


@dataclass(frozen=True)
class Extracted:
    text: str  # the new text: quoted history and signature removed
    urls: tuple[str, ...]
    platforms: tuple[str, ...]  # platform keys, in order of first appearance


def extract(
    platforms: Mapping[str, Platform], parsed: ParsedMessage, *, new_ticket: bool
) -> Extracted:
    """New text and URLs, and the platforms of the directory they are on; a new case
    also reports URLs from what it quotes or forwards."""
    text = strip_quotes(parsed.text, from_html=parsed.text_from_html).strip()
    urls = find_urls(parsed.text if new_ticket else text)
    found = (platform_for_url(url, platforms) for url in urls)
    keys = tuple(dict.fromkeys(key for key in found if key))
    return Extracted(text=text, urls=tuple(urls), platforms=keys)
