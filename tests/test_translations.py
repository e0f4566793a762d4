"""The documents in Korean and Japanese keep up with the English ones.

- The book guides (docs/ko/book.md, docs/ja/book.md) have the English guide's blocks and its
  every inline name (`common.layers.Relu`, ...), so none can go stale (the tutorials are run
  by test_tutorial.py);
- README.ko.md and README.ja.md run as doctests, as README.md does, with its two commands;
- every document links the other languages at its top, and every relative link resolves;
- the Korean and Japanese graph pictures in docs/img are what `layerwise graph --lang` draws.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GRAPHVIZ_HINT, REPO, require_program
from test_tutorial import blocks_mismatch, read_blocks, svg_texts, texts_mismatch

LANGS = ("ko", "ja")
#: Each document and its translations, by language.
DOCS = {
    "README.md": {"ko": "README.ko.md", "ja": "README.ja.md"},
    "docs/tutorial.md": {"ko": "docs/ko/tutorial.md", "ja": "docs/ja/tutorial.md"},
    "docs/book.md": {"ko": "docs/ko/book.md", "ja": "docs/ja/book.md"},
}
ALL = [REPO / d for d in DOCS] + [REPO / t for ts in DOCS.values() for t in ts.values()]
LINK = re.compile(r"\]\(([^)\s]+)\)")
INLINE = re.compile(r"`([^`]+)`")


def _text(path: str | Path) -> str:
    return (REPO / path).read_text(encoding="utf-8")


def _prose(markdown: str) -> str:
    """The text outside fenced blocks."""
    return re.sub(r"^```.*?^```\s*$", "", markdown, flags=re.S | re.M)


@pytest.mark.parametrize("lang", LANGS)
def test_a_book_guide_has_the_english_blocks_and_names(lang: str):
    english, translated = _text("docs/book.md"), _text(DOCS["docs/book.md"][lang])
    mismatch = blocks_mismatch(read_blocks(english), read_blocks(translated))
    assert mismatch is None, f"docs/{lang}/book.md is stale: {mismatch}"
    # Every name the English guide maps (`common.layers.Relu`, `Trainer(...)`) is there too.
    missing = sorted(set(INLINE.findall(_prose(english))) - set(INLINE.findall(_prose(translated))))
    assert missing == [], f"docs/{lang}/book.md lacks these names of the English guide"


@pytest.mark.parametrize("lang", LANGS)
def test_a_readme_runs_and_gives_the_english_commands(lang: str):
    path = REPO / DOCS["README.md"][lang]
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
    # The two commands a new user runs, exactly as the English README gives them.
    english = [b.text for b in read_blocks(_text("README.md")) if b.lang == "sh"][:2]
    assert len(english) == 2
    shown = [b.text for b in read_blocks(_text(path)) if b.lang == "sh"]
    assert all(command in shown for command in english), shown


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_version_links_the_others_at_its_top(doc: str):
    versions = {"en": REPO / doc, **{lang: REPO / path for lang, path in DOCS[doc].items()}}
    for lang, path in versions.items():
        head = "\n".join(path.read_text(encoding="utf-8").splitlines()[:6])
        targets = {(path.parent / t).resolve() for t in LINK.findall(head)}
        others = {p.resolve() for other, p in versions.items() if other != lang}
        assert others <= targets, f"{path.relative_to(REPO)}: its top does not link {sorted(others - targets)}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path):
    broken = []
    for target in LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert broken == [], f"{path.relative_to(REPO)} links to missing files"


@pytest.mark.parametrize("lang", LANGS)
def test_the_committed_graph_picture_is_what_the_command_draws(lang: str, tmp_path: Path):
    require_program("dot", GRAPHVIZ_HINT)
    committed = REPO / "docs" / "img" / lang / "apple.svg"
    fresh = tmp_path / "apple.svg"
    subprocess.run([sys.executable, "-m", "layerwise", "graph", "apple", "--lang", lang, "-o", str(fresh)],
                   check=True, capture_output=True, timeout=60)
    assert texts_mismatch(svg_texts(committed), svg_texts(fresh)) is None
    # and a README in that language shows it
    assert f"docs/img/{lang}/apple.svg" in _text(DOCS["README.md"][lang])
