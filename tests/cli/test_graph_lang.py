"""``layerwise graph --lang ko|ja``, run as a user runs it: the book's graphs drawn in Korean and
Japanese, in a font that has the glyphs, and the errors of a language it does not know."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

# conftest's _missing is its one rule for a missing system dependency (skip, or fail when
# LAYERWISE_REQUIRE_FIXTURES=1); a font is neither a program nor a fixture file, so use it directly.
from conftest import _missing, require_program
from graph_pictures import SVG_NS, cli, svg_texts

from layerwise import io
from layerwise.models import TwoLayerNet

FONTCONFIG_HINT = "fontconfig's fc-match; Debian/Ubuntu: apt-get install fontconfig fonts-noto-cjk"

#: What each picture must show: the title and the labels, as the book's editions write them.
EXPECTED = {
    ("apple", "ko"): ["사과 구입: 100 × 2 × 소비세 1.1", "사과", "사과 개수", "소비세", "지불 금액"],
    ("apple", "ja"): ["りんごの買い物: 100 × 2 × 消費税 1.1", "りんご", "りんごの個数", "消費税", "支払金額"],
    ("apple-orange", "ko"): ["사과와 귤 구입: (100 × 2 + 150 × 3) × 소비세 1.1",
                             "사과", "사과 개수", "귤", "귤 개수", "소비세", "지불 금액"],
    ("apple-orange", "ja"): ["りんごとみかんの買い物: (100 × 2 + 150 × 3) × 消費税 1.1",
                             "りんご", "りんごの個数", "みかん", "みかんの個数", "消費税", "支払金額"],
    ("sigmoid", "ko"): ["x = 1에서의 Sigmoid: 노드 네 개, 또는 하나", "노드로 나눈 그래프: y = 1 / (1 + exp(-x))",
                        "하나로 합친 Sigmoid 계층: dx = dout · y(1 − y)", "x", "y"],
    ("sigmoid", "ja"): ["x = 1 での Sigmoid: ノード4つ、または1つ", "ノードに分解したグラフ: y = 1 / (1 + exp(-x))",
                        "1つにまとめたSigmoidレイヤ: dx = dout · y(1 − y)", "x", "y"],
}
#: The English words of the titles, captions, labels and legend, none of which may be left.
ENGLISH = re.compile(r"\b(buying|apples?|oranges?|tax|price|apple_num|orange_num|four|nodes|decomposed|"
                     r"fused|layer|forward|gradient|above|below|edge)\b", re.IGNORECASE)
CJK_FONT = {"ko": "Noto Sans CJK KR", "ja": "Noto Sans CJK JP"}


@pytest.fixture
def cjk_font() -> str:
    """The Noto Sans CJK font files, as fontconfig (and so Graphviz's PNG renderer) finds them."""
    fc_match = require_program("fc-match", FONTCONFIG_HINT)
    files = []
    for family in CJK_FONT.values():
        found = subprocess.run([fc_match, "-f", "%{file}", family], capture_output=True, text=True,
                               timeout=60, check=True).stdout
        if "NotoSansCJK" not in found:
            _missing(f"font {family!r} is not installed (fc-match gives {found or 'nothing'}); "
                     "Debian/Ubuntu: apt-get install fonts-noto-cjk")
        files.append(found)
    return files[0]


def test_the_cjk_fonts_are_installed(cjk_font):
    assert "NotoSansCJK" in cjk_font


@pytest.mark.usefixtures("needs_dot")
@pytest.mark.parametrize(("name", "lang"), sorted(EXPECTED))
def test_the_book_graphs_in_korean_and_japanese(tmp_path, name, lang):
    svg = tmp_path / f"{name}-{lang}.svg"
    result = cli(name, "--lang", lang, "-o", str(svg))
    assert str(svg) in result.stdout
    text = svg.read_text(encoding="utf-8")
    texts = [t for t, _ in svg_texts(text)]
    missing = [want for want in EXPECTED[name, lang] if want not in texts]
    assert missing == [], texts
    root = ET.fromstring(text)
    # The tooltips (hover text on each edge) are words of the picture too.
    tooltips = [v for el in root.iter() for k, v in el.attrib.items() if k.endswith("}title")]
    assert len(tooltips) >= len(EXPECTED[name, lang]) - 1
    english = [t for t in texts + tooltips if ENGLISH.search(t)]
    assert english == []
    fonts = {t.get("font-family") for t in root.iter(SVG_NS + "text")}
    assert fonts == {CJK_FONT[lang]}


@pytest.mark.usefixtures("needs_dot", "cjk_font")
def test_a_korean_png(tmp_path):
    png = tmp_path / "apple-ko.png"
    cli("apple", "--lang", "ko", "-o", str(png), "--dpi", "72")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_english_is_the_default_and_unchanged():
    dot = cli("apple").stdout
    assert cli("apple", "--lang", "en").stdout == dot
    assert 'fontname="Helvetica,Arial,sans-serif"' in dot and "Buying apples: 100 × 2 × tax 1.1" in dot


def test_a_language_it_does_not_know(tmp_path):
    result = cli("apple", "--lang", "xx", "-o", str(tmp_path / "a.svg"), check=False)
    assert result.returncode == 2
    assert "--lang" in result.stderr and "'xx'" in result.stderr
    assert all(f"'{lang}'" in result.stderr for lang in ("en", "ko", "ja"))
    assert "Traceback" not in result.stderr and not (tmp_path / "a.svg").exists()


def test_a_model_file_is_drawn_in_english_only(tmp_path):
    path = io.save(TwoLayerNet(4, 3, 2, seed=0), tmp_path / "model.safetensors")
    result = cli(str(path), "--lang", "ko", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--lang ko" in result.stderr and "English" in result.stderr
    assert cli(str(path), "--lang", "en").stdout.startswith("digraph")

