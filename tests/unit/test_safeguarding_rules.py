"""The pure parts of safeguarding: the shipped keyword lists, their syntax, hash lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailroom.cases.safeguarding import keyword_category, matches_keywords
from mailroom.errors import ConfigError
from mailroom.resources import shipped_path
from mailroom.settings import Settings, load_settings
from mailroom.store.hashes import hash_kind, parse_hash_list

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
MD5 = "098f6bcd4621d373cade4e832627b4f6"


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path = tmp_path_factory.mktemp("cfg") / "empty.toml"
    path.write_text("")
    return load_settings(path, environ={"MAILROOM_SECRET": "k"})


# What professionals write, and the category the shipped lists give it.
REPORTS = {
    "indecent-images": ("A pupil has indecent images of a Year 8 girl on his phone.",
                        "illegal_images"),
    "csam": ("Police say the account shares CSAM.", "illegal_images"),
    "iioc-upper": ("Officer investigating IIOC offences at the club.", "illegal_images"),
    "child-abuse-hyphen": ("I think these are child-abuse images.", "illegal_images"),
    "child-abuse-newline": ("I was sent child abuse\nimages by a parent.", "illegal_images"),
    "nudes-shared": ("Year 10 boys shared nudes of a girl on Snapchat.", "illegal_images"),
    "semi-nudes": ("Semi nudes of pupils are going round.", "illegal_images"),
    "nudify-app": ("Pupils used a nudify app on class photos.", "illegal_images"),
    "self-generated": ("She says it is self-generated imagery.", "illegal_images"),
    "sextortion": ("This is a sextortion case reported by a parent.", "sextortion"),
    "sextorted": ("A 15-year-old boy was sextorted on Instagram.", "sextortion"),
    "sex-tortion": ("Looks like sex-tortion to me.", "sextortion"),
    "blackmail-nudes": ("Someone is blackmailing him with his nudes, asking for £500.",
                        "sextortion"),
    "threat-to-share": ("They are threatening to share her nudes unless she pays.",
                        "sextortion"),
    "extort-intimate": ("Extortion using intimate images of a pupil.", "sextortion"),
}
# Teachers' ordinary words that must not trip the lists.
NOT_ILLEGAL = {
    "cp": "CP concerns were logged with the DSL.",
    "cse": "CSE training for staff is next week.",
    "indecent-exposure": "A man was arrested for indecent exposure near the gates.",
    "nude-tights": "The dress code asks for nude tights.",
    "life-drawing": "Our art department runs a nude life drawing class for adults.",
    "sexting-word": "A sexting lesson for Year 9 was complained about.",
    "blackmail-alone": "A pupil is being blackmailed over a vape video.",
    "fake-account": "Someone made a fake TikTok account of our head teacher.",
    "canoodling": "Parents posted photos of staff canoodling at the party.",
}


@pytest.mark.parametrize(("text", "category"), REPORTS.values(), ids=REPORTS)
def test_shipped_lists_catch_what_reports_say(defaults: Settings, text: str,
                                              category: str) -> None:
    found = keyword_category(text, defaults)
    assert found is not None and found[0] == category


@pytest.mark.parametrize("text", NOT_ILLEGAL.values(), ids=NOT_ILLEGAL)
def test_shipped_lists_leave_ordinary_reports_alone(defaults: Settings, text: str) -> None:
    assert keyword_category(text, defaults) is None


SYNTAX = {
    "whole-word": (["nudes"], "denudes the hillside", []),
    "star-ending": (["sextort*"], "he was sextorted", ["sextort*"]),
    "hyphen-optional": (["semi-nude*"], "seminudes", ["semi-nude*"]),
    "space-any-run": (["child abuse images"], "child\t abuse  images", ["child abuse images"]),
    "plus-all-of": (["blackmail* + nude*"], "nudes ... later blackmailing", ["blackmail* + nude*"]),
    "plus-needs-both": (["blackmail* + nude*"], "blackmail over a vape", []),
    "regex-chars-literal": (["c++ (images)"], "about c++ (images) here", ["c++ (images)"]),
}


@pytest.mark.parametrize(("keywords", "text", "hits"), SYNTAX.values(), ids=SYNTAX)
def test_keyword_syntax(keywords: list[str], text: str, hits: list[str]) -> None:
    assert matches_keywords(text, keywords) == hits


def test_an_admin_can_empty_or_replace_the_lists(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[safeguarding]\nillegal_keywords = []\nsextortion_keywords = ["webcam"]\n')
    settings = load_settings(path, environ={"MAILROOM_SECRET": "k"})
    assert settings.illegal_keywords == () and settings.sextortion_keywords == ("webcam",)
    assert keyword_category("CSAM", settings) is None
    assert keyword_category("Webcam threats", settings) == ("sextortion", ["webcam"])


@pytest.mark.parametrize(("value", "problem"), [
    ('["a*b"]', 'safeguarding.illegal_keywords: * may only end a word, in "a*b"'),
    ('["nudes + "]', "safeguarding.illegal_keywords: an empty keyword or an empty part"),
    ('"csam"', None),
], ids=["star-inside", "empty-part", "one-string"])
def test_bad_keywords_are_one_line_naming_the_key(tmp_path: Path, value: str,
                                                  problem: str | None) -> None:
    path = tmp_path / "m.toml"
    path.write_text(f"[safeguarding]\nillegal_keywords = {value}\n")
    if problem is None:
        assert load_settings(path, environ={"MAILROOM_SECRET": "k"}).illegal_keywords == ("csam",)
        return
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={"MAILROOM_SECRET": "k"})
    [line] = error.value.problems
    assert line.startswith(problem)


def test_signposting_defaults_and_a_bad_service(tmp_path: Path, defaults: Settings) -> None:
    sign = defaults.signposting.default
    assert defaults.signposting.known_countries == ("GB",) and sign.country == "GB"
    assert (sign.emergency_number, sign.police_number) == ("999", "101")
    assert any("report.iwf.org.uk" in (s.url or "") for s in sign.hotlines)
    assert any("Report Remove" in s.name for s in sign.takedown)
    assert any("Take It Down" in s.name for s in sign.takedown)
    assert "sextortion" in defaults.categories and defaults.store_illegal_attachments is False
    path = tmp_path / "m.toml"
    path.write_text('[signposting]\nemergency_number = "112"\ntakedown = [{ url = "x" }]\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={"MAILROOM_SECRET": "k"})
    assert error.value.problems == ["signposting.takedown: entry 1: needs a name"]


def test_hash_kind_by_length() -> None:
    assert hash_kind(SHA.upper()) == "sha256" and hash_kind(f" {MD5} ") == "md5"
    assert hash_kind(MD5[:-1]) is None and hash_kind("z" * 32) is None


def test_parse_hash_list() -> None:
    text = (f"SHA-256,note\n{SHA.upper()},from the IWF list\n\n# a comment\n{MD5}\n"
            f"not-a-hash,x\n{MD5[:31]}\n\"{MD5[::-1]}\",\"a note, with a comma\"\n")
    parsed = parse_hash_list(text.splitlines())
    assert parsed.header == "SHA-256"
    assert [(h.line, h.kind, h.value, h.note) for h in parsed.hashes] == [
        (2, "sha256", SHA, "from the IWF list"), (5, "md5", MD5, None),
        (8, "md5", MD5[::-1], "a note, with a comma")]
    assert parsed.rejected == [(6, "not a hexadecimal hash"),
                               (7, "31 hex digits: a SHA-256 has 64, an MD5 32")]


def test_a_first_line_of_hex_is_a_hash_not_a_header() -> None:
    parsed = parse_hash_list([MD5[:20], MD5])
    assert parsed.header is None and parsed.rejected == [
        (1, "20 hex digits: a SHA-256 has 64, an MD5 32")]


def test_the_example_config_shows_the_safeguarding_defaults(defaults: Settings) -> None:
    example = load_settings(shipped_path("data/mailroom.example.toml"),
                            environ={"MAILROOM_SECRET": "k"})
    assert example.signposting == defaults.signposting
    assert example.categories == defaults.categories
    assert example.illegal_keywords == defaults.illegal_keywords
    assert example.store_illegal_attachments is defaults.store_illegal_attachments is False
