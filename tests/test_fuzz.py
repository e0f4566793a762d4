"""Property tests and fuzzing with hypothesis.

Layers, every type: random shapes and values give finite outputs and gradients for finite
inputs, keep float32 as float32, never mutate their input, ``dout`` or what forward returned,
and their gradients match central differences (float64).

Readers: random bytes and mutations of valid safetensors model files (bytes and JSON
metadata) and of pickles go into ``layerwise.io.load`` / ``load_book_params``; each either
loads valid data or raises the library's own error type (LayerwiseError), within a deadline,
and a pickle's payload never runs. (IDX files are fuzzed the same way in test_idx.py.)

Example counts come from the hypothesis profile: "default" (bounded, for CI) or
``pytest --hypothesis-profile=long tests/test_fuzz.py`` for a deep run.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors.numpy import save as st_save

import layerwise as lw
from layerwise.errors import LayerwiseError, UnsafePickleError
from layerwise.gradcheck import TOLERANCE, check_layer
from layerwise.io import load, load_book_params
from layerwise.layers import (
    Affine,
    Flatten,
    Identity,
    LeakyReLU,
    MeanSquaredError,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Tanh,
)
from layerwise.layers.conv import AvgPooling, Convolution, Pooling
from layerwise.layers.norm import BatchNormalization, Dropout

# Every example builds files in memory or in one scratch file; function-scoped fixtures
# (tmp_path) are reused across examples on purpose.
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def test_the_profile_asked_for_is_in_force(pytestconfig):
    """`--hypothesis-profile=long` must reach these tests (conftest re-applies it)."""
    wanted = pytestconfig.getoption("--hypothesis-profile", None) or "default"
    assert settings.get_current_profile_name() == wanted
    assert settings.default.max_examples == settings.get_profile(wanted).max_examples


class Hang(Exception):
    """Raised by the deadline (an Exception, so hypothesis shrinks and reports the example)."""


@contextmanager
def deadline(seconds: float = 10.0):
    """Fail an example that runs longer than ``seconds`` (a hang would otherwise stall CI).
    Hypothesis' own deadline only measures an example after it ends; this interrupts it.
    The alarm repeats every second and is remembered: code that catches the first Hang
    (a reader's ``except Exception``) cannot hide it."""
    fired = []

    def alarm(signum, frame):
        fired.append(frame)
        raise Hang(f"example still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if fired:
            raise Hang(f"example still running after {seconds} s (first alarm in {fired[0].f_code.co_name})")


# -- layers ---------------------------------------------------------------------------------

ELEMENTWISE = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Identity")
LAYERS = (*ELEMENTWISE, "Flatten", "Affine", "Convolution", "Pooling", "AvgPooling", "BatchNormalization",
          "Dropout", "SoftmaxWithLoss", "MeanSquaredError")


@st.composite
def layer_cases(draw, kinds=LAYERS):
    """(kind, layer factory taking a dtype and a generator, input shape, train flag)."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, 4))
    train = draw(st.booleans())
    if kind in ELEMENTWISE or kind == "Flatten":
        rank = draw(st.integers(2 if kind in ("Flatten", "Softmax") else 1, 4))
        shape = (n, *draw(st.lists(st.integers(1, 4), min_size=rank - 1, max_size=rank - 1)))
        # Not subnormal: alpha * h would underflow and the numerical gradient with it.
        alpha = draw(st.just(0.0) | st.floats(1e-3, 1))
        classes = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "Softmax": Softmax, "Identity": Identity,
                   "Flatten": Flatten}
        make = (lambda d, r: LeakyReLU(alpha)) if kind == "LeakyReLU" else (lambda d, r: classes[kind]())
        return kind, make, shape, train
    if kind == "Affine":
        feat = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
        out = draw(st.integers(1, 5))
        d = math.prod(feat)
        return kind, lambda dt, r: Affine(r.standard_normal((d, out)).astype(dt),
                                          r.standard_normal(out).astype(dt)), (n, *feat), train
    if kind in ("Convolution", "Pooling", "AvgPooling"):
        c = draw(st.integers(1, 3))
        fh, fw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = draw(st.integers(1, 3))
        pad = draw(st.integers(0, 2)) if kind == "Convolution" else draw(st.integers(0, min(fh, fw) // 2))
        # Sizes the stride divides exactly (the layers refuse to drop rows silently):
        # size = (out - 1) * stride + kernel - 2 * pad.
        h = (draw(st.integers(1, 3)) - 1) * stride + fh - 2 * pad
        w = (draw(st.integers(1, 3)) - 1) * stride + fw - 2 * pad
        assume(h >= 1 and w >= 1)
        if kind == "Convolution":
            fn = draw(st.integers(1, 3))
            make = lambda dt, r: Convolution(r.standard_normal((fn, c, fh, fw)).astype(dt),  # noqa: E731
                                             r.standard_normal(fn).astype(dt), stride, pad)
        else:
            cls = Pooling if kind == "Pooling" else AvgPooling
            make = lambda dt, r: cls(fh, fw, stride, pad)  # noqa: E731
        return kind, make, (n, c, h, w), train
    if kind == "BatchNormalization":
        per_feature = draw(st.booleans())
        shape = (n, *draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
        if train:  # training needs several values per normalised feature
            m = n if per_feature or len(shape) == 2 else n * math.prod(shape[2:])
            assume(m >= 3)
        d = math.prod(shape[1:]) if per_feature or len(shape) == 2 else shape[1]

        def make(dt, r):
            return BatchNormalization(r.uniform(0.5, 1.5, d).astype(dt), r.standard_normal(d).astype(dt),
                                      running_mean=r.standard_normal(d).astype(dt),
                                      running_var=r.uniform(0.5, 2, d).astype(dt), per_feature=per_feature)

        return kind, make, shape, train
    if kind == "Dropout":
        ratio = draw(st.floats(0, 0.9))
        mode = draw(st.sampled_from(Dropout.MODES))
        shape = (n, *draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
        return kind, lambda dt, r: Dropout(ratio, mode=mode, seed=7), shape, train
    c = draw(st.integers(1, 5))
    return kind, (lambda dt, r: SoftmaxWithLoss()) if kind == "SoftmaxWithLoss" else (
        lambda dt, r: MeanSquaredError()), (n, c), True


def targets(kind: str, shape: tuple[int, ...], rng: np.random.Generator, dtype, onehot: bool):
    if kind == "MeanSquaredError":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "SoftmaxWithLoss":
        labels = rng.integers(0, shape[1], shape[0])
        return np.eye(shape[1], dtype=dtype)[labels] if onehot else labels
    return None


def finite_values(kind: str, dtype):
    # Elementwise nonlinearities and the loss must stay finite for any magnitude; linear
    # layers (sums of products) only where the sums cannot overflow the dtype.
    # (Powers of two: exactly representable in float32, as hypothesis requires.)
    big = 2.0**100 if kind in (*ELEMENTWISE, "Flatten", "SoftmaxWithLoss", "Pooling", "Dropout") else 2.0**10
    width = 32 if dtype == np.float32 else 64
    return st.floats(-big, big, allow_nan=False, allow_infinity=False, width=width)


def forward(layer, x, t, train):
    return layer.forward(x, t) if layer.is_loss else layer.forward(x, train=train)


@pytest.mark.parametrize("kind", LAYERS)
@FUZZ
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_layers_finite_dtype_kept_nothing_mutated(kind, dtype, data):
    kind, make, shape, train = data.draw(layer_cases([kind]), label="case")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    layer = make(dtype, rng)
    x = data.draw(hnp.arrays(dtype, shape, elements=finite_values(kind, dtype)), label="x")
    t = targets(kind, shape, rng, dtype, data.draw(st.booleans(), label="onehot"))
    x_before = x.copy()
    out = forward(layer, x, t, train)
    if layer.is_loss:
        assert np.isfinite(out), kind
        dout = 1.0
    else:
        assert out.dtype == dtype and np.all(np.isfinite(out)), kind
        dout = rng.standard_normal(out.shape).astype(dtype)
    out_before = np.array(out, copy=True)
    dout_before = np.array(dout, copy=True)
    dx = layer.backward(dout)
    assert np.array_equal(x, x_before), f"{kind} mutated its input"
    assert np.array_equal(dout, dout_before), f"{kind} wrote into dout"
    assert np.array_equal(out, out_before), f"{kind} wrote into its forward output"
    if dx is not None:
        assert dx.shape == x.shape and dx.dtype == dtype, kind
        assert np.all(np.isfinite(dx)), kind
    assert layer.grads.keys() == layer.params.keys()
    for key, g in layer.grads.items():
        assert g.shape == layer.params[key].shape and g.dtype == dtype and np.all(np.isfinite(g)), (kind, key)


def gradcheck_input(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if kind == "Pooling":
        # Distinct values spaced far wider than h: no window has a tie or a near-tie.
        return (rng.permutation(math.prod(shape)) * 0.1 - 1).reshape(shape)
    if kind in ("ReLU", "LeakyReLU"):
        # Away from the kink at 0, so the function is smooth within h.
        return rng.uniform(0.05, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    if kind == "BatchNormalization":
        return rng.standard_normal(shape) * 2 + 1
    return rng.standard_normal(shape) * 1.5


@pytest.mark.parametrize("kind", LAYERS)
@FUZZ
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), onehot=st.booleans())
def test_layer_gradients_match_central_differences(kind, data, seed, onehot):
    kind, make, shape, train = data.draw(layer_cases([kind]), label="case")
    rng = np.random.default_rng(seed)
    layer = make(np.float64, rng)
    x = gradcheck_input(kind, shape, rng)
    t = targets(kind, shape, rng, np.float64, onehot)
    hook = None
    if kind == "Dropout":
        # The same mask on every forward pass, so the differences see one fixed function.
        def hook():
            layer.rng = np.random.default_rng(7)
    # Normalising as few as 3 values is strongly curved: central differences with h = 1e-4
    # carry a truncation error up to ~5e-7 there (measured); h = 1e-5 brings it to ~5e-9.
    h = 1e-5 if kind == "BatchNormalization" else 1e-4
    errors = check_layer(layer, x, t, h=h, seed=seed, train=train, before_forward=hook)
    assert errors and max(errors.values()) < TOLERANCE, (kind, errors)


# -- readers: safetensors model files --------------------------------------------------------


def _valid_model_files() -> list[bytes]:
    import tempfile

    from layerwise.optim import Adam

    files = []
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    t = np.arange(6) % 3
    for model in (lw.TwoLayerNet(4, 3, 3, seed=0),
                  lw.MultiLayerNet(4, [3], 3, use_batchnorm=True, use_dropout=True, seed=0),
                  lw.SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3}, 4, 3, seed=0)):
        opt = Adam()
        xin = x if not isinstance(model, lw.SimpleConvNet) else np.zeros((6, 1, 6, 6), np.float32)
        opt.update(model.params, model.gradient(xin, t))
        with tempfile.TemporaryDirectory() as folder:
            path = lw.save(model, Path(folder) / "seed.safetensors", optimizer=opt, state={"epoch": 1})
            files.append(path.read_bytes())
    return files


SEED_MODELS = _valid_model_files()


@st.composite
def byte_mutations(draw, seeds):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append", "overwrite-int"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=16))
        elif op == "overwrite-int" and len(data) >= 8:
            # Little-endian u64 (safetensors' header length) at a random place.
            pos = min(pos, len(data) - 8)
            data[pos : pos + 8] = struct.pack("<Q", draw(st.sampled_from([0, 1, 2**31, 2**63, 2**64 - 1])))
    return bytes(data)


def load_or_library_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    with deadline():
        try:
            model = load(path)
        except LayerwiseError:
            return
    # What loads is a usable model: it predicts finite scores for finite inputs.
    assert isinstance(model, lw.Sequential)
    assert all(isinstance(v, np.ndarray) for v in model.state_dict().values())


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_not_model_files(tmp_path, data):
    path = tmp_path / "fuzz.safetensors"
    load_or_library_error(path, data)
    # Past safetensors' 8-byte header length, into its JSON header.
    load_or_library_error(path, struct.pack("<Q", len(data)) + data)
    load_or_library_error(path, struct.pack("<Q", len(data)) + b'{"__metadata__":' + data)


@FUZZ
@given(data=byte_mutations(SEED_MODELS))
def test_mutated_model_files_load_or_raise_library_errors(tmp_path, data):
    load_or_library_error(tmp_path / "fuzz.safetensors", data)


# JSON values to put where the metadata had something else. Integers are small or absurd:
# a medium size (30,000) is a legitimately large network, slow to build, not an error.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 64) | st.integers(10**9, 10**30) | st.integers(-(10**30), -4)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["float16", "float64", "int8", "Affine", "Sequential", "TwoLayerNet", "SGD", "Adam",
                       "layerwise-model", "relu", "inverted"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, value):
    if not path:
        return value
    head, *rest = path
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[head] = _replace(doc[head], rest, value)
    return copy


@st.composite
def metadata_mutations(draw):
    """A valid model file whose JSON metadata has 1-3 values replaced, keys dropped, or
    tensors swapped for others of another shape or dtype."""
    from safetensors.numpy import load as st_load

    raw = draw(st.sampled_from(SEED_MODELS))
    tensors = st_load(raw)
    header_len = struct.unpack("<Q", raw[:8])[0]
    doc = json.loads(json.loads(raw[8 : 8 + header_len])["__metadata__"]["layerwise"])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        if path and draw(st.booleans()) and isinstance(path[-1], str):  # drop a key
            holder = doc
            for p in path[:-1]:
                holder = holder[p]
            doc = _replace(doc, path[:-1], {k: v for k, v in holder.items() if k != path[-1]})
        else:
            doc = _replace(doc, path, draw(JSON_VALUES))
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(tensors)))
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.uint8]))
        tensors[name] = np.zeros(shape, dtype)
    if draw(st.booleans()) and tensors:
        tensors.pop(draw(st.sampled_from(sorted(tensors))))
    return st_save(tensors, metadata={"layerwise": json.dumps(doc)})


@FUZZ
@given(data=metadata_mutations())
def test_model_files_with_mutated_metadata_or_tensors(tmp_path, data):
    load_or_library_error(tmp_path / "fuzz.safetensors", data)


SAFETENSORS_DTYPES = ["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U64", "U32",
                      "U16", "U8", "BOOL", "C64", "X9"]
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I16": 2,
            "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


@st.composite
def header_mutations(draw):
    """A valid model file whose safetensors header (dtype, shape, data offsets of its
    tensors) is rewritten, the data left as it was."""
    raw = draw(st.sampled_from(SEED_MODELS))
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    names = sorted(k for k in header if k != "__metadata__")
    for _ in range(draw(st.integers(1, 3))):
        entry = header[draw(st.sampled_from(names))]
        field = draw(st.sampled_from(["dtype", "dtype-and-shape", "shape", "data_offsets"]))
        if field == "dtype":
            entry["dtype"] = draw(st.sampled_from(SAFETENSORS_DTYPES))
        elif field == "dtype-and-shape":
            # Another dtype over the same bytes: a header safetensors itself finds valid.
            dtype = draw(st.sampled_from([d for d in SAFETENSORS_DTYPES if d in ITEMSIZE]))
            nbytes = entry["data_offsets"][1] - entry["data_offsets"][0]
            entry["dtype"], entry["shape"] = dtype, [nbytes // ITEMSIZE[dtype]]
        elif field == "shape":
            entry["shape"] = draw(st.lists(st.integers(0, 40) | st.just(2**62), max_size=4))
        else:
            start = draw(st.integers(0, len(raw)))
            entry["data_offsets"] = [start, start + draw(st.integers(0, 200) | st.just(2**62))]
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n :]


@FUZZ
@given(data=header_mutations())
def test_model_files_with_mutated_safetensors_headers(tmp_path, data):
    load_or_library_error(tmp_path / "fuzz.safetensors", data)


# -- readers: pickles --------------------------------------------------------------------------


def _valid_pickles() -> list[bytes]:
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((3, 2)), "b1": np.zeros(2, np.float32), "n": np.arange(3, dtype=np.int64)}
    out = [pickle.dumps(params, protocol=p) for p in (0, 2, 4, 5)]
    out.append(pickle.dumps(dict(params), protocol=2, fix_imports=True))
    return out


SEED_PICKLES = _valid_pickles()


def book_params_or_library_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    with deadline():
        try:
            params = load_book_params(path)
        except LayerwiseError:
            return
    assert isinstance(params, dict) and params
    for key, value in params.items():
        assert isinstance(key, str) and type(value) is np.ndarray and value.dtype.kind in "biuf"


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_not_weight_files(tmp_path, data):
    path = tmp_path / "fuzz.pkl"
    book_params_or_library_error(path, data)
    book_params_or_library_error(path, b"\x80\x02" + data)  # past the protocol-2 header
    book_params_or_library_error(path, b"\x80\x05\x95" + data)  # protocol 5, a frame


@FUZZ
@given(data=byte_mutations(SEED_PICKLES))
def test_mutated_pickles_load_or_raise_library_errors(tmp_path, data):
    book_params_or_library_error(tmp_path / "fuzz.pkl", data)


def dangerous_calls(marker: Path) -> list[tuple[object, tuple]]:
    """Callables a hostile pickle would name, each with arguments that create ``marker``
    if the call ever ran (or, for the rest, that would do something else no weight file may)."""
    import builtins
    import collections
    import importlib
    import shutil
    import subprocess

    code = f"open({str(marker)!r}, 'w').close()"
    return [
        (os.system, (f"touch {marker}",)),
        (builtins.eval, (code,)),
        (builtins.exec, (code,)),
        (subprocess.Popen, (["touch", str(marker)],)),
        (subprocess.check_output, (["touch", str(marker)],)),
        (builtins.__import__, ("antigravity",)),
        (importlib.import_module, ("antigravity",)),
        (builtins.getattr, (collections.OrderedDict, "fromkeys")),
        (np.save, (str(marker), np.zeros(1))),
        (shutil.rmtree, (str(marker.parent),)),
        (builtins.open, (str(marker), "w")),
    ]


@FUZZ
@given(which=st.integers(0, 10), protocol=st.sampled_from([0, 2, 4, 5]), position=st.integers(0, 3),
       mutate=st.booleans(), data=st.data())
def test_pickle_payloads_never_run(tmp_path, which, protocol, position, mutate, data):
    """A call of a dangerous global hidden among genuine arrays, possibly further mutated:
    refused with the global named (or broken into a FormatError), and the call never made."""
    marker = tmp_path / "pwned"
    marker.unlink(missing_ok=True)
    function, args = dangerous_calls(marker)[which]

    class Call:
        def __reduce__(self):
            return (function, args)

    entries = [("W1", np.ones((2, 2))), ("b1", np.zeros(2)), ("W2", np.ones(3))]
    entries.insert(position, ("evil", Call()))
    raw = pickle.dumps(dict(entries), protocol=protocol, fix_imports=False)
    if mutate:
        raw = data.draw(byte_mutations([raw]), label="mutated")
    path = tmp_path / "evil.pkl"
    path.write_bytes(raw)
    with deadline():
        try:
            load_book_params(path)
        except UnsafePickleError as exc:
            if not mutate:
                assert f".{function.__name__}, which is not" in str(exc)
        except LayerwiseError:
            assert mutate, "an intact payload must be refused as unsafe, naming the global"
        else:
            assert mutate, "the payload loaded"
    assert not marker.exists() and tmp_path.exists()
