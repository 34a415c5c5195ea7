"""load_platforms: the platform directory is validated, every problem named by key."""

from __future__ import annotations

import copy
import tomllib

import pytest

from mailroom.cases.escalations import find_platform_ref
from mailroom.platforms import Platform, load_platforms
from mailroom.resources import shipped_path

SHIPPED = shipped_path("data/platforms.toml")

GOOD = {
    "platforms": {
        "tiktok": {
            "name": "TikTok",
            "address": "tiktok@example.org",
            "domains": ["tiktok.com", "VM.TikTok.com."],
            "follow_up_days": 3,
            "max_follow_ups": 2,
            "case_ref_pattern": r"Ticket (?P<ref>\d+)",
            "template": "tiktok",
        }
    }
}


def with_value(field: str, value: object) -> dict:
    data = copy.deepcopy(GOOD)
    data["platforms"]["tiktok"][field] = value
    return data


def test_a_valid_table_becomes_a_platform() -> None:
    platforms, problems = load_platforms(GOOD)
    assert problems == []
    assert platforms["tiktok"] == Platform(
        key="tiktok",
        name="TikTok",
        address="tiktok@example.org",
        domains=("tiktok.com", "vm.tiktok.com"),
        follow_up_days=3,
        max_follow_ups=2,
        case_ref_pattern=r"Ticket (?P<ref>\d+)",
        template="tiktok",
    )


def test_optional_keys_have_defaults() -> None:
    data = {"platforms": {"discord": {"name": "Discord", "address": "d@example.org",
                                      "domains": ["discord.com"]}}}
    platforms, problems = load_platforms(data)
    assert problems == []
    discord = platforms["discord"]
    assert (discord.follow_up_days, discord.max_follow_ups, discord.template) == (5, 2, "discord")
    assert find_platform_ref(discord, ["Ticket 123"], own=None) is None


PROBLEMS = [
    ("days-text", "follow_up_days", "x",
     'platforms.tiktok.follow_up_days: expected a positive integer, got "x"'),
    ("days-zero", "follow_up_days", 0,
     "platforms.tiktok.follow_up_days: expected a positive integer, got 0"),
    ("days-bool", "follow_up_days", True,
     "platforms.tiktok.follow_up_days: expected a positive integer, got true"),
    ("max-negative", "max_follow_ups", -1,
     "platforms.tiktok.max_follow_ups: expected a whole number, 0 or more, got -1"),
    ("address", "address", "tiktok at example.org",
     "platforms.tiktok.address: expected an email address like trust-safety@example.org, "
     'got "tiktok at example.org"'),
    ("regex", "case_ref_pattern", "Ticket (\\d+",
     "platforms.tiktok.case_ref_pattern: not a valid regular expression"),
    ("domain-with-scheme", "domains", ["https://tiktok.com/"],
     'platforms.tiktok.domains: not a domain name: "https://tiktok.com/"'),
    ("domains-empty", "domains", [],
     "platforms.tiktok.domains: expected a non-empty list of domain names, got []"),
    ("domains-string", "domains", "tiktok.com",
     'platforms.tiktok.domains: expected a non-empty list of domain names, got "tiktok.com"'),
    ("template", "template", "../etc/passwd",
     "platforms.tiktok.template: expected a template name"),
    ("name-empty", "name", "  ", 'platforms.tiktok.name: expected a non-empty string, got "  "'),
    ("unknown-key", "folow_up_days", 3, "platforms.tiktok.folow_up_days: unknown key"),
]


@pytest.mark.parametrize(
    ("field", "value", "problem"), [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS]
)
def test_a_bad_value_is_named_by_key(field: str, value: object, problem: str) -> None:
    platforms, problems = load_platforms(with_value(field, value))
    assert "tiktok" not in platforms
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_missing_required_keys_and_unknown_tables_are_reported() -> None:
    data = {"platfroms": {}, "platforms": {"x": {"name": "X"}, "Bad Key": {}, "y": "oops"}}
    _, problems = load_platforms(data)
    assert problems == [
        "platfroms: unknown key",
        "platforms.x.address: missing",
        "platforms.x.domains: missing",
        "platforms.Bad Key: key must be lower-case letters, digits, '-' or '_'",
        'platforms.y: expected a table, got "oops"',
    ]


def test_a_domain_claimed_by_two_platforms_is_a_problem() -> None:
    data = copy.deepcopy(GOOD)
    data["platforms"]["other"] = {"name": "O", "address": "o@example.org",
                                  "domains": ["tiktok.com"]}
    _, problems = load_platforms(data)
    assert problems == ['platforms.other.domains: "tiktok.com" is also listed by platforms.tiktok']


@pytest.mark.parametrize(
    ("pattern", "text", "ref"),
    [
        (r"Ticket (?P<ref>\d+)", "Re: Ticket 4821 [x]", "4821"),
        (r"case #(\d+)", "your case #77 is closed", "77"),
        (r"REF-\d+", "about REF-991", "REF-991"),
    ],
    ids=["named-group", "first-group", "whole-match"],
)
def test_find_platform_ref(pattern: str, text: str, ref: str) -> None:
    platforms, _ = load_platforms(with_value("case_ref_pattern", pattern))
    assert find_platform_ref(platforms["tiktok"], [text], own=None) == ref


def test_the_shipped_directory_is_valid_and_complete() -> None:
    platforms, problems = load_platforms(tomllib.loads(SHIPPED.read_text("utf-8")))
    assert problems == []
    assert {
        "facebook", "instagram", "threads", "whatsapp", "snapchat", "tiktok", "x", "youtube",
        "google", "roblox", "microsoft", "linkedin", "discord", "twitch", "reddit",
    } <= set(platforms)
    assert all(p.address.endswith("@example.org") for p in platforms.values())


@pytest.mark.parametrize(
    ("key", "reply", "ref"),
    [
        ("facebook", "Re: your report - Case #1234567890123", "1234567890123"),
        ("tiktok", "Ticket ID: ABC12345XY", "ABC12345XY"),
        ("youtube", "Your case ID [1-2345000012345]", "1-2345000012345"),
        ("discord", "Request #123456 has been solved", "123456"),
        ("tiktok", "Thank you for your report. Your case number is 7788123456.", "7788123456"),
        ("instagram", "Your report ID is 123456789012. We removed it.", "123456789012"),
        ("tiktok", "Thank you for your report regarding this account.", None),
    ],
    ids=["facebook", "tiktok", "youtube", "discord", "number-is", "id-is", "no-number"],
)
def test_shipped_case_ref_patterns(key: str, reply: str, ref: str | None) -> None:
    platforms, _ = load_platforms(tomllib.loads(SHIPPED.read_text("utf-8")))
    assert find_platform_ref(platforms[key], [reply], own=None) == ref
