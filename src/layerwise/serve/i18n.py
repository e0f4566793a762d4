"""The web app's words in English, Korean and Japanese.

One catalogue per language, ``static/i18n/LANG.json``: keys to strings, with ``{name}``
placeholders the page fills in. A key ending in ``_html`` may hold markup (``<code>``, and the
``<span id=...>`` the page writes counts into); every other string is text.

The page is rendered in one language: ``?lang=`` when given (the switch on the page sets it,
and a cookie remembers it), else the cookie, else the first of the browser's
``Accept-Language`` that layerwise speaks, else English. The template ``static/index.html``
holds no words, only keys: an element ``data-i18n="key"`` gets the string as its text,
``data-i18n-html="key"`` as its markup, ``data-i18n-attr="attribute:key"`` as an attribute; and
the catalogue goes into the page as JSON for the script's own messages.
"""

from __future__ import annotations

import functools
import html
import json
import re
from importlib import resources

__all__ = ["COOKIE", "DEFAULT", "LANGUAGES", "catalogue", "choose", "negotiate", "render_page"]

#: The languages the page speaks, in the order the switch lists them.
LANGUAGES = ("en", "ko", "ja")
DEFAULT = "en"
#: The cookie that remembers the language chosen with the switch (cookies are shared by every
#: app on 127.0.0.1, whatever its port: hence the prefix).
COOKIE = "layerwise_lang"


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """The strings of ``lang`` (one of LANGUAGES), by key."""
    if lang not in LANGUAGES:
        raise KeyError(f"no catalogue for language {lang!r}; choose from {', '.join(LANGUAGES)}")
    text = resources.files(__package__).joinpath("static", "i18n", f"{lang}.json").read_text(encoding="utf-8")
    return json.loads(text)


# A language range and its weight: "ko-KR;q=0.9" (and "ko_KR", which some clients send).
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:[-_][A-Za-z0-9]{1,8})*\s*(?:;\s*[qQ]\s*=\s*([0-9.]+))?\s*$")


def negotiate(accept_language: str | None) -> str:
    """The language to answer an ``Accept-Language`` header in: its most preferred (highest q,
    then first) language that layerwise speaks, by primary tag (``ko-KR`` is ``ko``); English
    when none is."""
    ranked = []
    for order, item in enumerate((accept_language or "").split(",")):
        m = _RANGE.match(item)
        if m is None:
            continue
        try:
            q = float(m.group(2)) if m.group(2) is not None else 1.0
        except ValueError:
            continue
        lang = m.group(1).lower()
        if 0 < q <= 1 and lang in LANGUAGES:  # a weight above 1 is malformed, not a preference
            ranked.append((-q, order, lang))
    return min(ranked)[2] if ranked else DEFAULT


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch's ``?lang=``, the remembered cookie, the browser's."""
    for asked in (query, cookie):
        if asked in LANGUAGES:
            return asked
    return negotiate(accept_language)


_ELEMENT = re.compile(r'<(\w+)([^<>]*?)\sdata-i18n(-html)?="([\w.-]+)"([^<>]*)></\1>')
_ATTRIBUTE = re.compile(r'\sdata-i18n-attr="([\w-]+):([\w.-]+)"')
_PAGE_DATA = "<!--i18n-data-->"


def render_page(template: str, lang: str) -> str:
    """``template`` with every key replaced by ``lang``'s string, ``<html lang>`` set, and the
    catalogue embedded for the script. A key missing from the catalogue raises KeyError (a test
    renders every language)."""
    strings = catalogue(lang)

    def element(m: re.Match) -> str:
        tag, before, is_html, key, after = m.groups()
        value = strings[key] if is_html else html.escape(strings[key], quote=False)
        attribute = "data-i18n-html" if is_html else "data-i18n"
        return f'<{tag}{before} {attribute}="{key}"{after}>{value}</{tag}>'

    def attribute(m: re.Match) -> str:
        name, key = m.groups()
        return f' {name}="{html.escape(strings[key])}"{m.group(0)}'

    page = _ELEMENT.sub(element, template)
    page = _ATTRIBUTE.sub(attribute, page)
    page = page.replace('<html lang="">', f'<html lang="{lang}">', 1)
    data = {"lang": lang, "strings": strings,
            "languages": [{"code": code, "name": catalogue(code)["language.name"]} for code in LANGUAGES]}
    # No "<" at all inside the script element ("</script>", "<!--" would end or confuse it);
    # "\u003c" is the same JSON string.
    embedded = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return page.replace(_PAGE_DATA, f'<script id="i18n" type="application/json">{embedded}</script>', 1)
