"""The book's convnet weight files through `import-book`: every prediction on the real MNIST
test set equals a PyTorch forward pass with the same weights."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_close_for_dtype, unambiguous_argmax

import layerwise as lw
from layerwise.datasets import read_idx

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture(scope="module")
def mnist_images(request):
    from conftest import MNIST_T10K, require_fixture

    folder = require_fixture(MNIST_T10K)
    x = read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(10000, 1, 28, 28).astype(np.float32) / 255.0
    return x, read_idx(folder / "t10k-labels-idx1-ubyte.gz")


def torch_simple_convnet(p, x):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["W1"], p["b1"])), 2, 2).flatten(1)
    return F.relu(h @ p["W2"] + p["b2"]) @ p["W3"] + p["b3"]


def torch_deep_convnet(p, x):
    h = x
    for i, pad in enumerate([1, 1, 1, 2, 1, 1], start=1):
        h = F.relu(F.conv2d(h, p[f"W{i}"], p[f"b{i}"], padding=pad))
        if i % 2 == 0:
            h = F.max_pool2d(h, 2, 2)
    h = F.relu(h.flatten(1) @ p["W7"] + p["b7"]) * 0.5  # the book's test-time dropout scaling
    return (h @ p["W8"] + p["b8"]) * 0.5


# Additions behind one score: each layer's inner length (C·FH·FW of a convolution, the input
# size of an Affine), summed over the layers; the tolerance of the comparison grows with it.
SIMPLE_TERMS = 25 + 4320 + 100
DEEP_TERMS = 9 * (1 + 16 + 16 + 32 + 32 + 64) + 1024 + 50


@pytest.mark.parametrize(
    ("arch", "filename", "torch_net", "accuracy", "terms"),
    [
        ("simple-convnet", "params.pkl", torch_simple_convnet, 0.9600, SIMPLE_TERMS),
        ("deep-convnet", "deep_convnet_params.pkl", torch_deep_convnet, 0.9797, DEEP_TERMS),
    ],
)
def test_imported_book_convnet_matches_pytorch_to_the_last_prediction(
    tmp_path, book_weights_dir, mnist_images, arch, filename, torch_net, accuracy, terms
):
    model_file = tmp_path / f"{arch}.safetensors"
    result = subprocess.run(
        [sys.executable, "-m", "layerwise", "import-book", str(book_weights_dir / filename), "--arch", arch,
         "-o", str(model_file)], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    model = lw.load(model_file)
    assert model.dtype == np.float64  # the book's convnet files are float64; kept as they are
    x, t = mnist_images
    scores = np.concatenate([model.predict(x[i : i + 500]) for i in range(0, len(x), 500)])
    params = {k: torch.from_numpy(v) for k, v in lw.load_book_params(book_weights_dir / filename).items()}
    with torch.no_grad():
        torch_scores = torch_net(params, torch.from_numpy(x.astype(np.float64))).numpy()
    # Other kernels (PyTorch's convolutions, another batch split): the scores agree to rounding,
    # and every image's best class leads by far more than that, so the predictions are equal.
    assert_close_for_dtype(scores, torch_scores, np.float64, terms=terms)
    ours = unambiguous_argmax(scores, np.float64, terms=terms)
    assert np.array_equal(ours, unambiguous_argmax(torch_scores, np.float64, terms=terms))
    # The published files score below the figures printed in the book; PyTorch agrees.
    assert np.mean(ours == t) == accuracy
