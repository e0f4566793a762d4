"""The graph pictures' words (layerwise.graph.captions): every caption in every language with
the same placeholders, and the book's graphs drawn in Korean and Japanese with their values'
names, numbers and English pictures unchanged."""

from __future__ import annotations

import string

import pytest
from graph_pictures import dot_edges

from layerwise import graph as G
from layerwise.errors import InputError
from layerwise.graph.captions import CAPTIONS, FONTS, LANGUAGES, caption, font
from layerwise.graph.dot import FONT
from layerwise.graph.examples import example_title

ALL_KEYS = sorted(set().union(*(CAPTIONS[lang] for lang in CAPTIONS)))


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def test_the_catalogues_are_the_languages():
    assert LANGUAGES[0] == "en"
    assert set(CAPTIONS) == set(FONTS) == set(LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_caption_is_in_every_language_with_the_same_placeholders(key, lang):
    assert key in CAPTIONS[lang], f"{lang} has no caption {key!r}"
    assert key in CAPTIONS["en"], f"{key!r} is in {lang} but not in English"
    assert placeholders(CAPTIONS[lang][key]) == placeholders(CAPTIONS["en"][key]), (key, lang)


def test_caption_fills_placeholders_and_names_the_languages_it_knows():
    assert caption("ja", "apple.title", apple="100", apple_num="2", tax="1.1") == \
        "りんごの買い物: 100 × 2 × 消費税 1.1"
    assert caption("ko", "label.orange_num") == "귤 개수"
    with pytest.raises(InputError, match=r"'xx'.*en, ko, ja"):
        caption("xx", "apple.title")
    with pytest.raises(InputError, match=r"'fr'.*en, ko, ja"):
        font("fr")
    with pytest.raises(KeyError, match=r"no caption 'apple\.colour'"):
        caption("en", "apple.colour")
    with pytest.raises(InputError, match="'de'"):
        G.Graph(lang="de")
    with pytest.raises(InputError, match="'de'"):
        G.example("apple", lang="de")


def test_english_is_what_the_pictures_always_said():
    assert G.apple_graph().title == "Buying apples: 100 × 2 × tax 1.1"
    assert G.apple_orange_graph().title == "Buying apples and oranges: (100 × 2 + 150 × 3) × tax 1.1"
    assert G.sigmoid_graph(2).title == "Sigmoid at x = 2: four nodes, or one"
    assert G.sigmoid_graph().sections == ["decomposed: y = 1 / (1 + exp(-x))",
                                          "fused Sigmoid layer: dx = dout · y(1 − y)"]
    dot = G.example("apple").to_dot()
    assert FONT == "Helvetica,Arial,sans-serif" and dot.count(f'fontname="{FONT}"') == 3
    assert "forward value above each edge, " in dot and "gradient ∂L/∂· below it" in dot
    assert 'tooltip="apple → ×: forward 100, gradient 2.2"' in dot


BOOK_WORDS = {
    "ko": {"apple": "사과", "apple_num": "사과 개수", "orange": "귤", "orange_num": "귤 개수", "tax": "소비세"},
    "ja": {"apple": "りんご", "apple_num": "りんごの個数", "orange": "みかん", "orange_num": "みかんの個数",
           "tax": "消費税"},
}


@pytest.mark.parametrize("lang", ["ko", "ja"])
def test_the_book_graphs_in_korean_and_japanese_keep_names_and_numbers(lang):
    words = BOOK_WORDS[lang]
    g = G.example("apple-orange", lang=lang)
    for name, grad in {"apple": 2.2, "apple_num": 110, "orange": 3.3, "orange_num": 165, "tax": 650}.items():
        assert g[name].label == words[name]  # the name indexes, the label is drawn
        assert g[name].grad == pytest.approx(grad)
    assert g["price"].value == pytest.approx(715)
    english = dot_edges(G.example("apple-orange").to_dot())
    drawn = dot_edges(g.to_dot())
    assert [(a, b) for *_, a, b in drawn] == [(a, b) for *_, a, b in english]  # the same numbers
    assert drawn[0][:2] == (words["apple"], "×") and drawn[3][:2] == (words["orange_num"], "×")

    dot = g.to_dot()
    assert dot.count(f'fontname="{FONTS[lang]}"') == 3 and FONT not in dot
    assert "forward" not in dot and "gradient" not in dot and "Buying" not in dot

    s = G.example("sigmoid", x=2, lang=lang)
    assert s["x"].label == s["x_fused"].label == "x" and s["y_fused"].label == "y"
    assert s["x"].grad == pytest.approx(s["x_fused"].grad)
    assert s.sections[0].endswith(": y = 1 / (1 + exp(-x))")  # the formula stays as it is
    assert s.sections[1].endswith(": dx = dout · y(1 − y)")
    assert "x = 2" in s.title


def test_example_title():
    assert example_title("apple") == "Buying apples: 100 × 2 × tax 1.1"
    assert example_title("apple-orange", "ko") == "사과와 귤 구입: (100 × 2 + 150 × 3) × 소비세 1.1"
    assert example_title("sigmoid", "ja") == "x = 1 での Sigmoid: ノード4つ、または1つ"
