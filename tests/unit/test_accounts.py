"""Reported URLs read into the accounts and items they name, whatever their form."""

from __future__ import annotations

import pytest

from mailroom.intake.accounts import targets_in, targets_of


def keys(url: str) -> list[str]:
    return [t.key for t in targets_of(url)]


@pytest.mark.parametrize("url", [
    "https://www.tiktok.com/@Fake_Head", "tiktok.com/@fake_head", "https://m.tiktok.com/@fake_head/",
    "https://www.tiktok.com/@fake_head?lang=en&is_from_webapp=1", "http://tiktok.com/@FAKE_HEAD#x",
])
def test_every_form_of_a_tiktok_profile_is_one_account(url: str) -> None:
    assert keys(url) == ["tiktok:account:fake_head"]


def test_a_tiktok_video_names_its_account_and_the_video() -> None:
    assert keys("https://www.tiktok.com/@fake_head/video/7301234567890?is_from_webapp=1") == [
        "tiktok:account:fake_head", "tiktok:video:7301234567890"]
    assert keys("https://m.tiktok.com/v/7301234567890.html") == ["tiktok:video:7301234567890"]


def test_a_short_link_is_kept_as_itself_with_its_case() -> None:
    assert keys("https://vm.tiktok.com/ZMabCD12/") == ["tiktok:short:ZMabCD12"]


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.instagram.com/fake.teacher/", ["instagram:account:fake.teacher"]),
    ("instagram.com/Fake.Teacher?igshid=abc", ["instagram:account:fake.teacher"]),
    ("https://instagr.am/fake.teacher", ["instagram:account:fake.teacher"]),
    ("https://www.instagram.com/p/CxYz12AbC/", ["instagram:post:CxYz12AbC"]),
    ("https://www.instagram.com/reel/CxYz12AbC/?utm_source=ig", ["instagram:reel:CxYz12AbC"]),
    ("https://www.instagram.com/stories/fake.teacher/3212345678/",
     ["instagram:account:fake.teacher", "instagram:story:3212345678"]),
    ("https://www.instagram.com/explore/tags/school/", []),
    ("https://www.threads.net/@fake.teacher/post/C1abc", ["threads:account:fake.teacher",
                                                          "threads:post:C1abc"]),
    ("https://www.facebook.com/fake.head.teacher", ["facebook:account:fake.head.teacher"]),
    ("https://m.facebook.com/Fake.Head.Teacher/?ref=bookmarks",
     ["facebook:account:fake.head.teacher"]),
    ("https://www.facebook.com/profile.php?id=100089123456789",
     ["facebook:account:id100089123456789"]),
    ("https://www.facebook.com/permalink.php?story_fbid=123456&id=100089123456789",
     ["facebook:account:id100089123456789", "facebook:post:123456"]),
    ("https://www.facebook.com/groups/SchoolGossip/", ["facebook:group:schoolgossip"]),
    ("https://www.facebook.com/watch/?v=987654321", ["facebook:video:987654321"]),
    ("https://www.facebook.com/marketplace/item/123", []),
    ("https://twitter.com/Fake_Head/status/1712345678901234567",
     ["x:account:fake_head", "x:post:1712345678901234567"]),
    ("https://x.com/fake_head", ["x:account:fake_head"]),
    ("https://mobile.twitter.com/fake_head?s=20", ["x:account:fake_head"]),
    ("https://x.com/search?q=school", []),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s", ["youtube:video:dQw4w9WgXcQ"]),
    ("https://youtu.be/dQw4w9WgXcQ", ["youtube:video:dQw4w9WgXcQ"]),
    ("https://www.youtube.com/shorts/dQw4w9WgXcQ", ["youtube:video:dQw4w9WgXcQ"]),
    ("https://www.youtube.com/@FakeHead", ["youtube:account:fakehead"]),
    ("https://www.youtube.com/channel/UC1234567890abcdefABCDEF",
     ["youtube:account:channel/UC1234567890abcdefABCDEF"]),
    ("https://www.snapchat.com/add/fake_head", ["snapchat:account:fake_head"]),
    ("https://www.twitch.tv/FakeHead", ["twitch:account:fakehead"]),
    ("https://www.reddit.com/user/FakeHead/", ["reddit:account:fakehead"]),
    ("https://www.reddit.com/r/SchoolRumours/comments/abc123/title/",
     ["reddit:community:schoolrumours", "reddit:post:abc123"]),
    ("https://www.roblox.com/users/123456/profile", ["roblox:account:123456"]),
    ("https://www.linkedin.com/in/Fake-Head", ["linkedin:account:fake-head"]),
    ("https://discord.gg/AbC123", ["discord:invite:AbC123"]),
    ("https://discord.com/invite/AbC123", ["discord:invite:AbC123"]),
    ("https://chat.whatsapp.com/AbCdEf123", ["whatsapp:group:AbCdEf123"]),
])
def test_the_common_url_forms_of_the_directory_platforms(url: str, expected: list[str]) -> None:
    assert keys(url) == expected


@pytest.mark.parametrize("url", [
    "https://www.tiktok.com.evil.io/@fake_head", "https://nottiktok.com/@fake_head",
    "https://example.org/@fake_head", "not a url at all", "https://[broken",
    "https://www.tiktok.com/@", "https://www.tiktok.com/@bad name",
])
def test_look_alike_hosts_and_broken_urls_name_nothing(url: str) -> None:
    assert keys(url) == []


def test_targets_in_many_urls_come_once_each_in_order() -> None:
    found = targets_in(["tiktok.com/@a", "https://www.tiktok.com/@A/video/1", "x.com/b"])
    assert [t.key for t in found] == ["tiktok:account:a", "tiktok:video:1", "x:account:b"]
    assert found[0].url == "https://www.tiktok.com/@a" and found[0].is_account
