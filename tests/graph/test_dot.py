"""Drawing (layerwise.graph.dot): SVG and PNG through Graphviz's `dot`, saving by extension,
Jupyter, and what happens without Graphviz or when it fails. SVG and PNG run `dot`: the tests
that do take the needs_dot fixture (skipped without it, failed under LAYERWISE_REQUIRE_FIXTURES=1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from graph_pictures import SVG_NS, svg_texts

from layerwise import errors
from layerwise import graph as G
from layerwise.errors import InputError
from layerwise.graph import dot as D


@pytest.mark.usefixtures("needs_dot")
def test_svg_parses_and_shows_values_above_and_gradients_in_red():
    texts = svg_texts(G.apple_graph().to_svg())
    shown = [t for t, _ in texts]
    for value in ("apple", "apple_num", "tax", "price", "×", "100", "220"):
        assert value in shown
    red = {t for t, fill in texts if fill == D.GRAD_COLOUR}
    assert {"2.2", "110", "200", "1.1", "1"} <= red
    assert "220" not in red and "100" not in red


@pytest.mark.usefixtures("needs_dot")
def test_svg_puts_gradients_below_values():
    root = ET.fromstring(G.apple_graph().to_svg())
    y = {}
    for t in root.iter(SVG_NS + "text"):
        y.setdefault("".join(t.itertext()).strip(), []).append(float(t.get("y")))
    # On the output arrow: 220 above, its gradient 1 below (SVG y grows downwards).
    assert min(y["1"]) > max(y["220"])


@pytest.mark.usefixtures("needs_dot")
def test_png_renders():
    png = G.sigmoid_graph(0.5).to_png(dpi=72)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_save_dot_text_and_refuse_unknown_formats(tmp_path):
    g = G.apple_orange_graph()
    assert g.save(tmp_path / "a.dot").read_text(encoding="utf-8") == g.to_dot()
    with pytest.raises(InputError, match="format"):
        g.save(tmp_path / "a.jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dot"]


@pytest.mark.usefixtures("needs_dot")
def test_save_svg_and_png_by_extension(tmp_path):
    g = G.apple_orange_graph()
    ET.parse(g.save(tmp_path / "a.svg"))
    assert g.save(tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.svg"]


@pytest.mark.usefixtures("needs_dot")
def test_jupyter_repr_is_svg():
    g = G.apple_graph()
    svg = g._repr_svg_()
    assert isinstance(svg, str) and "<svg" in svg
    bundle = g._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and "Graph(" in bundle["text/plain"]


def test_without_graphviz_dot_still_works_and_svg_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(D.shutil, "which", lambda name: None)
    g = G.apple_graph()
    g.save(tmp_path / "apple.dot")
    with pytest.raises(G.GraphvizNotFoundError, match="apt-get install graphviz"):
        g.to_svg()
    with pytest.raises(FileNotFoundError):
        g.save(tmp_path / "apple.svg")
    assert not (tmp_path / "apple.svg").exists()
    assert g._repr_svg_() is None
    bundle = g._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "digraph" in bundle["text/plain"]


@pytest.mark.usefixtures("needs_dot")
def test_graphviz_failure_is_reported():
    with pytest.raises(G.GraphvizError, match="syntax error"):
        G.render("digraph { a -> }", "svg")


def test_graphviz_errors_live_in_errors_and_are_importable_from_graph():
    assert G.GraphvizNotFoundError is errors.GraphvizNotFoundError
    assert G.GraphvizError is errors.GraphvizError
    assert issubclass(errors.GraphvizNotFoundError, errors.LayerwiseError | FileNotFoundError)
    assert issubclass(errors.GraphvizError, RuntimeError)
