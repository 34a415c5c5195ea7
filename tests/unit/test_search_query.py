"""Search words as both databases read them: runs of letters and digits, each word a phrase."""

from __future__ import annotations

import pytest

from mailroom.store.search import MAX_WORDS, SearchQuery


@pytest.mark.parametrize(("words", "phrases"), [
    ("tiktok.com/@jo_b", ("tiktok com jo b",)),
    ("HL-000012", ("hl 000012",)),
    ("Jo@School.example  bullying", ("jo school example", "bullying")),
    ("bullying BULLYING", ("bullying",)),
    ("Zoë", ("zoë",)),
    ("--- @@ ///", ()),
    ("", ()),
], ids=["url", "reference", "address-and-word", "repeated", "accent", "punctuation", "empty"])
def test_words_become_phrases(words: str, phrases: tuple[str, ...]) -> None:
    assert SearchQuery.parse(words).phrases == phrases


def test_at_most_so_many_words() -> None:
    query = SearchQuery.parse(" ".join(f"w{n}" for n in range(20)))
    assert len(query.phrases) == MAX_WORDS


def test_an_empty_query_is_false() -> None:
    assert not SearchQuery.parse("...")
    assert SearchQuery.parse("a")
