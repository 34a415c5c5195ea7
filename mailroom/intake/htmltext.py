"""Plain text from an HTML mail body.

``html_to_text`` renders HTML with inscriptis (paragraphs, line breaks, lists
and tables keep their shape; ``<style>``, ``<script>`` and ``<head>`` are not
rendered) and keeps link targets visible: the helpline needs the URLs people
report, and in HTML mail they often hide behind words like "this video".
"""

from __future__ import annotations

import html as html_module
import re

from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from lxml import etree
from lxml.html import HtmlElement, document_fromstring

# "strict" renders the HTML as a browser would; "relaxed" indents every <div>.
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"].copy())
_LINK_SCHEMES = ("http://", "https://", "ftp://", "www.")
_DROPPED_TAGS = ("style", "script", "head", "title", "template")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")
_TAG = re.compile(r"<[^>]{0,2000}>")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """The readable text of ``html``, with link URLs shown after their text."""
    tree = _parse(html)
    if tree is None:
        return _strip_tags(html)
    _drop_invisible(tree)
    _show_link_targets(tree)
    try:
        text = Inscriptis(tree, _CONFIG).get_text()
    except Exception:  # a rendering bug must not cost the message its text
        return _strip_tags(html)
    return _tidy(text)


def _parse(html: str) -> HtmlElement | None:
    html = _XML_DECLARATION.sub("", html.replace("\x00", ""), count=1).strip()
    if not html:
        return None
    try:
        return document_fromstring(html)
    except (etree.LxmlError, ValueError):
        return None


def _drop_invisible(tree: HtmlElement) -> None:
    for element in list(tree.iter(*_DROPPED_TAGS)):
        element.drop_tree()
    for comment in list(tree.iter(etree.Comment)):
        comment.drop_tree()


def _show_link_targets(tree: HtmlElement) -> None:
    """Append `` (url)`` after each link whose text does not already show it."""
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href.lower().startswith(_LINK_SCHEMES):
            continue
        label = anchor.text_content().strip()
        if _same_url(label, href):
            continue
        anchor.tail = f" ({href})" + (anchor.tail or "")


def _same_url(label: str, href: str) -> bool:
    def bare(url: str) -> str:
        return re.sub(r"^[a-z]+://", "", url.lower()).rstrip("/")

    return bool(label) and bare(label) == bare(href)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def _strip_tags(html: str) -> str:
    """Last resort when the HTML cannot be parsed at all."""
    text = _TAG.sub(" ", html.replace("\x00", ""))
    return _tidy(html_module.unescape(text)) if text.strip() else ""
