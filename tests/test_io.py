"""Files: atomic writes, the book's pickles read safely, layerwise model files and checkpoints."""

from __future__ import annotations

import collections
import json
import os
import pickle
import stat
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from layerwise.errors import FormatError, InputError, UnsafePickleError
from layerwise.io import (
    atomic_write,
    atomic_writer,
    load,
    load_book_params,
    load_checkpoint,
    read_metadata,
    save,
)
from layerwise.io import files as io_files
from layerwise.layers import Affine, ReLU, Sigmoid
from layerwise.models import MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet
from layerwise.optim import Adam, Momentum, make_optimizer

# -- atomic writes -----------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "f.bin"
    assert atomic_write(target, b"one") == target
    assert target.read_bytes() == b"one"
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert leftovers(tmp_path) == []


def test_atomic_writer_exception_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="disk full"), atomic_writer(target) as f:
        f.write(b"half of the new con")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_atomic_write_failing_rename_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"previous")

    def broken_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(io_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_atomic_write_permissions(tmp_path):
    target = tmp_path / "new.bin"
    atomic_write(target, b"x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0o600
    target.chmod(0o640)
    atomic_write(target, b"y")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an existing file keeps its mode


# -- the book's pickles ------------------------------------------------------------------

BOOK_FILES = {
    "sample_weight.pkl": {
        "W1": ((784, 50), "float32"),
        "b1": ((50,), "float32"),
        "W2": ((50, 100), "float32"),
        "b2": ((100,), "float32"),
        "W3": ((100, 10), "float32"),
        "b3": ((10,), "float32"),
    },
    "params.pkl": {
        "W1": ((30, 1, 5, 5), "float64"),
        "b1": ((30,), "float64"),
        "W2": ((4320, 100), "float64"),
        "b2": ((100,), "float64"),
        "W3": ((100, 10), "float64"),
        "b3": ((10,), "float64"),
    },
    "deep_convnet_params.pkl": {
        **{f"W{i}": (s, "float64") for i, s in enumerate(
            [(16, 1, 3, 3), (16, 16, 3, 3), (32, 16, 3, 3), (32, 32, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3),
             (1024, 50), (50, 10)], start=1)},
        **{f"b{i}": ((n,), "float64") for i, n in enumerate([16, 16, 32, 32, 64, 64, 50, 10], start=1)},
    },
}


class _TrustingUnpickler(pickle.Unpickler):
    """A plain unpickler (the files are the book's own) mapping numpy.core to numpy._core."""

    def find_class(self, module, name):
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        return super().find_class(module, name)


@pytest.mark.parametrize("filename", BOOK_FILES)
def test_book_weight_files(book_weights_dir, filename):
    path = book_weights_dir / filename
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning about numpy.core
        params = load_book_params(path)
    assert {k: (v.shape, v.dtype.name) for k, v in params.items()} == BOOK_FILES[filename]
    with path.open("rb") as f:
        reference = _TrustingUnpickler(f).load()
    for k, v in params.items():
        assert type(v) is np.ndarray and np.array_equal(v, reference[k])
        assert np.all(np.isfinite(v))


def test_book_sample_weight_loads_into_a_sigmoid_net(book_weights_dir):
    params = load_book_params(book_weights_dir / "sample_weight.pkl")
    net = Sequential(
        [Affine(params["W1"], params["b1"]), Sigmoid(), Affine(params["W2"], params["b2"]), Sigmoid(),
         Affine(params["W3"], params["b3"])]
    )
    assert net.state_dict().keys() == params.keys()
    assert net.predict(np.zeros((2, 784), np.float32)).shape == (2, 10)


def test_book_convnet_params_fit_the_book_nets(book_weights_dir):
    params = load_book_params(book_weights_dir / "params.pkl")
    net = SimpleConvNet(dtype=np.float64)
    net.load_state_dict(params)
    assert all(np.array_equal(net.params[k], params[k]) for k in params)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_modern_pickles_of_arrays_load(tmp_path, protocol):
    rng = np.random.default_rng(0)
    data = collections.OrderedDict(
        W=rng.standard_normal((3, 4)).astype(np.float32),
        F=np.asfortranarray(rng.standard_normal((2, 3))),
        h=np.arange(4, dtype=np.float16),
        i=np.arange(3, dtype=np.int64),
    )
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = load_book_params(path)
    assert list(loaded) == list(data)
    for k in data:
        assert loaded[k].dtype == data[k].dtype and np.array_equal(loaded[k], data[k])


class Call:
    """A pickle payload: unpickling it calls ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def payloads(marker: Path):
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": (Call(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        "eval": (Call(eval, code), "builtins.eval"),
        "exec": (Call(exec, code), "builtins.exec"),
        "subprocess.Popen": (Call(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
        "numpy.save": (Call(np.save, str(marker), np.zeros(1)), "numpy.save"),
        "numpy.load": (Call(np.load, str(marker)), "numpy.load"),
        "getattr": (Call(getattr, collections.OrderedDict, "fromkeys"), "builtins.getattr"),
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize(
    "kind", ["os.system", "eval", "exec", "subprocess.Popen", "numpy.save", "numpy.load", "getattr"]
)
def test_unsafe_pickles_refused_before_running(tmp_path, kind, protocol):
    marker = tmp_path / "pwned"
    payload, global_name = payloads(marker)[kind]
    # The payload hides among genuine arrays, as it would in a doctored weight file.
    path = tmp_path / "evil.pkl"
    # fix_imports=False: protocol 2 would otherwise write Python 2 names (__builtin__, commands).
    path.write_bytes(pickle.dumps({"W1": np.ones((2, 2)), "b1": payload}, protocol=protocol, fix_imports=False))
    with pytest.raises(UnsafePickleError) as info:
        load_book_params(path)
    message = str(info.value)
    assert global_name in message and str(path) in message
    assert not marker.exists() and not Path(str(marker) + ".npy").exists()


def test_the_crafted_payload_is_live(tmp_path):
    """Control for the test above: the same payload does run under a plain unpickler."""
    marker = tmp_path / "pwned"
    payload, _ = payloads(marker)["eval"]
    pickle.loads(pickle.dumps({"b1": payload}))
    assert marker.exists()


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"cos\nsystem\n(S'touch {m}'\ntR.", "os.system"),
        (b"cbuiltins\nexec\n(S'open(\"{m}\", \"w\").close()'\ntR.", "builtins.exec"),
        (b"cnumpy.testing\nassert_equal\n(I1\nI2\ntR.", "numpy.testing.assert_equal"),
        (b"c__builtin__\neval\n(S'1'\ntR.", "__builtin__.eval"),
        (b"ccopyreg\n_reconstructor\n(cos\nsystem\nI0\nNtR.", "copyreg._reconstructor"),
    ],
)
def test_hand_written_protocol_0_payloads(tmp_path, raw, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(raw.replace(b"{m}", str(marker).encode()))
    with pytest.raises(UnsafePickleError, match=name.replace(".", r"\.")):
        load_book_params(path)
    assert not marker.exists()


def test_admitted_codec_with_another_encoding_is_refused(tmp_path):
    path = tmp_path / "zip.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vx\nVzlib_codec\ntR.")
    with pytest.raises(UnsafePickleError, match=r"zip\.pkl.*zlib_codec"):
        load_book_params(path)


def test_malformed_pickles_are_format_errors(tmp_path, book_weights_dir):
    cases = {
        "empty.pkl": b"",
        "text.pkl": b"this is not a pickle at all",
        "truncated.pkl": (book_weights_dir / "sample_weight.pkl").read_bytes()[:100_000],
        "list.pkl": pickle.dumps([np.ones(2)]),
        "intkey.pkl": pickle.dumps({1: np.ones(2)}),
        "scalar.pkl": pickle.dumps({"W": 1.5}),
        "object.pkl": pickle.dumps({"W": np.array([1, "a"], dtype=object)}),
        "emptydict.pkl": pickle.dumps({}),
        "trailing.pkl": pickle.dumps({"W": np.ones(2)}) + b"junk",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(FormatError) as info:
            load_book_params(path)
        assert str(path) in str(info.value), name
        assert not isinstance(info.value, UnsafePickleError), name


# -- model files -------------------------------------------------------------------------


def batch(n=8, d=4, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, classes, n)


def assert_same_model(a, b):
    assert type(a) is type(b) and a.config() == b.config() and a.dtype == b.dtype
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_layer_net_round_trip(tmp_path, dtype):
    net = TwoLayerNet(4, 5, 3, seed=1, dtype=dtype)
    path = save(net, tmp_path / "net.safetensors")
    assert path == tmp_path / "net.safetensors"
    loaded = load(path)
    assert_same_model(net, loaded)
    x, _ = batch(dtype=dtype)
    assert np.array_equal(net.predict(x), loaded.predict(x))


def test_batchnorm_buffers_and_names_round_trip(tmp_path):
    net = MultiLayerNet(4, [6, 5], 3, use_batchnorm=True, seed=0, dtype=np.float64)
    x, t = batch(dtype=np.float64)
    net.gradient(x, t)  # a training-mode pass moves the running statistics
    assert not np.allclose(net.buffers["running_mean1"], 0)
    path = save(net, tmp_path / "bn.safetensors")
    with safe_open(path, framework="numpy") as f:
        assert set(f.keys()) == {
            "W1", "b1", "gamma1", "beta1", "running_mean1", "running_var1",
            "W2", "b2", "gamma2", "beta2", "running_mean2", "running_var2", "W3", "b3",
        }
    loaded = load(path)
    assert_same_model(net, loaded)
    assert np.array_equal(net.predict(x), loaded.predict(x))


def test_sequential_and_conv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    seq = Sequential(
        [Affine(rng.standard_normal((4, 3)), np.ones(3)), ReLU(), Affine(rng.standard_normal((3, 2)), np.zeros(2))]
    )
    assert_same_model(seq, load(save(seq, tmp_path / "seq.safetensors")))
    conv = SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 2, "filter_size": 3}, hidden_size=4, seed=0)
    loaded = load(save(conv, tmp_path / "conv.safetensors"))
    assert_same_model(conv, loaded)
    assert loaded.params["W1"].shape == (2, 1, 3, 3)


def test_file_layout_tensors_and_metadata(tmp_path):
    net = TwoLayerNet(4, 5, 3, seed=0, dtype=np.float32)
    opt = Adam()
    x, t = batch()
    opt.update(net.params, net.gradient(x, t))
    path = save(net, tmp_path / "m.safetensors", optimizer=opt, state={"epoch": 3})
    with safe_open(path, framework="numpy") as f:
        keys = set(f.keys())
        doc = json.loads(f.metadata()["layerwise"])
        assert f.get_tensor("optimizer/m/W1").dtype == np.float32
    assert keys == {"W1", "b1", "W2", "b2"} | {f"optimizer/{s}/{p}" for s in "mv" for p in ("W1", "b1", "W2", "b2")}
    assert doc["format"] == "layerwise-model" and doc["format_version"] == 1
    assert doc["model"] == net.config() and doc["dtype"] == "float32"
    assert doc["optimizer"] == {"type": "Adam", "hyper": opt.hyper(), "step": 1}
    assert doc["state"] == {"epoch": 3}
    assert read_metadata(path) == doc


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_checkpoint_resumes_training_bit_exactly(tmp_path, name):
    net = TwoLayerNet(4, 8, 3, weight_init_std=0.5, seed=2)
    opt = make_optimizer(name, lr=0.05)
    batches = [batch(seed=s) for s in range(10)]
    for x, t in batches[:5]:
        opt.update(net.params, net.gradient(x, t))
    rng = np.random.default_rng(9)
    rng.random(3)
    state = {"epoch": 1, "step": 5, "rng": rng.bit_generator.state, "history": [np.float32(0.25), 1.5]}
    path = save(net, tmp_path / "ckpt.safetensors", optimizer=opt, state=state)
    for x, t in batches[5:]:
        opt.update(net.params, net.gradient(x, t))

    ckpt = load_checkpoint(path)
    assert type(ckpt.optimizer) is type(opt) and ckpt.optimizer.step == 5
    assert ckpt.state["history"] == [0.25, 1.5] and ckpt.metadata["state"] == ckpt.state
    resumed_rng = np.random.default_rng()
    resumed_rng.bit_generator.state = ckpt.state["rng"]
    assert np.array_equal(resumed_rng.random(4), rng.random(4))
    model = ckpt.model
    for x, t in batches[5:]:
        ckpt.optimizer.update(model.params, model.gradient(x, t))
    assert_same_model(net, model)


def test_checkpoint_without_optimizer(tmp_path):
    ckpt = load_checkpoint(save(TwoLayerNet(2, 2, 2, seed=0), tmp_path / "m.safetensors"))
    assert ckpt.optimizer is None and ckpt.state is None


def test_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    old = TwoLayerNet(4, 5, 3, seed=0)
    save(old, path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(io_files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        save(TwoLayerNet(4, 5, 3, seed=1), path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    assert_same_model(old, load(path))


def test_save_refuses_unserialisable_state_and_foreign_optimizer(tmp_path):
    net = TwoLayerNet(4, 5, 3, seed=0)
    path = tmp_path / "m.safetensors"
    with pytest.raises(InputError, match="JSON"):
        save(net, path, state={"loss": float("nan")})
    with pytest.raises(InputError, match="JSON"):
        save(net, path, state={"x": object()})
    other = TwoLayerNet(4, 6, 3, seed=0)
    opt = Momentum()
    x, t = batch()
    opt.update(other.params, other.gradient(x, t))
    with pytest.raises(InputError, match="v/W1"):
        save(net, path, optimizer=opt)
    assert not path.exists() and leftovers(tmp_path) == []


# -- refusing broken model files ---------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A saved float32 TwoLayerNet + Adam checkpoint, and a helper that rewrites it with changes."""
    net = TwoLayerNet(4, 5, 3, seed=0, dtype=np.float32)
    opt = Adam()
    x, t = batch()
    opt.update(net.params, net.gradient(x, t))
    path = save(net, tmp_path / "good.safetensors", optimizer=opt, state={"epoch": 1})

    def rewrite(name, tensors=None, doc=None, metadata=None):
        with safe_open(path, framework="numpy") as f:
            all_tensors = {k: f.get_tensor(k) for k in f.keys()}
            document = json.loads(f.metadata()["layerwise"])
        if tensors is not None:
            all_tensors = tensors(all_tensors)
        if doc is not None:
            document = doc(document)
        out = tmp_path / name
        meta = {"layerwise": json.dumps(document)} if metadata is None else metadata
        save_file(all_tensors, out, metadata=meta or None)
        return out

    return path, rewrite


def expect_format_error(path, *patterns):
    with pytest.raises(FormatError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message, message
    for p in patterns:
        assert p in message, message
    return message


def test_not_safetensors_truncated_and_empty(tmp_path, saved):
    good, _ = saved
    cases = {
        "text.safetensors": b"definitely not a model file",
        "empty.safetensors": b"",
        "truncated.safetensors": good.read_bytes()[:-10],
        "header-only.safetensors": good.read_bytes()[:40],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        expect_format_error(path, "safetensors")


def test_safetensors_without_layerwise_metadata(saved):
    _, rewrite = saved
    expect_format_error(rewrite("nometa.safetensors", metadata={}), "not written by layerwise")
    expect_format_error(rewrite("other.safetensors", metadata={"format": "pt"}), "not written by layerwise")
    expect_format_error(rewrite("badjson.safetensors", metadata={"layerwise": "{not json"}), "not valid JSON")


def test_invalid_metadata_documents(saved):
    _, rewrite = saved
    expect_format_error(rewrite("fmt.safetensors", doc=lambda d: {**d, "format": "keras"}), "format")
    expect_format_error(rewrite("v0.safetensors", doc=lambda d: {**d, "format_version": "1"}), "format_version")
    expect_format_error(
        rewrite("v2.safetensors", doc=lambda d: {**d, "format_version": 2}), "newer layerwise", "upgrade"
    )
    expect_format_error(rewrite("dtype.safetensors", doc=lambda d: {**d, "dtype": "int32"}), "dtype")
    expect_format_error(rewrite("nomodel.safetensors", doc=lambda d: {**d, "model": None}), "model config")
    expect_format_error(
        rewrite("cls.safetensors", doc=lambda d: {**d, "model": {"class": "ResNet50"}}), "ResNet50"
    )
    expect_format_error(
        rewrite("kw.safetensors", doc=lambda d: {**d, "model": {"class": "TwoLayerNet", "kwargs": {"size": 3}}}),
        "cannot be rebuilt",
    )


def test_tensors_that_disagree_with_the_architecture(saved):
    _, rewrite = saved

    def without(name):
        return lambda t: {k: v for k, v in t.items() if k != name}

    expect_format_error(rewrite("missing.safetensors", tensors=without("W2")), "W2", "missing")
    expect_format_error(
        rewrite("shape.safetensors", tensors=lambda t: {**t, "W1": np.zeros((5, 4), np.float32)}),
        "'W1'", "(5, 4)", "(4, 5)",
    )
    expect_format_error(
        rewrite("dtype.safetensors", tensors=lambda t: {**t, "b1": t["b1"].astype(np.float64)}), "'b1'", "float64"
    )
    expect_format_error(
        rewrite("extra.safetensors", tensors=lambda t: {**t, "W9": np.zeros(2, np.float32)}), "W9", "unexpected"
    )
    expect_format_error(
        rewrite("optshape.safetensors", tensors=lambda t: {**t, "optimizer/m/W1": np.zeros(3, np.float32)}),
        "optimizer/m/W1",
    )
    expect_format_error(
        rewrite("optslot.safetensors", tensors=lambda t: {**t, "optimizer/q/W1": t["W1"]}), "q/W1"
    )
    expect_format_error(
        rewrite("optparam.safetensors", tensors=lambda t: {**t, "optimizer/m/W7": t["W1"]}), "W7"
    )
    expect_format_error(
        rewrite("optmeta.safetensors", doc=lambda d: {**d, "optimizer": None}), "optimizer"
    )
    expect_format_error(
        rewrite("opthyper.safetensors", doc=lambda d: {**d, "optimizer": {**d["optimizer"], "hyper": {"lr": -1}}}),
        "lr",
    )


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)
