"""Bad inputs, each named by a clear error (or converted as documented), nothing left behind:
arrays into predict/loss/accuracy/Trainer, odd image files for `layerwise predict`, bad
command lines and run directories, downloads cut mid-file, hostile model-file configs and
pickles through the command line.

Cases already covered elsewhere are not repeated here: IDX files (test_idx.py), mirrors that
serve HTML, 404, a wrong checksum or a short Content-Length (test_mnist.py), malformed model
files and malicious pickles through the Python API (test_io.py), the first bad CLI flags
(test_cli_train.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close_for_dtype

import layerwise as lw
from layerwise.cli import main
from layerwise.datasets.download import download
from layerwise.datasets.idx import idx_bytes, read_idx
from layerwise.errors import DownloadError, FormatError, InputError, LayerwiseWarning, ShapeError
from layerwise.layers.conv import Convolution, Pooling
from layerwise.layers.norm import BatchNormalization, Dropout
from layerwise.optim import SGD
from layerwise.train import CHECKPOINT_NAME, Trainer

# -- arrays into the Python API ---------------------------------------------------------------


@pytest.fixture
def net():
    return lw.TwoLayerNet(4, 5, 3, seed=0, dtype=np.float32)


X = np.random.default_rng(0).random((6, 4)).astype(np.float32)
T = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    ("x", "error", "words"),
    [
        (np.full((2, 4), np.nan), InputError, "sample 0 contains NaN or infinity"),
        (np.array([[0, 1, 2, 3], [0, 1, np.inf, 3]]), InputError, "sample 1 contains NaN or infinity"),
        (np.array([[0, 1, 2, 3], [0, -np.inf, 2, 3]], dtype=np.float32), InputError, "sample 1"),
        (np.array([[1, 2, 3, None]], dtype=object), InputError, "dtype object"),
        (np.ones((2, 4), complex), InputError, "dtype complex128"),
        (np.array([["a"] * 4]), InputError, "dtype <U1"),
        (np.ones((2, 5)), ShapeError, "Affine: input has 5 features per sample (x.shape=(2, 5)) but W expects 4"),
        (np.ones(4), ShapeError, "Affine: input must have a batch axis"),
        (3.0, ShapeError, "batch axis"),
    ],
    ids=["nan", "inf", "-inf-float32", "object", "complex", "str", "features", "1-D", "scalar"],
)
def test_predict_refuses_by_name(net, x, error, words):
    with pytest.raises(error) as info:
        net.predict(x)
    assert words in str(info.value)


def test_predict_documented_conversions(net):
    # Integer and boolean arrays become the model's dtype; float64 into a float32 model too.
    for x in (np.ones((2, 4), int), np.ones((2, 4), bool), np.ones((2, 4), np.float64),
              np.ones((2, 4), np.float16), [[1, 2, 3, 4]]):
        out = net.predict(x)
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert net.predict(np.ones((0, 4))).shape == (0, 3)  # an empty batch predicts nothing
    one = net.predict(X[:1])
    # A batch of one is one row (to rounding: a batch of one takes another GEMM path than six).
    assert_close_for_dtype(one, net.predict(X)[:1], net.dtype, terms=4 + 5)


def test_predict_nan_check_is_only_for_evaluation(net):
    # Training steps go through predict(train_flg=True); the Trainer checks its data once.
    out = net.predict(np.full((1, 4), np.nan, np.float32), train_flg=True)
    assert np.isnan(out).all()


def test_conv_net_images_of_the_wrong_size_or_channels():
    conv = lw.SimpleConvNet((1, 8, 8), {"filter_num": 4, "filter_size": 3}, 10, 10, seed=0)
    cases = [
        (np.zeros((2, 3, 8, 8)), "Convolution: input has 3 channels (x.shape=(2, 3, 8, 8)) but W expects 1"),
        (np.zeros((2, 1, 2, 2)), "Convolution: the 3x3 kernel is larger than the padded input 2x2"),
        (np.zeros((2, 64)), "Convolution: input must be 4-D (N, C, H, W), got shape (2, 64)"),
        (np.zeros((2, 1, 12, 12)), "Affine: input has 100 features per sample"),
    ]
    for x, words in cases:
        with pytest.raises(ShapeError) as info:
            conv.predict(x)
        assert words in str(info.value)


@pytest.mark.parametrize(
    ("t", "error", "words"),
    [
        (np.array([0, 1, 2, 3, 1, 2]), InputError, "label 3 is out of range for 3 classes"),
        (np.array([0, 1, 2, -1, 1, 2]), InputError, "label -1 is out of range"),
        (T + 0.5, InputError, "must be whole numbers"),
        (T.astype(object), InputError, "dtype object"),
        (T[:5], ShapeError, "5 labels (shape (5,)) for a batch of 6"),
        (T[:, None, None], ShapeError, "got shape (6, 1, 1)"),
        (np.eye(4)[T], ShapeError, "one-hot labels have shape (6, 4)"),
    ],
    ids=["too-big", "negative", "fractional", "object", "length", "3-D", "one-hot-width"],
)
def test_loss_label_errors(net, t, error, words):
    with pytest.raises(error) as info:
        net.gradient(X, t)
    assert words in str(info.value)


def test_loss_empty_batch_and_batch_of_one(net):
    with pytest.raises(InputError, match="empty batch"):
        net.loss(np.ones((0, 4)), np.zeros(0, int))
    grads = net.gradient(X[:1], T[:1])
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    assert net.loss(X, T.astype(float)) == net.loss(X, T)  # whole-number floats are labels


def test_accuracy_refuses_labels_that_could_never_match(net):
    # Regression: out-of-range labels counted silently as wrong (accuracy 0.0).
    with pytest.raises(InputError, match="label 7 is out of range for 3 classes"):
        net.accuracy(X, T + 5)
    with pytest.raises(InputError, match="label -1"):
        net.accuracy(X, T - 1)
    with pytest.raises(InputError, match="class indices or one-hot"):
        net.accuracy(X, T + 0.5)
    with pytest.raises(ShapeError, match="6 inputs but 3 labels"):
        net.accuracy(X, T[:3])
    with pytest.raises(InputError, match="empty"):
        net.accuracy(X[:0], T[:0])
    assert net.accuracy(X.tolist(), T.tolist()) == net.accuracy(X, np.eye(3)[T])


def test_layers_refuse_impossible_settings():
    with pytest.warns(LayerwiseWarning, match="one value per feature"):  # runs as in the book
        BatchNormalization(np.ones(3), np.zeros(3)).forward(np.ones((1, 3)))
    assert BatchNormalization(np.ones(3), np.zeros(3)).forward(np.ones((1, 3)), train=False).shape == (1, 3)
    with pytest.raises(InputError, match=r"dropout_ratio must be in \[0, 1\)"):
        Dropout(1.0)
    with pytest.raises(ShapeError, match="Pooling: the 2x2 kernel is larger"):
        Pooling(2, 2).forward(np.ones((1, 1, 1, 1)))
    with pytest.raises(InputError, match="stride"):
        Convolution(np.ones((1, 1, 2, 2)), np.ones(1), stride=0)
    with pytest.raises(InputError, match="at least one layer"):
        lw.Sequential([])


def fit(x, t, x_test=None, t_test=None, model=None, **kw):
    kw = {"epochs": 1, "progress": False, "log": None, **kw}
    trainer = Trainer(model or lw.TwoLayerNet(4, 5, 3, seed=0), SGD(), x, t, x_test, t_test, **kw)
    return trainer.fit()


NAN_X = np.where(X > 0.5, np.nan, X)


@pytest.mark.parametrize(
    ("args", "kw", "error", "words"),
    [
        ((NAN_X, T), {}, InputError, "training data: image 0 contains NaN or infinity"),
        ((X, T, NAN_X, T), {}, InputError, "test data: image 0 contains NaN"),
        ((np.where(X > 0.5, np.inf, X), T), {}, InputError, "NaN or infinity"),
        ((X.astype(object), T), {}, InputError, "images must be real numbers, got dtype object"),
        ((X.astype(complex), T), {}, InputError, "dtype complex128"),
        ((X > 0.5, T), {}, InputError, "dtype bool"),
        ((X, T.astype(float)), {}, InputError, "labels must be integer class indices"),
        ((X, T + 1), {}, InputError, "label 3 is out of range for 3 classes"),
        ((X, T - 1), {}, InputError, "label -1"),
        ((X, T[:, None]), {}, ShapeError, "labels of shape (6, 1)"),
        ((X, T[:, None, None]), {}, ShapeError, "labels of shape (6, 1, 1)"),
        ((X, np.eye(3)[T] * np.nan), {}, InputError, "one-hot labels must be finite"),
        ((X, T[:4]), {}, ShapeError, "6 images but 4 labels"),
        ((X[:0], T[:0]), {}, InputError, "the dataset is empty"),
        ((X, T), {"batch_size": 0}, InputError, "batch_size must be a positive whole number, got 0"),
        ((X, T), {"batch_size": 2.5}, InputError, "got 2.5"),
        ((X, T), {"epochs": 0}, InputError, "epochs must be a positive whole number"),
        ((X, T), {"checkpoint_every": -1}, InputError, "checkpoint_every must be a whole number >= 0"),
        ((X, T, X), {}, InputError, "give both x_test and t_test"),
        ((np.ones((6, 5)), T), {}, ShapeError, "training data: images of shape (5,) do not fit the model"),
        ((X, T, np.ones((6, 5)), T), {}, ShapeError, "test data: images of shape (5,)"),
    ],
    ids=["nan", "nan-test", "inf", "object", "complex", "bool", "float-labels", "label-too-big",
         "label-negative", "labels-2d", "labels-3d", "one-hot-nan", "length", "empty", "batch-0",
         "batch-2.5", "epochs-0", "checkpoint-every", "x-test-alone", "features", "test-features"],
)
def test_trainer_refuses_before_training(args, kw, error, words):
    with pytest.raises(error) as info:
        fit(*args, **kw)
    assert words in str(info.value)


def test_trainer_wrong_test_images_fail_before_the_first_step():
    # Regression: test images of the wrong shape failed at the first evaluation, after a
    # whole epoch of training.
    model = lw.TwoLayerNet(4, 5, 3, seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ShapeError):
        fit(X, T, np.ones((6, 5)), T, model=model)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)


def test_trainer_documented_conversions_and_small_batches(tmp_path):
    # Lists (regression: AttributeError), integer images, uint8 labels, one-hot labels.
    assert len(fit(X.tolist(), T.tolist()).step_loss) == 1
    assert len(fit((X * 255).astype(np.uint8), T.astype(np.uint8)).step_loss) == 1
    assert len(fit(X, np.eye(3)[T]).step_loss) == 1
    history = fit(X[:1], T[:1], batch_size=100)  # a data set, and batch, of one
    assert len(history.step_loss) == 1 and np.isfinite(history.step_loss[0])
    fit(X, T, batch_size=5, run_dir=tmp_path / "a" / "b")  # a batch of 1 at the end, no batchnorm
    assert (tmp_path / "a" / "b" / CHECKPOINT_NAME).exists()  # the run directory was created


def test_batchnorm_with_a_last_batch_of_one_is_refused_up_front():
    # Regression: the run trained a whole epoch, then failed inside BatchNormalization.
    model = lw.MultiLayerNet(4, [5], 3, use_batchnorm=True, seed=0)
    with pytest.raises(InputError, match=r"last batch of 1 of the 6 training images.*use batch_size 6"):
        fit(X, T, model=model, batch_size=5)
    fit(X, T, model=lw.MultiLayerNet(4, [5], 3, use_batchnorm=True, seed=0), batch_size=4)


# -- `layerwise predict` with odd image files ---------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(run / "r")]) == 0
    return run / "r" / "model.safetensors"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int) -> bytes:
    """A 100-byte PNG that claims side x side pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + _png_chunk(b"IEND", b""))


def test_predict_reads_odd_but_valid_images(model_file, tmp_path, capsys):
    from PIL import Image

    images = {
        "one-pixel.png": Image.fromarray(np.zeros((1, 1), np.uint8)),
        "strip.png": Image.fromarray(np.zeros((3, 1000), np.uint8)),
        "rgba.png": Image.fromarray(np.zeros((20, 20, 4), np.uint8), "RGBA"),
        "sixteen-bit.png": Image.fromarray((np.arange(400).reshape(20, 20) * 100).astype(np.uint16)),
        "cmyk.jpg": Image.new("CMYK", (10, 10)),
        "palette.gif": Image.new("P", (10, 10)),
        "white.png": Image.fromarray(np.full((20, 20, 3), 255, np.uint8)),
        "big.png": Image.fromarray(np.zeros((600, 800), np.uint8)),
    }
    paths = []
    for name, image in images.items():
        image.save(tmp_path / name)
        paths.append(str(tmp_path / name))
    assert main(["predict", str(model_file), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(paths)
    for line, path in zip(lines, paths, strict=True):
        assert line.startswith(f"{path}: ") and line.count("(") == 3


@pytest.mark.parametrize(
    ("name", "data", "code", "words"),
    [
        ("empty.png", b"", 2, "not an image Pillow can read"),
        ("text.png", b"hello", 2, "not an image Pillow can read"),
        ("truncated.png", bomb_png(20)[:30], 2, "not an image Pillow can read"),
        ("bomb.png", bomb_png(60000), 2, "too many pixels"),
        ("missing.png", None, 2, "no such file"),
        ("folder.png", "dir", 2, "not an image Pillow can read"),
    ],
)
def test_predict_names_a_bad_image(model_file, tmp_path, capsys, name, data, code, words):
    path = tmp_path / name
    if data == "dir":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    assert main(["predict", str(model_file), str(path)]) == code
    err = capsys.readouterr().err
    assert words in err and name in err


@pytest.mark.parametrize("command", ["predict", "evaluate", "graph"])
def test_model_commands_name_a_missing_or_bad_model_file(tmp_path, capsys, command):
    extra = [str(tmp_path / "x.png")] if command == "predict" else []
    # Regression: a missing file was a FileNotFoundError traceback.
    assert main([command, str(tmp_path / "nope.safetensors"), *extra]) in (1, 2)
    err = capsys.readouterr().err
    assert "nope.safetensors" in err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    assert main([command, str(bad), *extra]) == 2
    assert "bad.safetensors: not a valid safetensors file" in capsys.readouterr().err


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--lr", "0"], "--lr: must be a positive finite number"),
        (["--lr", "inf"], "--lr"),
        (["--epochs", "-3"], "--epochs: must be at least 1"),
        (["--epochs", "2.5"], "--epochs: expected a whole number"),
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--checkpoint-every", "-1"], "--checkpoint-every: must be at least 0"),
        (["--dropout", "1"], "--dropout: must be in [0, 1)"),
        (["--hidden", "0"], "--hidden"),
        (["--dtype", "float16"], "--dtype"),
        (["--activation", "gelu"], "gelu"),
    ],
)
def test_bad_train_flags_are_usage_errors(tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) as info:
        main(["train", *args, "--out", str(tmp_path / "run")])
    assert info.value.code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_option_combinations(tmp_path, capsys):
    assert main(["train", "--model", "two-layer", "--hidden", "10,10", "--out", str(tmp_path / "a")]) == 2
    assert "use --model mlp" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "train-images-idx3-ubyte" in capsys.readouterr().err  # an empty folder is no data set


def test_force_removes_the_other_runs_files_first(finished_run, tmp_path, capsys):
    # Regression: --force left the other run's checkpoint, which --resume would then have
    # continued under this run's settings if this run stopped before its first checkpoint.
    run = copy_run(finished_run, tmp_path / "run")
    (run / "notes.txt").write_text("the user's own file")
    code = main(["train", "--force", "--out", str(run), "--lr", "1e4", "--optimizer", "sgd", "--quiet"])
    assert code == 2 and "diverged" in capsys.readouterr().err  # stops before any checkpoint
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "notes.txt"]
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    assert "stopped before its first checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(run)]) == 0
    return run


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir()
    for p in run.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--lr", "0.5"], "only --epochs may change (got ['lr'])"),
        (["--lr=0.5"], "got ['lr']"),  # regression: --opt=value was not seen
        (["--batch-s", "50"], "got ['batch_size']"),  # regression: abbreviations were not seen
        (["--batchnorm", "--seed", "0"], "got ['batchnorm', 'seed']"),
        (["--out", "elsewhere"], "--out and --force do not apply"),
        (["--force"], "--out and --force do not apply"),
    ],
)
def test_resume_refuses_changed_settings(finished_run, tmp_path, capsys, argv, words):
    # In-process: the options are read from main's argv, not sys.argv (regression).
    run = copy_run(finished_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--quiet", *argv]) == 2
    assert words in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"model": "mlp"}', "missing setting(s) dataset"),
        (None, "invalid setting(s) model='resnet'"),
        (None, "invalid setting(s) epochs=-1"),
        (None, "invalid setting(s) hidden=[0]"),
    ],
)
def test_resume_names_a_damaged_config(finished_run, tmp_path, capsys, config, words):
    # Regression: a damaged config.json was a JSONDecodeError or KeyError traceback.
    run = copy_run(finished_run, tmp_path / "run")
    if config is None:
        settings = json.loads((run / "config.json").read_text())
        key, _, value = words.partition("setting(s) ")[2].partition("=")
        settings[key] = json.loads(value.replace("'", '"'))
        config = json.dumps(settings).encode()
    (run / "config.json").write_bytes(config)
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert words in err and "config.json" in err


def test_resume_with_a_checkpoint_of_another_architecture(finished_run, tmp_path, capsys):
    other = tmp_path / "mlp"
    assert main(["train", "--model", "mlp", "--hidden", "8", "--epochs", "1", "--quiet", "--out", str(other)]) == 0
    run = copy_run(finished_run, tmp_path / "run")
    (run / CHECKPOINT_NAME).write_bytes((other / CHECKPOINT_NAME).read_bytes())
    before = (run / "model.safetensors").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "different architecture (MultiLayerNet)" in err
    assert (run / "model.safetensors").read_bytes() == before


def test_resume_with_a_missing_or_corrupt_checkpoint(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    (run / CHECKPOINT_NAME).write_bytes((run / CHECKPOINT_NAME).read_bytes()[:-100])
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    assert "not a valid safetensors file" in capsys.readouterr().err
    (run / CHECKPOINT_NAME).unlink()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    assert "stopped before its first checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "no config.json" in capsys.readouterr().err


# -- downloads cut mid-file (a raw server on 127.0.0.1) --------------------------------------------


class CuttingServer:
    """Serves one body per path, misbehaving as the path says:

    /good/F    the whole file;
    /nolength/F  no Content-Length, half the body, then a clean close (a cut the client
               cannot count; the gzip/IDX check must catch it);
    /reset/F   Content-Length, half the body, then a TCP reset;
    /stall/F   Content-Length, half the body, then silence until the client gives up.
    """

    def __init__(self, body: bytes) -> None:
        self.body, self.requests = body, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/{kind}/"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            request = conn.recv(65536).decode("latin-1")
            kind = request.split(" ")[1].split("/")[1]
            self.requests.append(kind)
            half = self.body[: len(self.body) // 2]
            head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
            if kind == "good":
                conn.sendall(f"{head}Content-Length: {len(self.body)}\r\n\r\n".encode() + self.body)
            elif kind == "nolength":
                conn.sendall(f"{head}\r\n".encode() + half)
            elif kind == "reset":
                conn.sendall(f"{head}Content-Length: {len(self.body)}\r\n\r\n".encode() + half)
                time.sleep(0.05)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif kind == "stall":
                conn.sendall(f"{head}Content-Length: {len(self.body)}\r\n\r\n".encode() + half)
                self.stop.wait(5)

    def __enter__(self) -> CuttingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


IMAGES = np.arange(60 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(60, 28, 28)
PACKED = gzip.compress(idx_bytes(IMAGES), mtime=0)
MD5 = hashlib.md5(idx_bytes(IMAGES)).hexdigest()


def verify(path: Path, url: str) -> np.ndarray:
    return read_idx(path, md5=MD5, name=url)


def test_cut_transfers_fall_through_to_the_next_mirror(tmp_path):
    with CuttingServer(PACKED) as server:
        mirrors = [server.url(k) for k in ("nolength", "reset", "stall", "good")]
        path, images = download("f.gz", mirrors, tmp_path, verify, progress=False, timeout=0.5)
    np.testing.assert_array_equal(images, IMAGES)
    assert server.requests == ["nolength", "reset", "stall", "good"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gz"] and path.read_bytes() == PACKED


def test_every_mirror_cut_lists_what_was_tried_and_keeps_nothing(tmp_path):
    with CuttingServer(PACKED) as server:
        mirrors = [server.url(k) for k in ("nolength", "reset", "stall")]
        with pytest.raises(DownloadError) as info:
            download("f.gz", mirrors, tmp_path, verify, progress=False, timeout=0.5)
    message = str(info.value)
    for m in mirrors:
        assert f"{m}f.gz" in message
    assert "truncated gzip" in message  # no length: caught by the format check
    assert "reset" in message.lower()
    assert "timed out after 0.5 s" in message
    assert list(tmp_path.iterdir()) == []


# -- hostile files through the command line ---------------------------------------------------------


def test_import_book_refuses_a_malicious_pickle_and_writes_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    pkl = tmp_path / "params.pkl"
    pkl.write_bytes(pickle.dumps({"W1": np.ones((2, 2)), "b1": Payload()}, protocol=2, fix_imports=False))
    out = tmp_path / "out.safetensors"
    assert main(["import-book", str(pkl), "--arch", "two-layer", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "system" in err and "refused without calling it" in err and "params.pkl" in err
    assert not marker.exists() and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["params.pkl"]


def test_model_file_asking_for_a_gigantic_network_is_refused(tmp_path):
    # Regression: a config of a few bytes asking for terabytes escaped as MemoryError.
    from safetensors.numpy import save_file

    good = lw.save(lw.TwoLayerNet(4, 5, 3, seed=0), tmp_path / "good.safetensors")
    doc = lw.io.read_metadata(good)
    for kwargs in ({"hidden_size": 10**12}, {"input_size": 10**9, "hidden_size": 10**9}):
        doc["model"]["kwargs"].update(kwargs)
        path = tmp_path / "huge.safetensors"
        save_file({"W1": np.zeros((4, 5), np.float32)}, path, metadata={"layerwise": json.dumps(doc)})
        with pytest.raises(FormatError, match=r"cannot be rebuilt.*asks for more than"):
            lw.load(path)



def test_optimizer_metadata_of_the_wrong_shape_is_a_format_error(tmp_path):
    # Regression (found by test_fuzz.py): "hyper": [""] escaped as a ValueError from dict().
    from safetensors.numpy import load_file, save_file

    path = lw.save(lw.TwoLayerNet(4, 5, 3, seed=0), tmp_path / "m.safetensors", optimizer=lw.SGD())
    doc = lw.io.read_metadata(path)
    doc["optimizer"]["hyper"] = [""]
    save_file(load_file(path), path, metadata={"layerwise": json.dumps(doc)})
    with pytest.raises(FormatError, match="invalid optimizer state"):
        lw.load_checkpoint(path)


def test_pickle_with_a_giant_memo_index_is_refused_at_once(tmp_path):
    # Regression (found by test_fuzz.py): LONG_BINPUT 1216737112, 5 bytes, made CPython's
    # unpickler allocate and zero a ~19 GB memo table (a minute, and most of the memory).
    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x02}r" + struct.pack("<I", 1216737112) + b".")
    with pytest.raises(FormatError, match="memo entry 1216737112, impossible in a file of 9 bytes"):
        lw.load_book_params(path)  # refused by the opcode scan, before any unpickling


def test_pickle_with_a_huge_length_prefix_is_refused(tmp_path):
    path = tmp_path / "huge.pkl"
    path.write_bytes(b"\x80\x05\x96" + struct.pack("<Q", 2**62) + b"x.")
    with pytest.raises(FormatError, match="bytearray8"):
        lw.load_book_params(path)


FORGED_DTYPE = pickle.dumps({"n": np.arange(3)}, protocol=0).replace(b"I-1\nI-1\nI0\nt", b"I-1\nI-1\nI25\nt")


def test_pickle_with_a_forged_dtype_state_is_refused(tmp_path):
    # Regression (found by test_fuzz.py): flags 25 in an int64 dtype's state make NumPy treat
    # the array's integers as object pointers (decremented when the array is freed).
    path = tmp_path / "forged.pkl"
    path.write_bytes(FORGED_DTYPE)
    with pytest.raises(FormatError, match=r"refused to set the state of a Int64DType to \(3, '<'.*25\)"):
        lw.load_book_params(path)


def test_the_forged_dtype_state_is_live():
    """Control for the test above: a plain unpickler builds the poisoned dtype (in a child
    process, which exits without freeing the array)."""
    import subprocess
    import sys

    code = ("import os, pickle, sys; a = pickle.loads(sys.stdin.buffer.read())['n']; "
            "print(a.dtype.flags, a.dtype.hasobject, flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code], input=FORGED_DTYPE, capture_output=True, timeout=60)
    assert done.stdout.split() == [b"25", b"True"], done


@pytest.mark.parametrize(
    "raw",
    [
        pickle.dumps({"W": np.array([1, "a"], dtype=object)}, protocol=2),  # object dtype
        pickle.dumps({"W": np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])}, protocol=2),  # structured
        b"cnumpy\ndtype\n(Vf8\nI60\nI01\ntR.",  # NumPy's deprecated align=60
        b"\x80\x02ccollections\nOrderedDict\n)R}b.",  # BUILD on a container
    ],
    ids=["object", "structured", "align-warning", "build-container"],
)
def test_pickles_beyond_plain_numeric_arrays_are_format_errors(tmp_path, raw):
    path = tmp_path / "odd.pkl"
    path.write_bytes(raw)
    with pytest.raises(FormatError) as info:
        lw.load_book_params(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("dtype", "shape"), [("BF16", [4, 10]), ("F8_E4M3", [4, 20])])
def test_model_file_with_tensors_numpy_cannot_hold(tmp_path, dtype, shape):
    # Regression: a bfloat16 tensor (PyTorch's favourite) escaped as TypeError, an 8-bit
    # float one as AttributeError. The tensor keeps its byte size, so the header is valid.
    path = lw.save(lw.TwoLayerNet(4, 5, 3, seed=0, dtype=np.float32), tmp_path / "m.safetensors")
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["W1"].update(dtype=dtype, shape=shape)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    with pytest.raises(FormatError, match="holds a tensor NumPy cannot represent"):
        lw.load(path)
