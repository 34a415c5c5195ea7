"""find_urls, platform_for_url."""

from __future__ import annotations

import tomllib

import pytest

from mailroom.intake.urls import find_urls, host_of, platform_for_url
from mailroom.platforms import load_platforms
from mailroom.resources import shipped_path

SHIPPED = shipped_path("data/platforms.toml")


@pytest.fixture(scope="module")
def platforms():
    loaded, problems = load_platforms(tomllib.loads(SHIPPED.read_text("utf-8")))
    assert problems == []
    return loaded


FOUND = [
    ("plain", "see https://www.tiktok.com/@user/video/1", ["https://www.tiktok.com/@user/video/1"]),
    ("full-stop", "It is https://x.com/a/status/1.", ["https://x.com/a/status/1"]),
    ("comma-and-query", "https://youtube.com/watch?v=abc, and", ["https://youtube.com/watch?v=abc"]),
    ("parentheses-around", "(https://reddit.com/r/x)", ["https://reddit.com/r/x"]),
    ("parentheses-inside", "https://en.wikipedia.org/wiki/Foo_(bar)).",
     ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("markdown", "[the video](https://youtu.be/abc)", ["https://youtu.be/abc"]),
    ("angle-brackets", "<https://discord.gg/abc>", ["https://discord.gg/abc"]),
    ("html-rendered-link", "this video (https://fb.watch/abc/)", ["https://fb.watch/abc/"]),
    ("quotes", '"https://instagram.com/p/xyz"', ["https://instagram.com/p/xyz"]),
    ("bold", "*https://twitch.tv/user*", ["https://twitch.tv/user"]),
    ("underscore-username", "https://x.com/bad_user_", ["https://x.com/bad_user_"]),
    ("www", "go to www.example.com/page.", ["https://www.example.com/page"]),
    ("bare-platform-path", "on tiktok.com/@user now", ["https://tiktok.com/@user"]),
    ("bare-subdomain", "vm.tiktok.com/ZM8abc/!", ["https://vm.tiktok.com/ZM8abc/"]),
    ("bare-short-link", "wa.me/447700900123 and redd.it/abc", [
        "https://wa.me/447700900123", "https://redd.it/abc"]),
    ("bare-domain-no-path", "I reported it on tiktok.com.", []),
    ("email-address", "write to abuse@tiktok.com/now", []),
    ("unknown-bare-domain", "example.com/page", []),
    ("duplicates-in-order", "https://t.co/a https://t.co/b https://t.co/a",
     ["https://t.co/a", "https://t.co/b"]),
    ("http", "http://bit.ly/x", ["http://bit.ly/x"]),
]


@pytest.mark.parametrize(("text", "urls"), [f[1:] for f in FOUND], ids=[f[0] for f in FOUND])
def test_find_urls(text: str, urls: list[str]) -> None:
    assert find_urls(text) == urls


def test_bare_links_on_directory_domains() -> None:
    assert find_urls("see kick.com/someone", domains=["kick.com"]) == ["https://kick.com/someone"]


MATCHES = [
    ("https://www.facebook.com/x", "facebook"),
    ("https://m.facebook.com/story.php?id=1", "facebook"),
    ("https://fb.watch/abc", "facebook"),
    ("https://www.instagram.com/p/1", "instagram"),
    ("https://instagr.am/p/1", "instagram"),
    ("https://www.threads.net/@x", "threads"),
    ("https://www.threads.com/@x", "threads"),
    ("https://chat.whatsapp.com/AbC", "whatsapp"),
    ("https://wa.me/447700900123", "whatsapp"),
    ("https://www.snapchat.com/add/x", "snapchat"),
    ("https://vm.tiktok.com/ZM1/", "tiktok"),
    ("https://vt.tiktok.com/ZS1/", "tiktok"),
    ("https://x.com/a/status/1", "x"),
    ("https://mobile.twitter.com/a", "x"),
    ("https://t.co/abc", "x"),
    ("https://youtu.be/abc", "youtube"),
    ("https://www.youtube.com/shorts/abc", "youtube"),
    ("https://drive.google.com/file/d/1", "google"),
    ("https://www.roblox.com/games/1", "roblox"),
    ("https://www.linkedin.com/in/x", "linkedin"),
    ("https://lnkd.in/abc", "linkedin"),
    ("https://www.xbox.com/x", "microsoft"),
    ("https://www.minecraft.net/x", "microsoft"),
    ("https://www.bing.com/images?q=x", "microsoft"),
    ("https://1drv.ms/u/s!abc", "microsoft"),
    ("https://discord.gg/abc", "discord"),
    ("https://cdn.discordapp.com/attachments/1/2/x.png", "discord"),
    ("https://www.twitch.tv/x", "twitch"),
    ("https://old.reddit.com/r/x", "reddit"),
    ("https://i.redd.it/x.jpg", "reddit"),
    ("HTTPS://WWW.TIKTOK.COM:443/@X", "tiktok"),
    ("tiktok.com/@x", "tiktok"),
]
NO_MATCH = [
    "https://notfacebook.com/x",
    "https://facebook.com.evil.example/x",
    "https://facebook.co.uk/x",
    "https://example.com/?u=https://tiktok.com/@x",
    "https://xtiktok.com/",
    "not a url",
    "https://[::1/",
]


@pytest.mark.parametrize(("url", "key"), MATCHES, ids=[m[0] for m in MATCHES])
def test_platform_for_url(url: str, key: str, platforms) -> None:
    assert platform_for_url(url, platforms) == key


@pytest.mark.parametrize("url", NO_MATCH, ids=NO_MATCH)
def test_look_alikes_do_not_match(url: str, platforms) -> None:
    assert platform_for_url(url, platforms) is None


def test_the_longest_listed_domain_wins(platforms) -> None:
    data = {"platforms": {
        "live": {"name": "Live", "address": "l@example.org", "domains": ["live.com"]},
        "drive": {"name": "D", "address": "d@example.org", "domains": ["onedrive.live.com"]},
    }}
    mine, problems = load_platforms(data)
    assert problems == []
    assert platform_for_url("https://onedrive.live.com/x", mine) == "drive"
    assert platform_for_url("https://outlook.live.com/x", mine) == "live"


def test_host_of() -> None:
    assert host_of("HTTPS://Www.Example.COM.:8080/x") == "www.example.com"
    assert host_of("example.com/x") == "example.com"
