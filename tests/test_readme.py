"""The README's examples are run, so they can never go stale."""

import doctest

from conftest import REPO


def test_readme_examples_run():
    result = doctest.testfile(str(REPO / "README.md"), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0
