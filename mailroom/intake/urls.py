"""Reported URLs and the platforms they belong to.

``find_urls`` finds ``http(s)://`` URLs, bare ``www.`` links and bare links on
a platform's domain that carry a path (``tiktok.com/@user``, ``youtu.be/abc``),
the way people type them into a mail. Bare links come back with ``https://`` in
front so that they can be opened; a bare domain without a path
("I reported it on tiktok.com") names a platform but is no URL to report.

``platform_for_url`` matches the URL's host against each platform's domains on
a dot boundary: ``facebook.com`` covers ``m.facebook.com`` and
``www.facebook.com`` but never ``notfacebook.com`` or ``facebook.com.evil.io``.
Country domains (``facebook.co.uk``) match only when the directory lists them:
guessing "same name, other suffix" would hand a look-alike site to the platform.
When two listed domains match (``live.com`` and ``onedrive.live.com``), the
longer one wins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from mailroom.platforms import Platform

__all__ = ["KNOWN_DOMAINS", "find_urls", "host_of", "platform_for_url"]

# Bare links on these domains are recognised even without a directory at hand
# (the shipped mailroom/data/platforms.toml lists the same ones).
KNOWN_DOMAINS = (
    "facebook.com", "fb.com", "fb.watch", "fb.me", "messenger.com", "m.me",
    "instagram.com", "instagr.am", "ig.me", "threads.net", "threads.com",
    "whatsapp.com", "wa.me", "snapchat.com", "tiktok.com", "x.com", "twitter.com",
    "t.co", "youtube.com", "youtu.be", "google.com", "goo.gl", "roblox.com",
    "linkedin.com", "lnkd.in", "xbox.com", "minecraft.net", "bing.com", "1drv.ms",
    "discord.com", "discord.gg", "discordapp.com", "twitch.tv", "reddit.com", "redd.it",
)

_SCHEMED = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_WWW = re.compile(r"(?<![\w@./:-])www\.[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:[/?#][^\s<>\"'`]*)?",
                  re.IGNORECASE)
_TRAILING = ".,;:!?'\"’”»*"  # not "_": user names end with it (bad_user_)
_BRACKETS = {")": "(", "]": "[", "}": "{", ">": "<"}


def find_urls(text: str, domains: Iterable[str] = KNOWN_DOMAINS) -> list[str]:
    """URLs in ``text`` in order of appearance, without duplicates.

    ``domains``: bare links (no scheme, no ``www.``) are recognised on these
    domains and their subdomains when a path follows.
    """
    found: list[tuple[int, str]] = []
    taken = bytearray(len(text))  # characters already inside a found URL
    bare = _bare_pattern(tuple(sorted({d.strip().lower() for d in domains if d.strip()})))
    for pattern in (_SCHEMED, _WWW, bare):
        for match in pattern.finditer(text):
            if taken[match.start()]:
                continue
            url = _trim(match.group(0))
            if url:
                taken[match.start() : match.start() + len(url)] = b"\x01" * len(url)
                found.append((match.start(), _with_scheme(url)))
    found.sort()
    return list(dict.fromkeys(url for _, url in found))


def host_of(url: str) -> str:
    """The lower-case host of ``url`` (scheme optional), without port or final dot."""
    if "://" not in url:
        url = "//" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


def platform_for_url(url: str, platforms: Mapping[str, Platform]) -> str | None:
    """The key of the platform whose domain the URL's host is on, or None."""
    host = host_of(url)
    if not host:
        return None
    best: tuple[int, str] | None = None
    for key, platform in platforms.items():
        for domain in platform.domains:
            if (host == domain or host.endswith("." + domain)) and (
                best is None or len(domain) > best[0]
            ):
                best = (len(domain), key)
    return best[1] if best else None


@functools.lru_cache(maxsize=16)
def _bare_pattern(domains: tuple[str, ...]) -> re.Pattern[str]:
    names = sorted(domains, key=len, reverse=True)
    if not names:
        return re.compile(r"(?!)")
    alternation = "|".join(re.escape(name) for name in names)
    return re.compile(
        r"(?<![\w@./:-])(?:[a-z0-9-]+\.)*(?:" + alternation + r")/[^\s<>\"'`]+",
        re.IGNORECASE,
    )


def _trim(url: str) -> str:
    """Drop trailing punctuation and closing brackets that the URL did not open."""
    while url:
        last = url[-1]
        unopened = last in _BRACKETS and url.count(last) > url.count(_BRACKETS[last])
        if last not in _TRAILING and not unopened:
            break
        url = url[:-1]
    return url if "." in url.split("//", 1)[-1] else ""


def _with_scheme(url: str) -> str:
    return url if re.match(r"https?://", url, re.IGNORECASE) else "https://" + url
