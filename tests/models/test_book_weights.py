"""The book's published weight files: loaded safely, they give the book's numbers."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import unambiguous_argmax

import layerwise as lw
from layerwise.datasets import read_idx
from layerwise.models import book_model

SAMPLE_TERMS = 784 + 50 + 100  # additions behind one score of the 784-50-100-10 net


@pytest.fixture(scope="module")
def mnist_test(request):
    from conftest import MNIST_T10K, require_fixture

    folder = require_fixture(MNIST_T10K)
    x = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    t = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    return x, t


def test_sample_weight_gives_the_books_accuracy(book_weights_dir, mnist_test):
    x, t = mnist_test
    # The book's load_mnist(normalize=True): x.astype(float32) / 255.0
    x = x.reshape(len(x), -1).astype(np.float32) / 255.0
    model = book_model("sample-weight", lw.load_book_params(book_weights_dir / "sample_weight.pkl"))
    assert model.dtype == np.float32
    assert [type(la).__name__ for la in model.layers] == ["Affine", "Sigmoid", "Affine", "Sigmoid", "Affine"]
    # Every image's best class leads by more than rounding (another BLAS kernel) could move the
    # scores, so the accuracy is the same on any machine and is compared exactly.
    unambiguous_argmax(model.predict(x), model.dtype, terms=SAMPLE_TERMS)
    assert model.accuracy(x, t) == 0.9352


def test_import_book_command_round_trip(tmp_path, book_weights_dir, mnist_test):
    out = tmp_path / "sample.safetensors"
    result = subprocess.run(
        [sys.executable, "-m", "layerwise", "import-book", str(book_weights_dir / "sample_weight.pkl"),
         "--arch", "sample-weight", "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "W1, b1, W2, b2, W3, b3" in result.stdout
    model = lw.load(out)
    x, t = mnist_test
    assert model.accuracy(x.reshape(len(x), -1).astype(np.float32) / 255.0, t) == 0.9352


def test_import_book_wrong_architecture_is_named(tmp_path, book_weights_dir):
    result = subprocess.run(
        [sys.executable, "-m", "layerwise", "import-book", str(book_weights_dir / "sample_weight.pkl"),
         "--arch", "deep-convnet", "-o", str(tmp_path / "m.safetensors")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "deep-convnet" in result.stderr and "W7" in result.stderr
    assert not (tmp_path / "m.safetensors").exists()
