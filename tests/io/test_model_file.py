"""layerwise model files: round trips, layout, checkpoints, broken files refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from layerwise.errors import FormatError, InputError
from layerwise.io import files as io_files
from layerwise.io import (
    load,
    load_checkpoint,
    read_metadata,
    save,
)
from layerwise.layers import Affine, ReLU
from layerwise.models import MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet
from layerwise.optim import Adam, Momentum, make_optimizer


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def batch(n=8, d=4, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, classes, n)


def assert_same_model(a, b):
    assert type(a) is type(b) and a.config() == b.config() and a.dtype == b.dtype
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k


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


# Configs a few bytes long that ask for networks of gigabytes, beside the 43 numbers of the
# saved TwoLayerNet(4, 5, 3); a config may ask for 10 M more, the tensors a file may lack.
# Hypothesis found the first: building it drew 3e9 random numbers (24 GB) before the
# tensors' shapes were compared.
HUGE = 10**8
# Sequential's layers are allocated (as zeros, which cost no memory until written) before they
# are counted: sizes of a few hundred MB each, which any machine can map.
LARGE = 25 * 10**6
HUGE_CONFIGS = {
    "two-layer": {"class": "TwoLayerNet", "kwargs": {"input_size": 10**9, "hidden_size": 3, "output_size": 3}},
    "multi-layer": {"class": "MultiLayerNet",
                    "kwargs": {"input_size": 4, "hidden_size_list": [HUGE], "output_size": 3, "use_batchnorm": True}},
    "simple-convnet": {"class": "SimpleConvNet", "kwargs": {"input_dim": [1, 10**5, 10**5]}},
    "deep-convnet": {"class": "DeepConvNet", "kwargs": {"hidden_size": HUGE}},
    "affine": {"class": "Sequential", "layers": [
        {"type": "Affine", "config": {"in_features": LARGE, "out_features": 4}}]},
    "convolution": {"class": "Sequential", "layers": [
        {"type": "Convolution", "config": {"in_channels": 1, "out_channels": LARGE, "kernel_size": [2, 2]}}]},
    "batchnorm": {"class": "Sequential", "layers": [{"type": "BatchNormalization", "config": {"num_features": LARGE}}]},
}


@pytest.mark.parametrize("name", sorted(HUGE_CONFIGS))
def test_a_config_asking_for_more_parameters_than_the_file_holds_is_refused(saved, name):
    _, rewrite = saved
    path = rewrite(f"{name}.safetensors", doc=lambda d: {**d, "model": HUGE_CONFIGS[name]})
    expect_format_error(path, "cannot be rebuilt", f"asks for more than {43 + 10_000_000} parameters")


def test_refusing_a_huge_config_costs_no_memory(saved, tmp_path):
    """Refused before anything is drawn or written: the loading process stays small (its
    peak RSS, in a process of its own), though each config asks for 0.1 to 24 GB."""
    _, rewrite = saved
    paths = [str(rewrite(f"{name}.safetensors", doc=lambda d, c=config: {**d, "model": c}))
             for name, config in HUGE_CONFIGS.items()]
    # The peak of this process's own memory: Linux's VmHWM (ru_maxrss would start from the
    # parent's, which the child inherits across fork and exec), else ru_maxrss (macOS: bytes).
    script = (
        "import json, re, sys\n"
        "from pathlib import Path\n"
        "from layerwise.errors import FormatError\n"
        "from layerwise.io import load_checkpoint\n"
        "refused = []\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        load_checkpoint(path)\n"
        "    except FormatError as exc:\n"
        "        refused.append('asks for more than' in str(exc))\n"
        "status = Path('/proc/self/status')\n"
        "if status.exists():\n"
        "    peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status.read_text()).group(1))\n"
        "else:\n"
        "    import resource\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == 'darwin' else 1)\n"
        "print(json.dumps([refused, peak]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, check=True)
    refused, peak_kib = json.loads(out.stdout)
    assert refused == [True] * len(paths)
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB while refusing"
