"""The book's weight pickles: read through the restricted unpickler, nothing else runs."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from layerwise.errors import FormatError, UnsafePickleError
from layerwise.io import (
    load_book_params,
)
from layerwise.layers import Affine, Sigmoid
from layerwise.models import Sequential, SimpleConvNet

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
