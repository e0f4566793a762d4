"""The words of the book's graph pictures, in English, Korean and Japanese.

One catalogue per language (``CAPTIONS[lang]``), each mapping the same keys to format strings
with the same ``{placeholders}``: the graphs' titles, the sigmoid graph's section captions, the
input and output labels, the legend under every picture and the edges' tooltips. The English
strings are the pictures' words as they have always been drawn, so English pictures stay as
they are. Korean and Japanese use the words of the book's editions, 『밑바닥부터 시작하는
딥러닝』 (사과, 사과 개수, 귤, 귤 개수, 소비세) and 『ゼロから作るDeep Learning』 (りんご,
りんごの個数, みかん, みかんの個数, 消費税). Operator symbols, numbers and formulas are the same
in every language: only words are translated.

:func:`caption` formats one string; :func:`font` names the font that has the language's
glyphs (Debian: ``apt-get install fonts-noto-cjk`` for Korean and Japanese).
"""

from __future__ import annotations

from ..errors import InputError

__all__ = ["CAPTIONS", "FONTS", "LANGUAGES", "caption", "check_language", "font"]

#: The languages the book's graphs are drawn in, English first (the default).
LANGUAGES: tuple[str, ...] = ("en", "ko", "ja")

#: Graphviz font per language: it goes to fontconfig (PNG) and into the SVG as CSS font-family.
#: Helvetica and Arial have no Hangul or kana, so Korean and Japanese name Noto Sans CJK, whose
#: KR and JP variants draw the characters the way each language writes them.
FONTS: dict[str, str] = {
    "en": "Helvetica,Arial,sans-serif",
    "ko": "Noto Sans CJK KR",
    "ja": "Noto Sans CJK JP",
}

CAPTIONS: dict[str, dict[str, str]] = {
    "en": {
        "apple.title": "Buying apples: {apple} × {apple_num} × tax {tax}",
        "apple_orange.title": "Buying apples and oranges: ({apple} × {apple_num} + "
                              "{orange} × {orange_num}) × tax {tax}",
        "sigmoid.title": "Sigmoid at x = {x}: four nodes, or one",
        "sigmoid.decomposed": "decomposed: y = 1 / (1 + exp(-x))",
        "sigmoid.fused": "fused Sigmoid layer: dx = dout · y(1 − y)",
        "label.apple": "apple",
        "label.apple_num": "apple_num",
        "label.orange": "orange",
        "label.orange_num": "orange_num",
        "label.tax": "tax",
        "label.apple_price": "apple_price",
        "label.orange_price": "orange_price",
        "label.all_price": "all_price",
        "label.price": "price",
        "legend.above": "forward value above each edge",
        "legend.sep": ", ",
        "legend.grad": "gradient ∂L/∂· below it",
        "tooltip.edge": "{src} → {dst}: forward {value}",
        "tooltip.grad": ", gradient {grad}",
    },
    "ko": {
        "apple.title": "사과 구입: {apple} × {apple_num} × 소비세 {tax}",
        "apple_orange.title": "사과와 귤 구입: ({apple} × {apple_num} + "
                              "{orange} × {orange_num}) × 소비세 {tax}",
        "sigmoid.title": "x = {x}에서의 Sigmoid: 노드 네 개, 또는 하나",
        "sigmoid.decomposed": "노드로 나눈 그래프: y = 1 / (1 + exp(-x))",
        "sigmoid.fused": "하나로 합친 Sigmoid 계층: dx = dout · y(1 − y)",
        "label.apple": "사과",
        "label.apple_num": "사과 개수",
        "label.orange": "귤",
        "label.orange_num": "귤 개수",
        "label.tax": "소비세",
        "label.apple_price": "사과 가격",
        "label.orange_price": "귤 가격",
        "label.all_price": "합계",
        "label.price": "지불 금액",
        "legend.above": "각 에지 위에 순전파 값",
        "legend.sep": ", ",
        "legend.grad": "아래에 기울기 ∂L/∂·",
        "tooltip.edge": "{src} → {dst}: 순전파 {value}",
        "tooltip.grad": ", 기울기 {grad}",
    },
    "ja": {
        "apple.title": "りんごの買い物: {apple} × {apple_num} × 消費税 {tax}",
        "apple_orange.title": "りんごとみかんの買い物: ({apple} × {apple_num} + "
                              "{orange} × {orange_num}) × 消費税 {tax}",
        "sigmoid.title": "x = {x} での Sigmoid: ノード4つ、または1つ",
        "sigmoid.decomposed": "ノードに分解したグラフ: y = 1 / (1 + exp(-x))",
        "sigmoid.fused": "1つにまとめたSigmoidレイヤ: dx = dout · y(1 − y)",
        "label.apple": "りんご",
        "label.apple_num": "りんごの個数",
        "label.orange": "みかん",
        "label.orange_num": "みかんの個数",
        "label.tax": "消費税",
        "label.apple_price": "りんごの価格",
        "label.orange_price": "みかんの価格",
        "label.all_price": "合計",
        "label.price": "支払金額",
        "legend.above": "各エッジの上に順伝播の値",
        "legend.sep": "、",
        "legend.grad": "下に勾配 ∂L/∂·",
        "tooltip.edge": "{src} → {dst}: 順伝播 {value}",
        "tooltip.grad": "、勾配 {grad}",
    },
}


def check_language(lang: str) -> str:
    """``lang`` if the pictures can be drawn in it; else an InputError naming the choices."""
    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r} for the graph pictures; choose from {', '.join(LANGUAGES)}")
    return lang


def caption(lang: str, key: str, **values: object) -> str:
    """The string ``key`` in language ``lang``, its ``{placeholders}`` filled from ``values``."""
    try:
        template = CAPTIONS[check_language(lang)][key]
    except KeyError:
        raise KeyError(f"no caption {key!r}; the captions are {sorted(CAPTIONS['en'])}") from None
    return template.format(**values)


def font(lang: str) -> str:
    """The Graphviz ``fontname`` for pictures in ``lang``."""
    return FONTS[check_language(lang)]
