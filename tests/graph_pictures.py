"""Reading the graph drawings back, for the tests in this folder: the arrows of DOT text with
their values and gradients, the texts of an SVG, and running ``layerwise graph``."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

SVG_NS = "{http://www.w3.org/2000/svg}"


def dot_edges(dot: str) -> list[tuple[str, str, str, str]]:
    """(from, to, value above, gradient below) for every drawn arrow, read from the DOT text.

    Plain nodes give their label; an edge's label node gives the two cells of its table; the
    two DOT edges through that label node give its ends."""
    labels = dict(re.findall(r"^\s*(\w+) \[shape=\w+, (?:fontsize=\d+, )?label=\"(.*?)\"\];", dot, re.M))
    cells = {
        m[0]: (html.unescape(m[1]), html.unescape(m[2]))
        for m in re.findall(
            r'^\s*(e\d+) \[.*?<TR><TD>(.*?)</TD></TR><HR/><TR><TD><FONT COLOR="[^"]+">(.*?)</FONT>',
            dot, re.M,
        )
    }
    tails = dict((e, t) for t, e in re.findall(r"^\s*(\w+) -> (e\d+):w", dot, re.M))
    heads = dict(re.findall(r"^\s*(e\d+):e -> (\w+);", dot, re.M))
    assert set(cells) == set(tails) == set(heads) and cells
    return [
        (labels[tails[e]], labels[heads[e]], *(s.replace("\xa0", "").strip() for s in cells[e]))
        for e in sorted(cells, key=lambda e: int(e[1:]))
    ]


def svg_texts(svg: str) -> list[tuple[str, str | None]]:
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    return [("".join(t.itertext()).strip(), t.get("fill")) for t in root.iter(SVG_NS + "text")]


def cli(*args, check=True, env=None):
    return subprocess.run([sys.executable, "-m", "layerwise", "graph", *args], capture_output=True,
                          text=True, check=check, timeout=120, env=env)
