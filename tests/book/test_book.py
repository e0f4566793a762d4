"""``layerwise.book``: the book's module tree as pointers into layerwise.

Two kinds of tests:

- unit tests: every module imports, every pointer IS layerwise's own object, the adapters keep
  the book's signatures and defaults, star imports bring ``np``, the book's Trainer prints the
  book's lines, the weight files are written and read safely;
- chapter scripts (tests/book/scripts/, our own text in the style of chapters 3 to 8, importing
  only ``layerwise.book.*``, NumPy and matplotlib) run in a subprocess, and what they print is
  checked: gradient-check differences, rising accuracies, the Trainer's lines, files written.

Offline MNIST: ../shared holds only the real test set (t10k). The scripts get a data folder
(LAYERWISE_DATA) whose training files are links to the test files, and run through
scripts/run_offline.py, which tells layerwise, in that process only, that the training
files' checksums are the test files'. Train and test images are therefore the same 10,000
images (scripts that train on a slice test on a slice from the other end). BLAS runs on one
thread in the subprocesses: these small nets are no faster on two, and a machine busy with
other work makes a spinning second BLAS thread 10x slower.
"""

# ruff: noqa: NPY002 (np.random.seed: the book's global random state is what is tested)
from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import BOOK_WEIGHTS, MNIST_T10K, REPO, require_fixture

import layerwise
import layerwise.functional as F
from layerwise import models, nodes, optim
from layerwise.errors import InputError, ShapeError, UnsafePickleError

SCRIPTS = Path(__file__).parent / "scripts"
RUNNER = SCRIPTS / "run_offline.py"

BOOK_MODULES = [
    "layerwise.book",
    "layerwise.book.common",
    "layerwise.book.common.functions",
    "layerwise.book.common.gradient",
    "layerwise.book.common.layers",
    "layerwise.book.common.multi_layer_net",
    "layerwise.book.common.multi_layer_net_extend",
    "layerwise.book.common.optimizer",
    "layerwise.book.common.trainer",
    "layerwise.book.common.util",
    "layerwise.book.dataset",
    "layerwise.book.dataset.mnist",
    "layerwise.book.ch05",
    "layerwise.book.ch05.layer_naive",
    "layerwise.book.ch05.two_layer_net",
    "layerwise.book.ch07",
    "layerwise.book.ch07.simple_convnet",
    "layerwise.book.ch08",
    "layerwise.book.ch08.deep_convnet",
]

#: Book name -> layerwise's own object: the book's name IS that object.
POINTERS = {
    "common.layers.Relu": layerwise.Relu,
    "common.layers.Sigmoid": layerwise.Sigmoid,
    "common.layers.Affine": layerwise.Affine,
    "common.layers.SoftmaxWithLoss": layerwise.SoftmaxWithLoss,
    "common.layers.Convolution": layerwise.Convolution,
    "common.layers.sigmoid": F.sigmoid,
    "common.layers.softmax": F.softmax,
    "common.functions.identity_function": F.identity_function,
    "common.functions.step_function": F.step_function,
    "common.functions.sigmoid": F.sigmoid,
    "common.functions.sigmoid_grad": F.sigmoid_grad,
    "common.functions.relu": F.relu,
    "common.functions.relu_grad": F.relu_grad,
    "common.functions.softmax": F.softmax,
    "common.functions.sum_squared_error": F.sum_squared_error,
    "common.functions.cross_entropy_error": F.cross_entropy_error,
    "common.functions.softmax_loss": F.softmax_cross_entropy,
    "common.gradient.numerical_gradient": layerwise.gradcheck.numerical_gradient,
    "common.gradient._numerical_gradient_1d": layerwise.gradcheck.numerical_gradient,
    "common.multi_layer_net.MultiLayerNet": models.MultiLayerNet,
    "common.multi_layer_net_extend.MultiLayerNetExtend": models.MultiLayerNetExtend,
    "dataset.mnist.load_mnist": layerwise.load_mnist,
    "ch05.two_layer_net.TwoLayerNet": layerwise.TwoLayerNet,
    "ch05.layer_naive.MulLayer": nodes.Mul,
    "ch05.layer_naive.AddLayer": nodes.Add,
    "ch07.simple_convnet.SimpleConvNet": layerwise.SimpleConvNet,
    "ch08.deep_convnet.DeepConvNet": layerwise.DeepConvNet,
}

#: Book name -> the layerwise class it adapts (a subclass with the book's defaults).
ADAPTERS = {
    "common.layers.Dropout": layerwise.Dropout,
    "common.layers.Pooling": layerwise.Pooling,
    "common.layers.BatchNormalization": layerwise.BatchNormalization,
    "common.optimizer.SGD": optim.SGD,
    "common.optimizer.Momentum": optim.Momentum,
    "common.optimizer.Nesterov": optim.Nesterov,
    "common.optimizer.AdaGrad": optim.AdaGrad,
    "common.optimizer.RMSprop": optim.RMSprop,
    "common.optimizer.Adam": optim.Adam,
}


def book(name: str):
    """The object ``layerwise.book.<module>.<attr>`` for ``name`` = "<module>.<attr>"."""
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(f"layerwise.book.{module}"), attr)


# -- the module tree -----------------------------------------------------------------------------


@pytest.mark.parametrize("module", BOOK_MODULES)
def test_every_module_imports_and_has_a_docstring(module):
    mod = importlib.import_module(module)
    assert mod.__doc__ and mod.__doc__.strip()


def test_the_tree_has_no_module_this_test_does_not_know():
    root = Path(layerwise.__file__).parent / "book"
    found = set()
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent.parent).with_suffix("").parts
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert found == set(BOOK_MODULES)


@pytest.mark.parametrize("name", sorted(POINTERS))
def test_book_name_is_layerwise_own_object(name):
    assert book(name) is POINTERS[name]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_is_a_small_subclass_of_layerwise_class(name):
    cls = book(name)
    assert cls is not ADAPTERS[name] and issubclass(cls, ADAPTERS[name])
    assert cls.__name__ == ADAPTERS[name].__name__
    # Thin: the adapter defines nothing but the book's constructor/forward/update.
    own = {k for k in vars(cls) if not k.startswith("__")} - {"forward", "update"}
    assert own == set(), own


@pytest.mark.parametrize("module", [m for m in BOOK_MODULES if m.count(".") >= 3])
def test_star_import_brings_np_and_only_public_names(module):
    namespace: dict = {}
    exec(f"from {module} import *", namespace)
    namespace.pop("__builtins__")
    mod = importlib.import_module(module)
    assert set(namespace) == set(mod.__all__)
    if module != "layerwise.book.ch05.layer_naive":  # the book's layer_naive imports nothing
        assert namespace["np"] is np
    assert not [k for k in namespace if k.startswith("_") or k == "annotations"]


def test_common_layers_star_import_also_brings_functions_and_im2col_as_the_books():
    namespace: dict = {}
    exec("from layerwise.book.common.layers import *", namespace)
    for name in ("sigmoid", "softmax", "cross_entropy_error", "relu", "im2col", "col2im"):
        assert name in namespace


def test_docs_table_names_every_book_name():
    from layerwise.book.common import functions

    # common.layers re-exports these, as the book's does; the table lists them under their own module.
    re_exports = {"layerwise.book.common.layers": {*functions.__all__, "im2col", "col2im"}}
    text = (REPO / "docs" / "book.md").read_text()
    for module in BOOK_MODULES:
        mod = importlib.import_module(module)
        short = module.removeprefix("layerwise.book.")
        for name in getattr(mod, "__all__", []):
            if name != "np" and name not in re_exports.get(module, ()):
                assert f"`{short}.{name}`" in text, f"docs/book.md does not map {short}.{name}"


def test_docs_diff_is_the_whole_script_and_changes_only_imports():
    text = (REPO / "docs" / "book.md").read_text()
    diff = text.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()
    assert all(line[:1] in (" ", "+", "-") for line in diff)
    changed = [line[1:] for line in diff if line[:1] in "+-"]
    assert all(re.match(r"(import |from |sys\.path\.append)", line) for line in changed), changed
    after = "\n".join(line[1:] for line in diff if line[:1] in " +") + "\n"
    script = (SCRIPTS / "ch05_train_neuralnet.py").read_text()
    body = script.split("\nimport numpy as np\n", 1)[1]
    assert after == "import numpy as np\n" + body


# -- layers ------------------------------------------------------------------------------------


def test_affine_has_the_books_original_x_shape():
    from layerwise.book.common.layers import Affine

    layer = Affine(np.ones((12, 3)), np.zeros(3))
    x = np.ones((2, 3, 2, 2))
    layer.forward(x)
    assert layer.original_x_shape == (2, 3, 2, 2) and layer.x.shape == (2, 12)
    assert layer.backward(np.ones((2, 3))).shape == x.shape
    assert layer.dW.shape == (12, 3) and layer.db.shape == (3,)


def test_dropout_has_the_books_scaling_and_train_flg():
    from layerwise.book.common.layers import Dropout

    assert inspect.signature(Dropout).parameters["dropout_ratio"].default == 0.5
    np.random.seed(0)
    layer = Dropout(0.25)
    x = np.ones((4, 1000))
    out = layer.forward(x)  # train_flg=True by default: x · mask, no scaling
    assert set(np.unique(out)) == {0.0, 1.0}
    assert np.array_equal(out, x * layer.mask)
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 2.0)), 2.0 * layer.mask)
    np.testing.assert_array_equal(layer.forward(x, train_flg=False), x * 0.75)
    np.testing.assert_array_equal(layer.forward(x, False), x * 0.75)
    np.testing.assert_array_equal(layer.forward(x, train=False), x * 0.75)  # as a Sequential calls it
    # np.random.seed makes the masks repeatable, as in the book.
    np.random.seed(0)
    again = Dropout(0.25)
    assert np.array_equal(again.forward(x), out)


def test_pooling_has_the_books_default_stride():
    from layerwise.book.common.layers import Pooling

    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert Pooling(2, 2).forward(x).shape == (1, 1, 3, 3)  # stride 1, as the book
    np.testing.assert_array_equal(Pooling(2, 2, stride=2).forward(x)[0, 0], [[5, 7], [13, 15]])
    assert layerwise.Pooling(2, 2).stride == 2  # layerwise's own default is unchanged


def test_batch_normalization_normalises_every_pixel_as_the_book():
    from layerwise.book.common.layers import BatchNormalization

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 2, 3, 3)) * 3 + 1
    D = 2 * 3 * 3
    layer = BatchNormalization(np.ones(D), np.zeros(D))
    out = layer.forward(x, train_flg=True)
    flat = out.reshape(8, D)
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(flat.var(axis=0), 1, rtol=1e-5)
    assert layer.backward(np.ones_like(x)).shape == x.shape
    assert layer.dgamma.shape == (D,)
    eval_out = layer.forward(x, train_flg=False)
    np.testing.assert_array_equal(eval_out, layer.forward(x, train=False))
    # Inside a layerwise Sequential (which calls forward(x, train=...)) it works too.
    net = models.Sequential([layerwise.Flatten(), BatchNormalization(np.ones(D), np.zeros(D))])
    assert net.predict(x).shape == (8, D)


def test_book_layers_run_in_a_sequential_and_rebuild_from_config():
    from layerwise.book.common.layers import Convolution, Dropout, Pooling, Relu

    rng = np.random.default_rng(1)
    net = models.Sequential([Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2)), Relu(),
                             Pooling(2, 2, stride=2), Dropout(0.5), layerwise.Affine(rng.standard_normal((18, 3)),
                                                                                      np.zeros(3))])
    x = rng.standard_normal((4, 1, 8, 8))
    grads = net.gradient(x, np.array([0, 1, 2, 0]))
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    rebuilt = models.build_model(net.config(), dtype=np.float64)
    assert [type(la) for la in rebuilt] == [layerwise.Convolution, layerwise.Relu, layerwise.Pooling,
                                            layerwise.Dropout, layerwise.Affine]
    assert rebuilt[2].stride == 2 and rebuilt[3].mode == "book"


# -- functions ---------------------------------------------------------------------------------


def test_functions_give_the_books_formulas_and_keep_dtype():
    from layerwise.book.common import functions as bf

    x = np.array([-1000.0, -2.0, 0.0, 0.5, 1000.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bf.identity_function(x) is x
        np.testing.assert_array_equal(bf.step_function(x), [0, 0, 0, 1, 1])
        np.testing.assert_array_equal(bf.relu(x), [0, 0, 0, 0.5, 1000])
        np.testing.assert_array_equal(bf.relu_grad(x), [0, 0, 0, 1, 1])
        s = 1 / (1 + np.exp(-x[1:4].astype(np.float64)))
        np.testing.assert_allclose(bf.sigmoid_grad(x)[1:4], s * (1 - s), rtol=1e-6)
        assert bf.sigmoid_grad(x)[0] == 0 and bf.sigmoid_grad(x)[-1] == 0
        for f in (bf.step_function, bf.relu, bf.relu_grad, bf.sigmoid, bf.sigmoid_grad):
            assert f(x).dtype == np.float32, f.__name__
    y, t = np.array([0.1, 0.05, 0.6, 0.0, 0.25]), np.array([0, 0, 1, 0, 0])
    assert bf.sum_squared_error(y, t) == pytest.approx(0.5 * np.sum((y - t) ** 2))
    with pytest.raises(ShapeError):
        bf.sum_squared_error(y, t[:3])
    assert bf.cross_entropy_error(y, t) == pytest.approx(-np.log(0.6))
    scores = np.array([[0.3, 2.9, 4.0], [1.0, -1.0, 0.5]])
    labels = np.array([2, 0])
    assert bf.softmax_loss(scores, labels) == pytest.approx(bf.cross_entropy_error(bf.softmax(scores), labels))


def test_numerical_gradient_2d_takes_one_point_per_row():
    from layerwise.book.common.gradient import numerical_gradient, numerical_gradient_2d

    def f(p):
        return float(np.sum(p**2))

    points = np.array([[3.0, 4.0], [0.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(numerical_gradient_2d(f, points), 2 * points, atol=1e-8)
    np.testing.assert_allclose(numerical_gradient_2d(f, np.array([3.0, 4.0])), [6, 8], atol=1e-8)
    np.testing.assert_allclose(numerical_gradient(f, points), 2 * points, atol=1e-8)


# -- util ---------------------------------------------------------------------------------------


def test_smooth_curve_keeps_length_and_levels():
    from layerwise.book.common.util import smooth_curve

    np.testing.assert_allclose(smooth_curve(np.full(50, 2.5)), 2.5)
    rng = np.random.default_rng(0)
    noisy = 1.0 + rng.standard_normal(500)
    smooth = smooth_curve(noisy)
    assert smooth.shape == noisy.shape
    assert smooth.std() < noisy.std() / 2
    ramp = np.linspace(0, 1, 100)
    np.testing.assert_allclose(smooth_curve(ramp)[10:-10], ramp[10:-10], atol=1e-12)  # linear is kept


def test_shuffle_dataset_keeps_pairs_and_follows_np_random_seed():
    from layerwise.book.common.util import shuffle_dataset

    x = np.arange(40.0).reshape(10, 4)
    t = np.arange(10)
    np.random.seed(3)
    xs, ts = shuffle_dataset(x, t)
    assert sorted(ts.tolist()) == list(range(10)) and ts.tolist() != list(range(10))
    np.testing.assert_array_equal(xs, x[ts])
    np.random.seed(3)
    _, ts2 = shuffle_dataset(x, t)
    np.testing.assert_array_equal(ts, ts2)
    x4 = np.arange(10 * 1 * 2 * 2).reshape(10, 1, 2, 2)
    x4s, t4s = shuffle_dataset(x4, t)
    np.testing.assert_array_equal(x4s, x4[t4s])


def test_conv_output_size():
    from layerwise.book.common.util import conv_output_size

    assert conv_output_size(28, 5) == 24
    assert conv_output_size(28, 3, 1, 1) == 28
    assert conv_output_size(7, 3, 2, 0) == 3
    with pytest.raises(ShapeError, match="not an integer"):
        conv_output_size(28, 3, 2, 0)  # (28 - 3) / 2 + 1 = 13.5: the book returns 13.5


def test_im2col_col2im_book_signature_and_layout():
    from layerwise.book.common.util import col2im, im2col

    assert list(inspect.signature(im2col).parameters) == ["input_data", "filter_h", "filter_w", "stride", "pad"]
    assert list(inspect.signature(col2im).parameters) == ["col", "input_shape", "filter_h", "filter_w", "stride",
                                                          "pad"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6))
    col = im2col(input_data=x, filter_h=3, filter_w=2, stride=1, pad=1)
    OH, OW = 5, 7
    assert col.shape == (2 * OH * OW, 3 * 3 * 2)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n, i, j in [(0, 0, 0), (1, 2, 3), (1, 4, 6)]:
        # Row (n, i, j) is the window at (i, j), columns ordered (c, fh, fw) as the book's.
        np.testing.assert_array_equal(col[(n * OH + i) * OW + j], padded[n, :, i : i + 3, j : j + 2].ravel())
    c = rng.standard_normal(col.shape)
    back = col2im(c, x.shape, 3, 2, stride=1, pad=1)
    assert back.shape == x.shape
    assert np.sum(col * c) == pytest.approx(np.sum(x * back))  # the adjoint of im2col


# -- optimizers ----------------------------------------------------------------------------------


BOOK_OPTIMIZER_SIGNATURES = {
    "SGD": {"lr": 0.01},
    "Momentum": {"lr": 0.01, "momentum": 0.9},
    "Nesterov": {"lr": 0.01, "momentum": 0.9},
    "AdaGrad": {"lr": 0.01},
    "RMSprop": {"lr": 0.01, "decay_rate": 0.99},
    "Adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999},
}


@pytest.mark.parametrize("name", sorted(BOOK_OPTIMIZER_SIGNATURES))
def test_optimizer_has_the_books_constructor(name):
    cls = book(f"common.optimizer.{name}")
    positional = {p.name: p.default for p in inspect.signature(cls).parameters.values()
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}
    assert positional == BOOK_OPTIMIZER_SIGNATURES[name]
    opt = cls(*BOOK_OPTIMIZER_SIGNATURES[name].values())
    assert hasattr(opt, "update")


@pytest.mark.parametrize("name", sorted(BOOK_OPTIMIZER_SIGNATURES))
def test_optimizer_updates_arrays_in_place_like_layerwise(name):
    cls = book(f"common.optimizer.{name}")
    rng = np.random.default_rng(0)
    start = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4)}
    grads = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4)}
    ours = {k: v.copy() for k, v in start.items()}
    theirs = {k: v.copy() for k, v in start.items()}
    arrays = dict(ours)
    book_opt, lw_opt = cls(), getattr(optim, name)()
    for _ in range(3):
        book_opt.update(ours, grads)
        lw_opt.update(theirs, grads)
    for k in start:
        assert ours[k] is arrays[k]  # in place
        np.testing.assert_array_equal(ours[k], theirs[k])


def test_optimizers_take_python_numbers_as_the_books_naive_comparison():
    from layerwise.book.common.optimizer import SGD, AdaGrad, Adam, Momentum

    def df(x, y):
        return x / 10.0, 2.0 * y

    for opt in (SGD(lr=0.95), Momentum(lr=0.1), AdaGrad(lr=1.5), Adam(lr=0.3)):
        params = {"x": -7.0, "y": 2.0}
        grads = {"x": 0, "y": 0}
        history = []
        for _ in range(30):
            history.append(params["x"])
            grads["x"], grads["y"] = df(params["x"], params["y"])
            opt.update(params, grads)
        assert all(type(h) is float for h in history)
        assert len(set(history)) == 30  # a new number each step, as the book's rebinding gives
        assert abs(params["x"]) < 7 and abs(params["y"]) < 2
    sgd, p = SGD(lr=0.5), {"x": 3.0}
    sgd.update(p, {"x": 2.0})
    assert p["x"] == 2.0


# -- the Trainer ----------------------------------------------------------------------------------


class TinyBookNet:
    """A network written as the book's are (a plain class), to check the Trainer needs no layerwise net."""

    def __init__(self):
        self.params = {"W": np.zeros((4, 3)), "b": np.zeros(3)}
        self.evaluated: list[int] = []

    def _scores(self, x):
        return x @ self.params["W"] + self.params["b"]

    def loss(self, x, t):
        return F.softmax_cross_entropy(self._scores(x), t)

    def gradient(self, x, t):
        y = F.softmax(self._scores(x))
        y[np.arange(len(t)), t] -= 1
        y /= len(t)
        return {"W": x.T @ y, "b": y.sum(axis=0)}

    def accuracy(self, x, t):
        self.evaluated.append(len(x))
        return float(np.mean(self._scores(x).argmax(axis=1) == t))


def tiny_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)) * 0.3
    x[np.arange(n), t] += 2.0
    return x, t


EPOCH_LINE = re.compile(r"^=== epoch:(\d+), train acc:([0-9.e-]+), test acc:([0-9.e-]+) ===$")


def test_trainer_prints_the_books_lines_and_keeps_its_lists(capsys):
    from layerwise.book.common.trainer import Trainer

    x, t = tiny_data(300)
    xt, tt = tiny_data(120, seed=1)
    np.random.seed(0)
    net = TinyBookNet()
    trainer = Trainer(net, x, t, xt, tt, epochs=5, mini_batch_size=100, optimizer="SGD",
                      optimizer_param={"lr": 0.5}, evaluate_sample_num_per_epoch=50)
    trainer.train()
    lines = capsys.readouterr().out.splitlines()
    assert trainer.max_iter == 15 and trainer.iter_per_epoch == 3.0
    assert len([ln for ln in lines if ln.startswith("train loss:")]) == 15
    epochs = [EPOCH_LINE.match(ln) for ln in lines if ln.startswith("===") and "Final" not in ln]
    assert all(epochs) and [int(m.group(1)) for m in epochs] == [1, 2, 3, 4, 5]
    assert lines[-2] == "=============== Final Test Accuracy ==============="
    assert re.fullmatch(r"test acc:[0-9.]+", lines[-1])
    # The epoch line comes after the first step of each epoch, as in the book.
    assert lines[0].startswith("train loss:") and lines[1].startswith("=== epoch:1,")
    assert len(trainer.train_loss_list) == 15
    assert len(trainer.train_acc_list) == len(trainer.test_acc_list) == 5
    assert float(epochs[-1].group(2)) == trainer.train_acc_list[-1]
    assert trainer.train_loss_list[-1] < trainer.train_loss_list[0]
    assert trainer.test_acc_list[-1] > 0.9
    # evaluate_sample_num_per_epoch cuts both samples; the final accuracy uses the whole test set.
    assert net.evaluated == [50, 50] * 5 + [120]
    assert isinstance(trainer.optimizer, optim.SGD) and trainer.optimizer.lr == 0.5


def test_trainer_iterations_follow_the_books_float_arithmetic(capsys):
    from layerwise.book.common.trainer import Trainer

    x, t = tiny_data(250)
    trainer = Trainer(TinyBookNet(), x, t, x, t, epochs=4, mini_batch_size=100, verbose=False)
    trainer.train()
    assert capsys.readouterr().out == ""
    # iter_per_epoch = 2.5: int(4 * 2.5) = 10 steps, evaluations where i % 2.5 == 0: i = 0, 5.
    assert trainer.max_iter == 10 and len(trainer.train_loss_list) == 10
    assert len(trainer.train_acc_list) == 2


def test_trainer_is_repeatable_under_np_random_seed():
    from layerwise.book.common.trainer import Trainer

    x, t = tiny_data(300)
    runs = []
    for _ in range(2):
        np.random.seed(42)
        net = layerwise.TwoLayerNet(4, 8, 3)
        trainer = Trainer(net, x, t, x, t, epochs=2, mini_batch_size=50, optimizer="adam",
                          optimizer_param={"lr": 0.01}, verbose=False)
        trainer.train()
        runs.append(trainer.train_loss_list)
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("name", "cls"), [("sgd", optim.SGD), ("Momentum", optim.Momentum),
                                           ("NESTEROV", optim.Nesterov), ("adagrad", optim.AdaGrad),
                                           ("RMSprop", optim.RMSprop), ("Adam", optim.Adam)])
def test_trainer_optimizer_names_are_case_insensitive(name, cls):
    from layerwise.book.common.trainer import Trainer

    x, t = tiny_data(10)
    trainer = Trainer(TinyBookNet(), x, t, x, t, optimizer=name, optimizer_param={"lr": 0.1})
    assert type(trainer.optimizer) is cls


def test_trainer_refuses_an_unknown_optimizer_by_name():
    from layerwise.book.common.trainer import Trainer

    x, t = tiny_data(10)
    with pytest.raises(InputError, match="adam"):
        Trainer(TinyBookNet(), x, t, x, t, optimizer="adamw")


def test_trainer_asks_multilayernet_for_the_books_evaluation_mode_loss():
    from layerwise.book.common.multi_layer_net_extend import MultiLayerNetExtend
    from layerwise.book.common.trainer import Trainer

    x, t = tiny_data(200)
    np.random.seed(0)
    net = MultiLayerNetExtend(4, [10, 10], 3, use_batchnorm=True, use_dropout=True, dropout_ration=0.2)
    modes = []
    original = net.loss

    def spy(x, t, train_flg=True):
        modes.append(train_flg)
        return original(x, t, train_flg)

    net.loss = spy
    trainer = Trainer(net, x, t, x, t, epochs=2, mini_batch_size=50, verbose=False)
    trainer.train()
    # gradient() runs its own training-mode pass; the loss the Trainer records is evaluation mode.
    assert modes.count(False) == len(trainer.train_loss_list) == 8


# -- weight files -------------------------------------------------------------------------------


def test_save_params_writes_only_arrays_and_load_params_reads_them(tmp_path):
    from layerwise.book.ch07.simple_convnet import SimpleConvNet

    np.random.seed(0)
    net = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3, "pad": 0,
                                                            "stride": 1}, hidden_size=6, output_size=3)
    path = tmp_path / "params.pkl"
    net.save_params(str(path))

    class Recorder(pickle.Unpickler):  # our own file: safe to load, recording every global it names
        named: ClassVar[list[tuple[str, str]]] = []

        def find_class(self, module: str, name: str):
            self.named.append((module, name))
            return super().find_class(module, name)

    with open(path, "rb") as f:
        params = Recorder(f).load()
    assert Recorder.named and all(module.split(".")[0] == "numpy" for module, _ in Recorder.named), Recorder.named
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert all(type(v) is np.ndarray and v.dtype == np.float64 for v in params.values())
    other = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 4, "filter_size": 3, "pad": 0,
                                                              "stride": 1}, hidden_size=6, output_size=3)
    other.load_params(str(path))
    for key in params:
        np.testing.assert_array_equal(other.params[key], net.params[key])


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_load_params_refuses_a_pickle_that_would_run_code(tmp_path):
    from layerwise.book.ch05.two_layer_net import TwoLayerNet

    marker = tmp_path / "pwned"
    evil = tmp_path / "params.pkl"
    evil.write_bytes(pickle.dumps({"W1": _RunsCode(marker)}))
    net = TwoLayerNet(4, 3, 2)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(UnsafePickleError, match="system"):
        net.load_params(str(evil))
    assert not marker.exists()
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)


# -- MNIST as the book loads it (in this process) --------------------------------------------------


@pytest.fixture(scope="module")
def book_mnist_dir(tmp_path_factory) -> Path:
    """A data folder holding the real MNIST test files, also under the training files' names."""
    source = require_fixture(MNIST_T10K)
    folder = tmp_path_factory.mktemp("mnist")
    for kind in ("images-idx3", "labels-idx1"):
        real = source / f"t10k-{kind}-ubyte.gz"
        for name in (f"t10k-{kind}-ubyte.gz", f"train-{kind}-ubyte.gz"):
            try:
                os.symlink(real, folder / name)
            except OSError:  # no symlinks (Windows without the privilege)
                shutil.copyfile(real, folder / name)
    return folder


def test_load_mnist_returns_the_books_dtypes_and_shapes(book_mnist_dir, monkeypatch, tmp_path):
    from layerwise.book.dataset import mnist as book_mnist
    from layerwise.datasets import mnist as lw_mnist

    spec = lw_mnist.DATASETS["mnist"]
    md5 = {**spec.md5, "train-images-idx3-ubyte": spec.md5["t10k-images-idx3-ubyte"],
           "train-labels-idx1-ubyte": spec.md5["t10k-labels-idx1-ubyte"]}
    monkeypatch.setitem(lw_mnist.DATASETS, "mnist", dataclasses.replace(spec, md5=md5))
    monkeypatch.setenv("LAYERWISE_DATA", str(book_mnist_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LAYERWISE_MIRRORS", "http://127.0.0.1:9/")

    (x, t), _ = book_mnist.load_mnist()
    assert x.shape == (10000, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1
    assert t.shape == (10000,) and t.dtype == np.uint8
    (x, t), _ = book_mnist.load_mnist(normalize=False, flatten=False, one_hot_label=True)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert t.shape == (10000, 10) and t.dtype == np.float64 and np.all(t.sum(axis=1) == 1)
    paths = book_mnist.init_mnist()
    assert sorted(p.parent for p in paths.values()) == [book_mnist_dir] * 4


# -- the chapter scripts, as subprocesses -----------------------------------------------------------


@pytest.fixture(scope="module")
def script_env(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LAYERWISE_DATA", None)
    env.update({
        "MPLBACKEND": "Agg",
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")),
        "LAYERWISE_MIRRORS": "http://127.0.0.1:9/",  # never the network: a missing file fails at once
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    })
    return env


@pytest.fixture(scope="module")
def mnist_env(script_env, book_mnist_dir) -> dict[str, str]:
    return {**script_env, "LAYERWISE_DATA": str(book_mnist_dir)}


def run_script(name: str, cwd: Path, env: dict[str, str], *, mnist: bool = True,
               weights: tuple[str, ...] = ()) -> str:
    """Run tests/book/scripts/<name>.py in ``cwd`` (with MNIST through the offline runner);
    returns what it printed. The book's weight files named in ``weights`` are copied into ``cwd``."""
    for file in weights:
        shutil.copyfile(require_fixture(BOOK_WEIGHTS) / file, cwd / file)
    script = SCRIPTS / f"{name}.py"
    command = [sys.executable, str(RUNNER), str(script)] if mnist else [sys.executable, str(script)]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Warning" not in result.stderr, result.stderr
    return result.stdout


def vector(text: str) -> np.ndarray:
    """A NumPy-printed 1-D array, "[ 6.  8.]", as an array."""
    return np.array(text.strip(" []").split(), dtype=float)


def floats_after(prefix: str, out: str) -> list[float]:
    return [float(line[len(prefix):]) for line in out.splitlines() if line.startswith(prefix)]


def test_ch03_sample_weight_gives_the_books_accuracy(mnist_env, tmp_path):
    out = run_script("ch03_neuralnet_mnist", tmp_path, mnist_env, weights=("sample_weight.pkl",))
    assert "x: (10000, 784) float32 t: (10000,) uint8" in out
    assert out.splitlines()[-1] == "Accuracy:0.9352"  # the book's number


def test_ch04_numerical_gradient_and_gradient_descent(script_env, tmp_path):
    out = run_script("ch04_gradient", tmp_path, script_env, mnist=False)
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    np.testing.assert_allclose(vector(lines["grad at (3, 4)"]), [6, 8])
    np.testing.assert_allclose(vector(lines["grad at (0, 2)"]), [0, 4])
    assert np.all(np.abs(vector(lines["descent from (-3, 4)"])) < 1e-8)
    assert np.all(np.abs(vector(lines["lr=10"])) > 1e6)  # diverges, as the book shows
    np.testing.assert_allclose(vector(lines["lr=1e-10"]), [-3, 4], atol=1e-6)
    assert "grid gradient shape: (2, 81)" in out
    # Softmax sums to 1, so each row of dW sums to 0.
    assert np.all(np.abs(vector(lines["dW row sums"])) < 1e-9)
    assert (tmp_path / "gradient_2d.png").stat().st_size > 0


def test_ch05_buy_apple_orange_prints_the_books_numbers(script_env, tmp_path):
    out = run_script("ch05_buy_apple_orange", tmp_path, script_env, mnist=False)
    assert out.splitlines() == ["price: 715", "dApple: 2.2", "dApple_num: 110", "dOrange: 3.3000000000000003",
                                "dOrange_num: 165", "dTax: 650"]


def test_ch05_gradient_check_differences_are_round_off(mnist_env, tmp_path):
    out = run_script("ch05_gradient_check", tmp_path, mnist_env)
    diffs = dict(line.split(":") for line in out.splitlines())
    assert sorted(diffs) == ["W1", "W2", "b1", "b2"]
    for key, value in diffs.items():
        assert 0 < float(value) < 1e-9, (key, value)  # the book prints ~1e-10 .. 1e-13


def test_ch05_train_neuralnet_accuracy_rises(mnist_env, tmp_path):
    out = run_script("ch05_train_neuralnet", tmp_path, mnist_env)
    rows = [tuple(map(float, line.split())) for line in out.splitlines() if re.fullmatch(r"[0-9.]+ [0-9.]+", line)]
    assert len(rows) == 8  # 800 iterations, 100 per epoch
    assert rows[0][1] < 0.25 and rows[-1][1] > 0.85
    assert all(b[1] >= a[1] - 0.02 for a, b in itertools.pairwise(rows))
    first, last = (float(v) for v in re.search(r"first loss: (\S+) last loss: (\S+)", out).groups())
    assert first > 2.2 and last < 0.6


def test_ch06_optimizer_comparison(mnist_env, tmp_path):
    out = run_script("ch06_optimizer_compare", tmp_path, mnist_env)
    for key in ("SGD", "Momentum", "AdaGrad", "Adam"):
        losses = floats_after(f"{key}:", out)
        assert len(losses) == 4 and losses[-1] < losses[0] / 2, (key, losses)
    assert "smoothed length: 300" in out
    assert (tmp_path / "optimizer_compare.png").stat().st_size > 0


def test_ch06_batch_norm_learns_where_the_plain_net_does_not(mnist_env, tmp_path):
    out = run_script("ch06_batch_norm", tmp_path, mnist_env)
    plain, bn = (float(v) for v in re.search(r"final \| (\S+) - (\S+)", out).groups())
    assert bn > 0.8 and bn > plain + 0.3
    assert (tmp_path / "batch_norm.png").stat().st_size > 0


def test_ch06_weight_decay_accuracy_rises(mnist_env, tmp_path):
    out = run_script("ch06_overfit_weight_decay", tmp_path, mnist_env)
    rows = re.findall(r"^epoch:(\d+), train acc:(\S+), test acc:(\S+)$", out, re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(40))
    assert float(rows[-1][1]) > float(rows[0][1]) + 0.3
    assert (tmp_path / "overfit_weight_decay.png").stat().st_size > 0


def test_ch06_dropout_with_the_books_trainer(mnist_env, tmp_path):
    out = run_script("ch06_overfit_dropout", tmp_path, mnist_env)
    lines = out.splitlines()
    losses = floats_after("train loss:", out)
    assert len(losses) == 90  # int(30 epochs * 300 / 100)
    epochs = [EPOCH_LINE.match(ln) for ln in lines if ln.startswith("=== epoch")]
    assert all(epochs) and [int(m.group(1)) for m in epochs] == list(range(1, 31))
    assert lines[-2] == "=============== Final Test Accuracy ==============="
    assert lines[-1].startswith("test acc:")
    train_acc = [float(m.group(2)) for m in epochs]
    assert train_acc[-1] > train_acc[0] + 0.3
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert (tmp_path / "overfit_dropout.png").stat().st_size > 0


def test_ch06_hyperparameter_search(mnist_env, tmp_path):
    out = run_script("ch06_hyperparameter_optimization", tmp_path, mnist_env)
    assert "train loss" not in out  # verbose=False
    trials = floats_after("val acc:", out.replace(" | ", "\n"))
    assert len(trials) == 6 and all(0 <= v <= 1 for v in trials)
    best = [float(v) for v in re.findall(r"^Best-\d\(val acc:(\S+)\)", out, re.MULTILINE)]
    assert best == sorted(trials, reverse=True)[:4]
    assert best[0] > 0.15
    assert (tmp_path / "hyperparameter_optimization.png").stat().st_size > 0


def test_ch07_gradient_check_with_labels_shaped_1_1(script_env, tmp_path):
    out = run_script("ch07_gradient_check", tmp_path, script_env, mnist=False)
    diffs = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()}
    assert sorted(diffs) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    for key, value in diffs.items():
        # A larger difference means a ReLU input or a max-pooling near-tie within h = 1e-4 of its
        # corner (see the script): a new random draw, not a backpropagation bug.
        assert value < 1e-9, (key, value)


def test_ch07_train_convnet_and_params_round_trip(mnist_env, tmp_path):
    out = run_script("ch07_train_convnet", tmp_path, mnist_env)
    assert "x_train: (10000, 1, 28, 28) float32" in out
    assert len(floats_after("train loss:", out)) == 40
    epochs = [m for m in map(EPOCH_LINE.match, out.splitlines()) if m]
    assert [int(m.group(1)) for m in epochs] == [1, 2, 3, 4]
    assert float(epochs[-1].group(3)) > float(epochs[0].group(3))
    final = floats_after("test acc:", out)[-1]
    assert final > 0.5
    assert floats_after("loaded net test acc:", out) == [final]
    assert floats_after("fresh net test acc:", out)[0] < 0.3
    assert "Saved Network Parameters!" in out and "same as trained: True" in out
    params = layerwise.load_book_params(tmp_path / "params.pkl")
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"] and params["W1"].shape == (30, 1, 5, 5)
    assert (tmp_path / "train_convnet.png").stat().st_size > 0


def test_ch08_deep_convnet_with_the_books_weights(mnist_env, tmp_path):
    out = run_script("ch08_deep_convnet", tmp_path, mnist_env, weights=("deep_convnet_params.pkl",))
    lines = out.splitlines()
    float64_acc = float(lines[lines.index("calculate accuracy (float64) ... ") + 1])
    float16_acc = float(lines[lines.index("calculate accuracy (float16) ... ") + 1])
    assert float64_acc >= 0.97 and float16_acc >= 0.97
    assert int(lines[-1].rsplit(":", 1)[1]) <= 3
