"""The one place that says which HTML a post or page body may contain.

Bodies come from the admin's rich-text editor, but the editor is only a convenience: whatever
the browser sends is cleaned here (nh3, an allow-list) when the model is saved, so a crafted
request cannot store a script, an event handler, a ``javascript:``/``data:`` link, inline
styles, SVG or frames. Anything not listed is dropped (its text kept, except for ``script`` and
``style`` whose content goes too).
"""

from __future__ import annotations

import re
from html import unescape

import nh3

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "h2", "h3", "h4", "strong", "b", "em", "i", "u", "s", "sub", "sup",
        "blockquote", "ul", "ol", "li", "a", "img", "figure", "figcaption", "hr", "code", "pre",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
# No class, id or style anywhere: the look comes from the site's CSS (.mm-article-body).
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
}
# Relative URLs (/media/…, /doctors/…) pass; absolute ones only with these schemes.
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto", "tel"})
# Dropped with everything inside them rather than unwrapped.
DROP_WITH_CONTENT: frozenset[str] = frozenset({"script", "style"})
TAG = re.compile(r"<[^>]*>")
# Paragraphs with nothing in them, as editors leave behind after pressing Enter.
EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|<br>)*</p>")


def html_sanitize(html: str) -> str:
    """``html`` reduced to the allowed tags, attributes and URL schemes; links get
    ``rel="noopener noreferrer"``."""
    cleaned = nh3.clean(
        html or "",
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return EMPTY_PARAGRAPH.sub("", cleaned).strip()


def html_to_text(html: str) -> str:
    """Plain text of sanitised HTML, entities decoded (for excerpts and meta descriptions;
    templates escape it again)."""
    return " ".join(unescape(TAG.sub(" ", html or "")).split())
