"""[signposting] per country: each country's set over the default one, the country of a
requester's address, and one line naming the key for each mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailroom.errors import ConfigError
from mailroom.resources import EXAMPLE_CONFIG, shipped_text
from mailroom.settings import Settings, SignpostingByCountry, load_settings

ENV = {"MAILROOM_SECRET": "k"}

UK_AND_IRELAND = '''
[signposting.domains]
"example-schools.org" = "ie"
"north.example-schools.org" = "GB"
"@schulen.example" = "DE"
"grundschule-müller.example" = "DE"

[signposting.countries.IE]
emergency_number = "112 or 999"
police_number = "the number of your local Garda station"
hotlines = [{ name = "Hotline.ie", url = "https://hotline.ie" }]
takedown = []

[signposting.countries.de]
emergency_number = "110"
'''


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "mailroom.toml"
    path.write_text(text)
    return load_settings(path, environ=ENV)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    return error.value.problems


@pytest.fixture
def sign(tmp_path: Path) -> SignpostingByCountry:
    return load(tmp_path, UK_AND_IRELAND).signposting


def test_a_country_has_its_own_keys_and_the_default_sets_others(
        sign: SignpostingByCountry) -> None:
    assert sign.default_country == "GB" and sign.known_countries == ("DE", "GB", "IE")
    ireland, germany, default = sign.for_country("IE"), sign.for_country("DE"), sign.default
    assert ireland.country == "IE" and ireland.emergency_number == "112 or 999"
    assert [s.name for s in ireland.hotlines] == ["Hotline.ie"]
    assert ireland.takedown == ()  # an empty list is a country's own: none
    assert ireland.support == default.support and ireland.police_report == default.police_report
    assert (germany.emergency_number, germany.police_number) == ("110", "101")
    assert default.country == "GB" and default.emergency_number == "999"
    assert ireland.as_context()["country"] == "IE"
    assert ireland.as_context()["hotlines"][0]["url"] == "https://hotline.ie"


def test_a_case_without_a_set_gets_the_default_one(sign: SignpostingByCountry) -> None:
    assert sign.for_country(None) is sign.default
    assert sign.for_country("GB") is sign.default
    assert sign.for_country("FR") is sign.default  # a country no longer configured


@pytest.mark.parametrize(("address", "country"), [
    ("head@school.ie", "IE"),  # a country-code top-level domain with a set
    ("Head@Mail.School.IE", "IE"),
    ("jo@school.org.uk", "GB"),  # .uk is GB's
    ("jo@schule.de", "DE"),
    ("jo@ecole.fr", "GB"),  # no set for FR: the default
    ("jo@school.com", "GB"),
    ("jo@example-schools.org", "IE"),  # the domains map first
    ("jo@west.example-schools.org", "IE"),  # and its subdomains
    ("jo@north.example-schools.org", "GB"),  # the longest match wins
    ("jo@schulen.example", "DE"),
    ("jo@Grundschule-Müller.example", "DE"),  # the same domain, either spelling
    ("jo@xn--grundschule-mller-f3b.example", "DE"),
    ("jo@notexample-schools.org", "GB"),  # a suffix that is not a parent domain
    ("not an address", "GB"),
    ("", "GB"),
    (None, "GB"),
], ids=lambda value: str(value))
def test_the_country_of_an_address(sign: SignpostingByCountry, address: str | None,
                                   country: str) -> None:
    assert sign.country_of(address) == country


def test_the_default_country_is_any_iso_code_and_its_top_level_domain_is_its_own(
        tmp_path: Path) -> None:
    sign = load(tmp_path, '[signposting]\ndefault_country = "ie"\nemergency_number = "112"\n'
                          '[signposting.countries.GB]\nemergency_number = "999"\n').signposting
    assert sign.default_country == "IE" and sign.known_countries == ("GB", "IE")
    assert sign.country_of("a@school.ie") == "IE" and sign.country_of("a@x.com") == "IE"
    assert sign.country_of("a@school.org.uk") == "GB"
    assert sign.for_country("GB").emergency_number == "999"


@pytest.mark.parametrize(("text", "expected"), [
    ('[signposting.countries.IE]\nemergency = "112"\n',
     ["signposting.countries.IE.emergency: unknown key (known: emergency_number, "
      "police_number, hotlines, takedown, police_report, support)"]),
    ('[signposting.countries.Ireland]\nemergency_number = "112"\n',
     ['signposting.countries.Ireland: expected a two-letter ISO 3166 country code such as '
      'GB, IE or DE, got "Ireland"']),
    ('[signposting.countries.UK]\nemergency_number = "999"\n',
     ['signposting.countries.UK: expected a two-letter ISO 3166 country code such as '
      'GB, IE or DE, got "UK" (ISO 3166 writes it GB)']),
    ('[signposting.countries.XX]\n',
     ['signposting.countries.XX: expected a two-letter ISO 3166 country code such as '
      'GB, IE or DE, got "XX"']),
    ('[signposting.countries.IE]\nemergency_number = ""\nhotlines = [{ url = "x" }]\n',
     ["signposting.countries.IE.emergency_number: must not be empty",
      "signposting.countries.IE.hotlines: entry 1: needs a name"]),
    ('[signposting]\ncountries = { IE = "112" }\n',
     ['signposting.countries.IE: expected a table [signposting.countries.IE], got "112"']),
    ('[signposting]\ndefault_country = "Great Britain"\n',
     ['signposting.default_country: expected a two-letter ISO 3166 country code such as '
      'GB, IE or DE, got "Great Britain"']),
    ('[signposting]\ndomains = { "school.fr" = "FR" }\n',
     ['signposting.domains."school.fr": FR is neither signposting.default_country (GB) nor '
      'a configured country (add [signposting.countries.FR])']),
    ('[signposting]\ndomains = { example-schools.org = "IE" }\n',
     ['signposting.domains."example-schools.org": write the domain in quotes: '
      '"example-schools.org" = "IE"']),
    ('[signposting]\ndomains = { "a school.ie" = "IE", "x.ie" = "Eire" }\n',
     ['signposting.domains."a school.ie": expected a domain name such as example.ie',
      'signposting.domains."x.ie": expected a two-letter ISO 3166 country code such as '
      'GB, IE or DE, got "Eire"']),
    ('[signposting]\ndomains = ["example.ie"]\n',
     ['signposting.domains: expected a table such as { "example.ie" = "IE" }, '
      'got [\'example.ie\']']),
], ids=["unknown-key", "a-name", "uk", "not-assigned", "bad-values", "not-a-table",
        "default-country", "domain-without-a-set", "unquoted-domain", "bad-domains",
        "domains-list"])
def test_each_mistake_is_one_line_naming_its_key(tmp_path: Path, text: str,
                                                 expected: list[str]) -> None:
    assert problems(tmp_path, text) == expected


def test_the_example_for_ireland_loads_as_it_is_shown(tmp_path: Path) -> None:
    """Uncommenting the example's Irish table gives Ireland's set, the UK's staying the
    default."""
    text = shipped_text(EXAMPLE_CONFIG)
    table = re.search(r"^# \[signposting\.countries\.IE\]\n(?:#.*\n)+", text, re.MULTILINE)
    assert table is not None
    uncommented = re.sub(r"^# ?", "", table.group(0), flags=re.MULTILINE)
    sign = load(tmp_path, text.replace(table.group(0), uncommented)).signposting
    ireland = sign.for_country("IE")
    assert sign.known_countries == ("GB", "IE") and ireland.emergency_number == "112 or 999"
    assert [s.url for s in ireland.hotlines][0] == "https://hotline.ie"
    assert not any("Report Remove" in s.name for s in ireland.takedown)
    assert ireland.police_report == ()  # the Gardaí: at the station, not CEOP online
    assert any("childline.ie" in (s.url or "") for s in ireland.support)
    assert sign.default.emergency_number == "999"
