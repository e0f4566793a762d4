"""The web app in English, Korean and Japanese (layerwise.serve.i18n): one catalogue per
language with every key and placeholder, no word left in the template or the script, the
language chosen from ?lang=, the cookie or Accept-Language."""

from __future__ import annotations

import html.parser
import json
import re
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serve_client import assert_error

from layerwise.serve import i18n
from layerwise.serve.i18n import LANGUAGES, catalogue, choose, negotiate, render_page
from layerwise.serve.sessions import GRAPHS

STATIC = resources.files("layerwise.serve").joinpath("static")
TEMPLATE = STATIC.joinpath("index.html").read_text(encoding="utf-8")
SCRIPT = STATIC.joinpath("app.js").read_text(encoding="utf-8")
ENGLISH = catalogue("en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
TAG = re.compile(r"<(/?\w+)([^>]*)>")


def _keys_and_langs() -> list[tuple[str, str]]:
    return [(key, lang) for key in ENGLISH for lang in LANGUAGES if lang != "en"]


# -- the catalogues ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalogue_has_exactly_the_english_keys(lang):
    words = catalogue(lang)
    assert sorted(set(ENGLISH) - set(words)) == [], f"{lang}.json misses these keys"
    assert sorted(set(words) - set(ENGLISH)) == [], f"{lang}.json has keys English does not"
    assert all(isinstance(v, str) and v.strip() for v in words.values())


@pytest.mark.parametrize(("key", "lang"), _keys_and_langs())
def test_a_translation_keeps_the_placeholders_and_markup(key, lang):
    english, translated = ENGLISH[key], catalogue(lang)[key]
    assert sorted(PLACEHOLDER.findall(translated)) == sorted(PLACEHOLDER.findall(english))
    # The same tags with the same attributes (the page writes counts into <span id=...>).
    assert sorted(TAG.findall(translated)) == sorted(TAG.findall(english))
    if not key.endswith("_html"):
        assert "<" not in english, f"{key}: markup in a text string (name the key ..._html)"


def test_a_missing_key_is_seen(monkeypatch):
    incomplete = {k: v for k, v in ENGLISH.items() if k != "tab.draw"}
    monkeypatch.setattr(i18n, "catalogue", lambda lang: incomplete)
    with pytest.raises(KeyError, match=r"tab\.draw"):
        render_page(TEMPLATE, "ko")


def test_an_unknown_language_has_no_catalogue():
    with pytest.raises(KeyError, match="'fr'; choose from en, ko, ja"):
        catalogue("fr")


# -- no word outside the catalogues ---------------------------------------------------------------

class _Text(html.parser.HTMLParser):
    """The text of a page outside <script> and <style>, and the data-i18n keys it asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.keys: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("script", "style")
        for name, value in attrs:
            if name in ("data-i18n", "data-i18n-html"):
                self.keys.append(value)
            elif name == "data-i18n-attr":
                self.keys.append(value.split(":", 1)[1])
            elif name in ("title", "aria-label", "placeholder", "alt"):
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def test_the_template_holds_keys_not_words():
    parsed = _Text()
    parsed.feed(TEMPLATE)
    # "layerwise" is a name, "x" the sigmoid's input: the same in every language.
    assert [t for t in parsed.texts if t not in ("layerwise", "x")] == []
    assert sorted(set(parsed.keys) - set(ENGLISH)) == []


# String literals of the script that hold words: two words of letters side by side.
_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`')
_WORDS = re.compile(r"[A-Za-z]{2,}'?[a-z]* [A-Za-z]{2,}")


def test_the_script_takes_its_words_from_the_catalogue():
    code = re.sub(r"//[^\n]*", "", SCRIPT)  # comments are for readers of the code
    worded = [lit for lit in _LITERAL.findall(code) if _WORDS.search(re.sub(r"\$\{[^}]*\}", "", lit))]
    # Code, not words shown: a directive, a selector, class names, a canvas font, and the
    # console's message for a developer.
    allowed = {'"use strict"', '"nav button"', '"nav button[aria-selected=true]"',
               '`nav button[data-view="${CSS.escape(asked)}"]`', '"muted small"', '"small muted"',
               '"11px system-ui"', "`layerwise: no string ${key}`"}
    assert [w for w in worded if w not in allowed] == []


def test_every_key_is_used_and_every_used_key_exists():
    parsed = _Text()
    parsed.feed(TEMPLATE)
    # Every literal shaped like a key ("train.stopped"): t()'s argument, or one it chooses from.
    in_script = set(re.findall(r'"([a-z]+\.[\w.-]+)"', SCRIPT))
    in_script |= {f"graph.{name}" for name in GRAPHS}  # t(`graph.${name}`) and /api/graphs
    used = set(parsed.keys) | in_script | {"language.name"}  # the switch lists each language's own name
    assert sorted(used - set(ENGLISH)) == [], "keys used but in no catalogue"
    assert sorted(set(ENGLISH) - used) == [], "keys in the catalogue that nothing uses (stale?)"


# -- choosing the language ------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "lang"), [
    (None, "en"),
    ("", "en"),
    ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
    ("ja", "ja"),
    ("fr-FR,fr;q=0.9,ja;q=0.8,ko;q=0.7", "ja"),
    ("en;q=0.5,ko;q=0.8", "ko"),
    ("ko;q=0,ja;q=0.1", "ja"),  # q=0: not acceptable
    ("zh-CN,zh;q=0.9", "en"),
    ("KO-kr", "ko"),
    ("ko_KR,en;q=0.5", "ko"),  # an underscore, as some clients send it
    ("en;q=0.9,ja;Q=1", "ja"),  # parameter names are case-insensitive
    ("ko;q=2,ja;q=0.9", "ja"),  # a weight above 1 is malformed: that range is skipped
    ("*", "en"),
    ("ko;q=abc,ja;q=0.5", "ja"),  # a malformed range is skipped, not an error
    ("garbage;;;,,", "en"),
])
def test_accept_language_is_negotiated(header, lang):
    assert negotiate(header) == lang


@given(st.text(max_size=80))
def test_negotiation_always_answers_a_language_it_speaks(header):
    assert negotiate(header) in LANGUAGES


def test_the_switch_beats_the_cookie_which_beats_the_browser():
    assert choose("ja", "ko", "en") == "ja"
    assert choose(None, "ko", "ja") == "ko"
    assert choose(None, "xx", "ja") == "ja"
    assert choose(None, None, None) == "en"


# -- the page, as a browser gets it ----------------------------------------------------------------

def _strings(page: str) -> dict:
    m = re.search(r'<script id="i18n" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_comes_in_the_browsers_language(client, lang):
    header = {"en": "en-GB,en;q=0.9", "ko": "ko-KR,ko;q=0.9,en;q=0.5", "ja": "ja-JP,ja;q=0.9"}[lang]
    page = client.get("/", headers={"Accept-Language": header})
    words = catalogue(lang)
    assert page.status_code == 200 and page.headers["content-language"] == lang
    assert "Accept-Language" in page.headers["vary"]
    assert f'<html lang="{lang}">' in page.text
    assert f'data-i18n="tab.draw">{words["tab.draw"]}</button>' in page.text
    assert f"<title data-i18n=\"page.title\">{words['page.title']}</title>" in page.text
    assert f'aria-label="{words["draw.pad_label"]}"' in page.text
    assert '<code>mask</code>' in page.text  # markup strings keep their markup
    embedded = _strings(page.text)
    assert embedded["lang"] == lang and embedded["strings"] == words
    assert [x["code"] for x in embedded["languages"]] == list(LANGUAGES)
    assert [x["name"] for x in embedded["languages"]] == ["English", "한국어", "日本語"]


def test_the_switch_is_remembered_in_a_cookie(served):
    from starlette.testclient import TestClient  # a client of its own: its cookies stay here

    from layerwise.serve import create_app  # as conftest's client fixture

    with TestClient(create_app(served), base_url="http://127.0.0.1") as own:
        first = own.get("/?lang=ja", headers={"Accept-Language": "ko"})
        assert '<html lang="ja">' in first.text and "layerwise_lang=ja" in first.headers["set-cookie"]
        again = own.get("/", headers={"Accept-Language": "ko"})  # the cookie, not the header
        assert '<html lang="ja">' in again.text
        graphs = own.get("/api/graphs", headers={"Accept-Language": "ko"})  # the API follows it too
        assert graphs.json()["graphs"][0]["title"] == catalogue("ja")["graph.apple"]
        assert "Cookie" in graphs.headers["vary"]


def test_an_unknown_language_in_the_address_is_refused(client):
    assert_error(client.get("/?lang=fr"), 422, "lang", "'fr'", "en, ko, ja")
    assert_error(client.get("/api/graphs?lang=fr"), 422, "lang", "'fr'")


def test_a_script_end_in_a_string_cannot_end_the_embedded_json(monkeypatch):
    words = {**ENGLISH, "draw.hint": "</script><script>alert(1)</script><!--<script>"}
    monkeypatch.setattr(i18n, "catalogue", lambda lang: words)
    page = render_page(TEMPLATE, "en")
    embedded = re.search(r'<script id="i18n" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in embedded  # no "</script>", no "<!--": nothing the HTML parser could act on
    assert _strings(page)["strings"]["draw.hint"] == words["draw.hint"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_graphs_are_listed_and_stepped_in_the_language_asked(client, lang):
    listed = client.get(f"/api/graphs?lang={lang}").json()["graphs"]
    assert [g["title"] for g in listed] == [catalogue(lang)[f"graph.{name}"] for name in GRAPHS]
    state = client.post("/api/graphs/apple", json={"lang": lang}).json()
    from layerwise.graph.examples import example_title  # the graph pictures' own catalogue

    assert state["title"] == example_title("apple", lang)
    labels = {v["name"]: v["label"] for v in state["inputs"]}
    assert labels["apple"] == {"en": "apple", "ko": "사과", "ja": "りんご"}[lang]


def test_an_unknown_language_for_a_graph_is_refused(client):
    assert_error(client.post("/api/graphs/apple", json={"lang": "fr"}), 422, "field 'lang'", "'fr'")
