"""The tutorial (docs/tutorial.md) and its translations (docs/ko/tutorial.md,
docs/ja/tutorial.md) are run, so none can go stale.

Its fenced blocks run in document order, in one scratch directory:

- ``python`` blocks are doctest examples (``>>>`` lines and the output they print), sharing one
  namespace from the first block to the last, as in a single interactive session;
- ``console`` blocks are shell sessions: each ``$ command`` line runs in the shell and must exit
  0, and the lines after it are its expected standard output. There ``...`` stands for any text
  (a whole line of ``...`` for any number of lines), runs of spaces match any run of spaces,
  integers must be equal, and numbers with a decimal point may differ by 1% (float32 training
  on another BLAS build rounds differently; a real change moves them much more);
- ``sh`` blocks are shown and never run (the MNIST download); ``text`` blocks are plain text.

Pictures: every ``img/NAME.svg`` the tutorial shows must be committed as ``docs/img/NAME.svg``,
parse as SVG, and be what the tutorial's own blocks draw today: the blocks write ``NAME.svg``
into the scratch directory, and its texts (edge values and gradients, node labels, caption)
must equal the committed ones, numbers within 1%. Layout coordinates are not compared, since
Graphviz versions place things differently. After changing a picture's code, run
``LAYERWISE_UPDATE_PICTURES=1 python -m pytest tests/test_tutorial.py`` to copy the new
pictures into docs/img, then look at them and commit them.

Translations: a translated tutorial has the English one's blocks, the same text in the same
order (only the prose around them is translated), and is run the same way; its pictures are the
English ones (``../img/NAME.svg``).
"""

from __future__ import annotations

import doctest
import io
import math
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import GRAPHVIZ_HINT, REPO, require_fixture, require_program

TUTORIAL = REPO / "docs" / "tutorial.md"
TRANSLATIONS = {"ko": REPO / "docs" / "ko" / "tutorial.md", "ja": REPO / "docs" / "ja" / "tutorial.md"}
TUTORIALS = {"en": TUTORIAL, **TRANSLATIONS}
PICTURES = REPO / "docs" / "img"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
RUN_LANGS = {"python", "console"}
SHOWN_LANGS = {"sh", "text"}
REL_TOL = 0.01
COMMAND_TIMEOUT = 300  # seconds; the slowest command (one Fashion-MNIST epoch) takes ~5 s


# -- reading the tutorial ---------------------------------------------------------------------

@dataclass
class Block:
    lang: str
    line: int  # 1-based line number of the block's first content line
    text: str


FENCE = re.compile(r"^```\s*([\w-]*)\s*$")


def read_blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"tutorial.md:{i + 1}: code block never closed")
        blocks.append(Block(m[1].lower(), start + 1, "\n".join(lines[start:end]) + "\n"))
        i = end + 1
    return blocks


def picture_names(markdown: str) -> list[str]:
    """Basenames of the SVG pictures a Markdown text shows from img/."""
    return re.findall(r"!\[[^\]]*\]\((?:docs/|\.\./)?img/([\w.-]+\.svg)\)", markdown)


@dataclass
class Command:
    line: int
    text: str
    expected: str


def read_commands(block: Block) -> list[Command]:
    """``$ command`` lines (continued with a trailing backslash) and the output shown after each."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if lines[i].strip():
                raise AssertionError(f"tutorial.md:{block.line + i}: console output before any $ command")
            i += 1
            continue
        line = block.line + i
        text = lines[i][2:]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1] + " " + lines[i].strip()
        i += 1
        out = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        commands.append(Command(line, text, "\n".join(out).strip()))
    return commands


# -- comparing outputs --------------------------------------------------------------------------

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _line_pattern(line: str, shown: list[str]) -> str:
    """A regex for one shown line: integers literal, decimals captured (their values are
    compared afterwards, within REL_TOL), ``...`` any text within the line."""
    out = []
    for piece in re.split(r"(\.\.\.)", line):
        if piece == "...":
            out.append(r"[^\n]*?")
            continue
        for k, token in enumerate(re.split(f"({NUMBER.pattern})", piece)):
            if k % 2 == 0:
                out.append(r"[ \t]+".join(re.escape(part) for part in re.split(r"\s+", token)))
            elif re.search(r"[.eE]", token):
                shown.append(token)
                out.append(f"({NUMBER.pattern})")
            else:
                out.append(re.escape(token))  # a count, an epoch, a shape: exact
    return "".join(out)


def output_mismatch(expected: str, actual: str) -> str | None:
    """None when ``actual`` matches the shown ``expected`` output, else why not.

    Lines are compared with their surrounding spaces stripped; inside a line ``...`` matches
    any text and a run of spaces any run of spaces; a line that is only ``...`` matches any
    number of lines. Integers must be equal; decimals may differ by REL_TOL.
    """

    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.strip().splitlines()]

    shown: list[str] = []
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == "..." else _line_pattern(line, shown) + r"\n"
        for line in lines(expected)
    )
    printed = "".join(line + "\n" for line in lines(actual))
    m = re.fullmatch(pattern, printed)
    if m is None:
        return "the output does not have the shown text"
    for want, got in zip(shown, m.groups(), strict=True):
        if not math.isclose(float(want), float(got), rel_tol=REL_TOL, abs_tol=1e-12):
            return f"shown {want}, got {got}"
    return None


def svg_texts(path: Path) -> list[str]:
    """The texts of an SVG picture in document order (raises if it is not an SVG document)."""
    root = ET.parse(path).getroot()
    assert root.tag.rsplit("}", 1)[-1] == "svg", f"{path.name}: root element is {root.tag}, not svg"
    return [" ".join("".join(el.itertext()).split()) for el in root.iter() if el.tag.endswith("}text")]


def texts_mismatch(committed: list[str], fresh: list[str]) -> str | None:
    """None when two pictures say the same things (numbers within 1%), else the first difference."""
    if len(committed) != len(fresh):
        return f"{len(committed)} texts committed, {len(fresh)} drawn now"
    for want, got in zip(committed, fresh, strict=True):
        if output_mismatch(want.replace("...", ". . ."), got) is not None:
            return f"committed {want!r}, drawn now {got!r}"
    return None


# -- running it -------------------------------------------------------------------------------------

@dataclass
class Run:
    workdir: Path
    doc: Path
    examples: int = 0
    commands: int = 0
    python_failures: list[str] = field(default_factory=list)
    command_failures: list[str] = field(default_factory=list)


def _environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The `layerwise` script sits beside this Python; a private cache keeps the user's out of it.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["XDG_CACHE_HOME"] = str(workdir / ".cache")
    env.pop("LAYERWISE_DATA", None)
    env["MPLBACKEND"] = "Agg"
    return env


def _where(run: Run, line: int) -> str:
    return f"{run.doc.relative_to(REPO)}:{line}"


def _run_python(block: Block, globs: dict, run: Run) -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, globs, _where(run, block.line), str(run.doc), block.line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    result = runner.run(test, out=report.write, clear_globs=False)
    globs.update(test.globs)  # DocTest works on a copy: carry the names on to the next block
    run.examples += result.attempted
    if result.failed:
        run.python_failures.append(report.getvalue())


def _run_console(block: Block, env: dict[str, str], run: Run) -> None:
    for command in read_commands(block):
        run.commands += 1
        proc = subprocess.run(command.text, shell=True, cwd=run.workdir, env=env, capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, check=False)
        where = f"{_where(run, command.line)}: $ {command.text}"
        if proc.returncode != 0:
            run.command_failures.append(f"{where}\nexit {proc.returncode}\n{proc.stdout}{proc.stderr}")
            continue
        why = output_mismatch(command.expected, proc.stdout)
        if why is not None:
            run.command_failures.append(
                f"{where}\n{why}\n--- shown\n{command.expected}\n--- printed\n{proc.stdout}{proc.stderr}"
            )


@pytest.fixture(scope="module", params=list(TUTORIALS))
def tutorial_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    require_fixture(FASHION_MNIST)  # the tutorial trains on it; CI installs the Debian package
    require_program("dot", GRAPHVIZ_HINT)  # and draws its pictures with Graphviz
    run = Run(tmp_path_factory.mktemp(f"tutorial-{request.param}"), TUTORIALS[request.param])
    env = _environment(run.workdir)
    globs: dict = {"__name__": "tutorial"}
    cwd = os.getcwd()
    os.chdir(run.workdir)  # pictures the Python blocks save land beside the commands' ones
    try:
        for block in read_blocks(run.doc.read_text(encoding="utf-8")):
            if block.lang == "python":
                _run_python(block, globs, run)
            elif block.lang == "console":
                _run_console(block, env, run)
    finally:
        os.chdir(cwd)
    return run


# -- the tests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", list(TRANSLATIONS))
def test_a_translation_has_the_english_blocks_in_the_same_order(lang: str):
    english = read_blocks(TUTORIAL.read_text(encoding="utf-8"))
    translated = read_blocks(TRANSLATIONS[lang].read_text(encoding="utf-8"))
    mismatch = blocks_mismatch(english, translated)
    assert mismatch is None, f"docs/{lang}/tutorial.md is stale: {mismatch}"


def blocks_mismatch(english: list[Block], translated: list[Block]) -> str | None:
    """None when a translation has exactly the English blocks, else the first difference."""
    for k, (en, tr) in enumerate(zip(english, translated, strict=False), 1):
        if (en.lang, en.text) != (tr.lang, tr.text):
            return (f"block {k} (line {tr.line}) differs from the English one at line {en.line}:\n"
                    f"--- English ({en.lang})\n{en.text}\n--- translation ({tr.lang})\n{tr.text}")
    if len(english) != len(translated):
        return f"{len(translated)} blocks, the English has {len(english)}"
    return None


def test_every_block_is_run_or_plainly_shown_only():
    blocks = read_blocks(TUTORIAL.read_text(encoding="utf-8"))
    for block in blocks:
        where = f"tutorial.md:{block.line}"
        assert block.lang in RUN_LANGS | SHOWN_LANGS, f"{where}: unknown block language {block.lang!r}"
        if block.lang == "python":
            assert ">>> " in block.text, f"{where}: a python block without >>> examples would never run"
        if block.lang == "console":
            assert read_commands(block), f"{where}: a console block without a $ command"
    assert sum(b.lang == "python" for b in blocks) >= 8
    assert sum(b.lang == "console" for b in blocks) >= 3


def test_python_examples_print_what_the_tutorial_shows(tutorial_run: Run):
    assert not tutorial_run.python_failures, "\n".join(tutorial_run.python_failures)
    assert tutorial_run.examples >= 50


def test_commands_succeed_and_print_what_the_tutorial_shows(tutorial_run: Run):
    assert not tutorial_run.command_failures, "\n\n".join(tutorial_run.command_failures)
    assert tutorial_run.commands >= 6


def test_pictures_are_committed_and_up_to_date(tutorial_run: Run):
    names = picture_names(tutorial_run.doc.read_text(encoding="utf-8"))
    assert len(names) >= 6
    update = os.environ.get("LAYERWISE_UPDATE_PICTURES") == "1"
    problems = []
    for name in names:
        drawn = list(tutorial_run.workdir.rglob(name))
        if len(drawn) != 1:
            problems.append(f"{name}: the tutorial's blocks draw it {len(drawn)} times, not once")
            continue
        if update and tutorial_run.doc == TUTORIAL:
            shutil.copyfile(drawn[0], PICTURES / name)
        committed = PICTURES / name
        if not committed.is_file():
            problems.append(f"{name}: not committed under docs/img")
            continue
        why = texts_mismatch(svg_texts(committed), svg_texts(drawn[0]))
        if why is not None:
            problems.append(f"{name} is stale: {why} (see this module's doc to update it)")
    assert not problems, "\n".join(problems)


def test_every_committed_picture_is_shown_somewhere():
    shown = set()
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        shown.update(picture_names(doc.read_text(encoding="utf-8")))
    orphans = sorted(p.name for p in PICTURES.glob("*.svg") if p.name not in shown)
    assert not orphans, f"pictures in docs/img that no document shows (stale?): {orphans}"


# -- the checker itself: it must be able to fail ---------------------------------------------------------

@pytest.mark.parametrize(
    ("shown", "printed", "ok"),
    [
        ("test accuracy 0.9803 after 20 epochs", "test accuracy 0.9803 after 20 epochs", True),
        ("test accuracy 0.9803 after 20 epochs", "test accuracy 0.9750 after 20 epochs", True),  # < 1%
        ("test accuracy 0.9803 after 20 epochs", "test accuracy 0.9500 after 20 epochs", False),
        ("test accuracy 0.9803 after 20 epochs", "test accuracy 0.9803 after 19 epochs", False),
        ("test accuracy 0.9803 after 20 epochs", "test accuracy 0.9803 after 20  epochs", True),
        ("loss 2.0453  ...", "loss 2.0453  0.01s", True),
        ("epoch 1/2 loss 2.0 ...\nend", "epoch 1/2 loss 2.0 0.1s\nepoch 2/2 loss 1.0 0.1s\nend", False),
        ("epoch 1/2 loss 2.0\n...\nepoch 2/2 loss 1.0", "epoch 1/2 loss 2.0\nepoch 2/2 loss 1.0", True),
        ("a 1\n...\nz 26", "a 1\nb 2\nc 3\nz 26", True),
        ("a 1\n...\nz 26", "a 1\nb 2\nc 3\nz 25", False),
        ("wrote apple.svg", "wrote pear.svg", False),
        ("wrote apple.svg", "wrote apple.svg\nand more", False),
    ],
)
def test_output_matcher(shown: str, printed: str, ok: bool):
    assert (output_mismatch(shown, printed) is None) is ok


def test_picture_comparison_sees_a_changed_gradient():
    same = ["apple", "100", "2.2", "(1, 3) [0.212 0.3162 -0.5282]"]
    assert texts_mismatch(same, list(same)) is None
    assert texts_mismatch(same, ["apple", "100", "2.3", same[3]]) is not None
    assert texts_mismatch(same, [*same[:3], "(1, 3) [0.212 0.3162 0.5282]"]) is not None
    assert texts_mismatch(same, same[:3]) is not None


def test_a_changed_output_in_a_translation_is_seen():
    english = [Block("python", 3, ">>> 1 + 1\n2\n"), Block("console", 9, "$ ls\n")]
    assert blocks_mismatch(english, list(english)) is None
    assert "block 1" in blocks_mismatch(english, [Block("python", 4, ">>> 1 + 1\n3\n"), english[1]])
    assert "1 blocks" in blocks_mismatch(english, english[:1])
    assert "block 2" in blocks_mismatch(english, [english[0], Block("text", 9, "$ ls\n")])


def test_console_blocks_are_split_into_commands_and_their_output():
    block = Block("console", 10, "$ layerwise train \\\n    --epochs 1\nline 1\nline 2\n$ ls\n")
    commands = read_commands(block)
    assert [(c.line, c.text, c.expected) for c in commands] == [
        (10, "layerwise train  --epochs 1", "line 1\nline 2"),
        (14, "ls", ""),
    ]
