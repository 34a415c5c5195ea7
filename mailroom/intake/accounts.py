"""What a reported URL points at: the platform account, and the post, video or group.

Professionals paste the same fake account in many forms: ``tiktok.com/@fake``,
``https://www.tiktok.com/@Fake?lang=en``, ``m.tiktok.com/@fake/video/7301``. A
platform's trust-and-safety team needs to know that these are one account, and
that several professionals reported it. ``targets_of`` reads a URL into the
targets it names, each with a canonical key that is the same for every form:

- the **account** (a profile, a channel, a page), when the URL names one:
  ``tiktok:account:fake`` for all of the forms above;
- the **item** it shows, when it names one (a video, a post, a reel, a status,
  a group, an invite): ``tiktok:video:7301``.

Rules are by platform (host names on a dot boundary, as in
:mod:`mailroom.intake.urls`), for the common URL forms of the platforms in the
shipped directory. User names are compared without case (the platforms treat
them so); ids of posts and videos keep their case (YouTube's and Instagram's
are case-sensitive). Paths that are pages of the platform itself
(``instagram.com/explore``, ``tiktok.com/foryou``) name no account. A short
link (``vm.tiktok.com/ZMabc``, ``youtu.be/…`` is not one: it names the video)
is kept as its own item, since resolving it would mean fetching it. A URL of
no known platform names no target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Target", "targets_in", "targets_of"]


@dataclass(frozen=True)
class Target:
    """An account or item on a platform, in canonical form."""

    platform: str  # the family, e.g. "tiktok" (the shipped directory's keys)
    kind: str  # "account", or what the item is: "video", "post", "group", ...
    ident: str  # the canonical id: a lower-case user name, or an id as written
    url: str  # a canonical URL that opens it

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.kind}:{self.ident}"

    @property
    def is_account(self) -> bool:
        return self.kind == ACCOUNT


ACCOUNT = "account"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_DIGITS = re.compile(r"^\d{1,30}$")


def targets_in(urls: Iterable[str]) -> list[Target]:
    """The targets of all ``urls``, without duplicates, in order."""
    found: dict[str, Target] = {}
    for url in urls:
        for target in targets_of(url):
            found.setdefault(target.key, target)
    return list(found.values())


def targets_of(url: str) -> list[Target]:
    """The account and the item ``url`` names (either may be absent)."""
    try:
        parts = urlsplit(url if "://" in url else "https://" + url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return []
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)
    for domain, reader in _READERS:
        if host == domain or host.endswith("." + domain):
            return [t for t in reader(host, segments, query) if t is not None]
    return []


Query = dict[str, list[str]]
Reader = Callable[[str, list[str], Query], list["Target | None"]]


def _account(platform: str, name: str, url: str) -> Target | None:
    name = name.strip().lstrip("@")
    if not _NAME.fullmatch(name):
        return None
    return Target(platform, ACCOUNT, name.lower(), url.format(name=name.lower()))


def _item(platform: str, kind: str, ident: str, url: str) -> Target | None:
    if not _ID.fullmatch(ident):
        return None
    return Target(platform, kind, ident, url.format(id=ident))


def _at(segments: list[str], index: int) -> str:
    return segments[index] if len(segments) > index else ""


# --- TikTok ---------------------------------------------------------------------

def _tiktok(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first = _at(segments, 0)
    if host.split(".")[0] in {"vm", "vt"} and first:
        return [_item("tiktok", "short", first, "https://vm.tiktok.com/{id}")]
    if first == "t" and _at(segments, 1):
        return [_item("tiktok", "short", _at(segments, 1), "https://www.tiktok.com/t/{id}")]
    found: list[Target | None] = []
    if first.startswith("@"):
        found.append(_account("tiktok", first, "https://www.tiktok.com/@{name}"))
        if _at(segments, 1) in {"video", "photo"} and _DIGITS.match(_at(segments, 2)):
            found.append(_item("tiktok", "video", _at(segments, 2),
                               "https://www.tiktok.com/video/{id}"))
    elif first == "v" and _at(segments, 1):
        video = _at(segments, 1).removesuffix(".html")
        found.append(_item("tiktok", "video", video, "https://www.tiktok.com/video/{id}"))
    elif first == "video" and _DIGITS.match(_at(segments, 1)):
        found.append(_item("tiktok", "video", _at(segments, 1),
                           "https://www.tiktok.com/video/{id}"))
    return found


# --- Instagram and Threads --------------------------------------------------------

_INSTAGRAM_PAGES = {"explore", "accounts", "direct", "about", "legal", "developer", "web",
                    "challenge", "emails", "session", "privacy", "reels", "stories", "p",
                    "reel", "tv", "s", "ar", "topics", "directory"}


def _instagram(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if first in {"p", "reel", "reels", "tv"} and second:
        kind = "post" if first == "p" else "reel"
        return [_item("instagram", kind, second, "https://www.instagram.com/p/{id}/")]
    if first == "stories" and second and second not in {"highlights"}:
        found = [_account("instagram", second, "https://www.instagram.com/{name}/")]
        if _DIGITS.match(_at(segments, 2)):
            found.append(_item("instagram", "story", _at(segments, 2),
                               "https://www.instagram.com/stories/" + second.lower() + "/{id}/"))
        return found
    if first and first.lower() not in _INSTAGRAM_PAGES:
        found = [_account("instagram", first, "https://www.instagram.com/{name}/")]
        if second in {"p", "reel"} and _at(segments, 2):
            found.append(_item("instagram", "post" if second == "p" else "reel",
                               _at(segments, 2), "https://www.instagram.com/p/{id}/"))
        return found
    return []


def _threads(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first = _at(segments, 0)
    if not first.startswith("@"):
        return []
    found = [_account("threads", first, "https://www.threads.net/@{name}")]
    if _at(segments, 1) == "post" and _at(segments, 2):
        found.append(_item("threads", "post", _at(segments, 2),
                           "https://www.threads.net/t/{id}"))
    return found


# --- Facebook ---------------------------------------------------------------------

_FACEBOOK_PAGES = {"watch", "marketplace", "gaming", "help", "login", "login.php", "home.php",
                   "settings", "policies", "privacy", "legal", "business", "ads", "pages",
                   "events", "hashtag", "search", "stories", "reel", "share", "sharer",
                   "sharer.php", "photo.php", "photo", "video.php", "story.php",
                   "permalink.php", "profile.php", "groups", "messages", "notifications",
                   "friends", "bookmarks", "l.php", "dialog", "plugins", "people"}


def _facebook(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    profile = "https://www.facebook.com/profile.php?id={id}"
    if first in {"profile.php", "permalink.php", "story.php"}:
        ids = query.get("id", [])
        found: list[Target | None] = [_item("facebook", "profile", ids[0], profile)] \
            if ids and _DIGITS.match(ids[0]) else []
        story = query.get("story_fbid", [])
        if story:
            found.append(_item("facebook", "post", story[0],
                               "https://www.facebook.com/permalink.php?story_fbid={id}"))
        return [_as_account(t) for t in found]
    if first == "groups" and second:
        return [_item("facebook", "group", second.lower(), "https://www.facebook.com/groups/{id}/")]
    if first in {"watch", "reel"}:
        video = query.get("v", [])[:1] or ([second] if first == "reel" and second else [])
        return [_item("facebook", "video", video[0], "https://www.facebook.com/watch/?v={id}")
                ] if video else []
    if first == "people" and _DIGITS.match(_at(segments, 2)):
        return [_as_account(_item("facebook", "profile", _at(segments, 2), profile))]
    if first and first.lower() not in _FACEBOOK_PAGES and host not in {"fb.watch", "fb.me"}:
        found = [_account("facebook", first, "https://www.facebook.com/{name}")]
        if second in {"posts", "videos"} and _at(segments, 2):
            kind = "post" if second == "posts" else "video"
            found.append(_item("facebook", kind, _at(segments, 2),
                               "https://www.facebook.com/" + first.lower() + "/posts/{id}"))
        return found
    if host in {"fb.watch", "fb.me"} and first:
        return [_item("facebook", "short", first, "https://" + host + "/{id}")]
    return []


def _as_account(target: Target | None) -> Target | None:
    """A numeric profile id is the account itself."""
    if target is None or target.kind != "profile":
        return target
    return Target(target.platform, ACCOUNT, "id" + target.ident, target.url)


# --- X (Twitter) ------------------------------------------------------------------

_X_PAGES = {"home", "explore", "search", "i", "intent", "share", "settings", "messages",
            "notifications", "login", "signup", "tos", "privacy", "hashtag", "compose"}


def _x(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if host == "t.co" or not first or first.lower() in _X_PAGES:
        if first == "i" and second == "web" and _at(segments, 2) == "status":
            return [_item("x", "post", _at(segments, 3), "https://x.com/i/status/{id}")]
        return []
    found = [_account("x", first, "https://x.com/{name}")]
    if second in {"status", "statuses"} and _DIGITS.match(_at(segments, 2)):
        found.append(_item("x", "post", _at(segments, 2), "https://x.com/i/status/{id}"))
    return found


# --- YouTube ----------------------------------------------------------------------

def _youtube(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    watch = "https://www.youtube.com/watch?v={id}"
    if host == "youtu.be":
        return [_item("youtube", "video", first, watch)] if first else []
    if first == "watch":
        return [_item("youtube", "video", v, watch) for v in query.get("v", [])[:1]]
    if first in {"shorts", "live", "embed", "v"} and second:
        return [_item("youtube", "video", second, watch)]
    if first.startswith("@"):
        return [_account("youtube", first, "https://www.youtube.com/@{name}")]
    if first == "channel" and second:
        return [Target("youtube", ACCOUNT, "channel/" + second,
                       "https://www.youtube.com/channel/" + second)] if _ID.fullmatch(second) \
            else []
    if first in {"c", "user"} and second:
        return [_account("youtube", second, "https://www.youtube.com/c/{name}")]
    return []


# --- Snapchat, Twitch, Reddit, Roblox, LinkedIn, Discord, WhatsApp ----------------------

def _snapchat(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if first in {"add", "u"} and second:
        return [_account("snapchat", second, "https://www.snapchat.com/add/{name}")]
    if host.startswith("story.") and first == "s" and second:
        return [_account("snapchat", second, "https://www.snapchat.com/add/{name}")]
    if first in {"t", "spotlight"} and second:
        return [_item("snapchat", "short" if first == "t" else "spotlight", second,
                      "https://www.snapchat.com/" + first + "/{id}")]
    return []


_TWITCH_PAGES = {"directory", "videos", "settings", "downloads", "jobs", "p", "search",
                 "subscriptions", "inventory", "wallet", "drops", "turbo"}


def _twitch(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if first == "videos" and _DIGITS.match(second):
        return [_item("twitch", "video", second, "https://www.twitch.tv/videos/{id}")]
    if first and first.lower() not in _TWITCH_PAGES:
        return [_account("twitch", first, "https://www.twitch.tv/{name}")]
    return []


def _reddit(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if host == "redd.it" and first:
        return [_item("reddit", "post", first.lower(), "https://redd.it/{id}")]
    if first in {"user", "u"} and second:
        return [_account("reddit", second, "https://www.reddit.com/user/{name}")]
    if first == "r" and second:
        found = [_item("reddit", "community", second.lower(), "https://www.reddit.com/r/{id}")]
        if _at(segments, 2) == "comments" and _at(segments, 3):
            found.append(_item("reddit", "post", _at(segments, 3).lower(),
                               "https://redd.it/{id}"))
        return found
    return []


def _roblox(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if first == "users" and _DIGITS.match(second):
        return [Target("roblox", ACCOUNT, second,
                       f"https://www.roblox.com/users/{second}/profile")]
    if first in {"games", "groups"} and _DIGITS.match(second):
        kind = "game" if first == "games" else "group"
        return [_item("roblox", kind, second, "https://www.roblox.com/" + first + "/{id}")]
    return []


def _linkedin(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    if first == "in" and second:
        return [_account("linkedin", second, "https://www.linkedin.com/in/{name}")]
    if first == "company" and second:
        return [_item("linkedin", "company", second.lower(),
                      "https://www.linkedin.com/company/{id}")]
    return []


def _discord(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first, second = _at(segments, 0), _at(segments, 1)
    invite = "https://discord.gg/{id}"
    if host == "discord.gg" and first:
        return [_item("discord", "invite", first, invite)]
    if first == "invite" and second:
        return [_item("discord", "invite", second, invite)]
    if first == "users" and _DIGITS.match(second):
        return [Target("discord", ACCOUNT, second, f"https://discord.com/users/{second}")]
    return []


def _whatsapp(host: str, segments: list[str], query: Query) -> list[Target | None]:
    first = _at(segments, 0)
    if host.startswith("chat.") and first:
        return [_item("whatsapp", "group", first, "https://chat.whatsapp.com/{id}")]
    return []


_READERS: tuple[tuple[str, Reader], ...] = (
    ("tiktok.com", _tiktok),
    ("instagram.com", _instagram), ("instagr.am", _instagram),
    ("threads.net", _threads), ("threads.com", _threads),
    ("facebook.com", _facebook), ("fb.com", _facebook), ("fb.watch", _facebook),
    ("fb.me", _facebook),
    ("x.com", _x), ("twitter.com", _x), ("t.co", _x),
    ("youtube.com", _youtube), ("youtu.be", _youtube),
    ("snapchat.com", _snapchat), ("twitch.tv", _twitch),
    ("reddit.com", _reddit), ("redd.it", _reddit), ("roblox.com", _roblox),
    ("linkedin.com", _linkedin),
    ("discord.gg", _discord), ("discord.com", _discord), ("discordapp.com", _discord),
    ("whatsapp.com", _whatsapp),
)
