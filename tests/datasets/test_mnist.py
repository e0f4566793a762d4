"""MNIST / Fashion-MNIST loading: local search, verified downloads from mirrors (a local HTTP
server plays them), atomic caching, the real files, and load_idx_dir / load_dataset."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
from _datasets_server import MirrorServer, refused_url
from conftest import require_fixture

from layerwise.datasets import (
    DATASETS,
    fetch_dataset,
    idx_md5,
    load_dataset,
    load_fashion_mnist,
    load_idx_dir,
    load_mnist,
    read_idx,
    write_idx,
)
from layerwise.datasets import mnist as mnist_module
from layerwise.datasets.download import download
from layerwise.datasets.idx import idx_bytes
from layerwise.datasets.mnist import FILES
from layerwise.errors import DownloadError, FormatError, InputError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_tiny(seed: int, n_train: int = 12, n_test: int = 5, hw: tuple[int, int] = (4, 3)):
    """A small MNIST-like data set: {file name: array}."""
    rng = np.random.default_rng(seed)
    return {
        FILES[0]: rng.integers(0, 256, size=(n_train, *hw), dtype=np.uint8),
        FILES[1]: ((np.arange(n_train) + seed) % 10).astype(np.uint8),
        FILES[2]: rng.integers(0, 256, size=(n_test, *hw), dtype=np.uint8),
        FILES[3]: ((np.arange(n_test) + seed) % 10).astype(np.uint8),
    }


def gz_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {f"{name}.gz": gzip.compress(idx_bytes(a)) for name, a in arrays.items()}


def md5s(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {name: hashlib.md5(idx_bytes(a)).hexdigest() for name, a in arrays.items()}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated environment: cache under tmp_path, no LAYERWISE_* variables, and an "mnist"
    whose published checksums are those of a tiny generated data set."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.delenv("LAYERWISE_MIRRORS", raising=False)
    tiny = make_tiny(0)
    spec = dataclasses.replace(DATASETS["mnist"], md5=md5s(tiny))
    monkeypatch.setitem(DATASETS, "mnist", spec)
    # No real mirror may ever be contacted from the tests.
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", [])
    cache = mnist_module.cache_dir() / "mnist"
    assert str(cache).startswith(str(tmp_path))
    return tiny, cache


@pytest.fixture
def server():
    with MirrorServer() as srv:
        yield srv


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def check_tiny(result, tiny):
    (x_tr, t_tr), (x_te, t_te) = result
    assert x_tr.shape == (12, 12) and x_tr.dtype == np.float32
    assert x_te.shape == (5, 12)
    np.testing.assert_array_equal(x_tr, tiny[FILES[0]].reshape(12, -1) / np.float32(255))
    np.testing.assert_array_equal(t_tr, tiny[FILES[1]])
    np.testing.assert_array_equal(t_te, tiny[FILES[3]])


# --- downloads -------------------------------------------------------------------------------


def test_download_verifies_caches_and_second_call_makes_no_request(env, server, capsys):
    tiny, cache = env
    good = server.serve("good", gz_files(tiny))
    check_tiny(load_mnist(mirrors=[good]), tiny)  # progress=True, but stderr is not a TTY
    assert capsys.readouterr().err == ""
    assert len(server.requests) == 4
    assert files_in(cache) == sorted(f"{f}.gz" for f in FILES)
    for f in FILES:
        assert idx_md5(cache / f"{f}.gz") == DATASETS["mnist"].md5[f]
    # Cache hit: no request at all (an unreachable mirror list proves it too).
    check_tiny(load_mnist(mirrors=[refused_url()], progress=False), tiny)
    assert len(server.requests) == 4


def test_bad_checksum_tries_next_mirror_and_is_never_cached(env, server):
    tiny, cache = env
    bad = server.serve("bad", gz_files(make_tiny(1)))  # valid IDX, wrong content
    good = server.serve("good", gz_files(tiny))
    check_tiny(load_mnist(mirrors=[bad, good], progress=False), tiny)
    assert [r.split("/")[1] for r in server.requests] == ["bad", "good"] * 4
    for f in FILES:  # what is cached is the good file
        assert idx_md5(cache / f"{f}.gz") == DATASETS["mnist"].md5[f]
    assert files_in(cache) == sorted(f"{f}.gz" for f in FILES)


def test_dead_mirrors_then_a_good_one(env, server):
    tiny, _ = env
    html = server.serve("html", {f"{f}.gz": b"<html><body>Login</body></html>" for f in FILES},
                        kind="html")
    missing = server.url("missing")  # 404 for everything
    good = server.serve("good", gz_files(tiny))
    check_tiny(load_mnist(mirrors=[refused_url(), missing, html, good], progress=False), tiny)


def test_truncated_transfer_is_rejected(env, server):
    tiny, cache = env
    cut = server.serve("cut", gz_files(tiny), kind="truncated")
    with pytest.raises(DownloadError, match=r"truncated transfer: received \d+ of \d+ bytes"):
        load_mnist(mirrors=[cut], progress=False)
    assert files_in(cache) == []
    good = server.serve("good", gz_files(tiny))
    check_tiny(load_mnist(mirrors=[cut, good], progress=False), tiny)


def test_all_mirrors_bad_lists_every_url_and_leaves_nothing(env, server):
    _, cache = env
    dead = refused_url()
    missing = server.url("missing")
    html = server.serve("html", {f"{FILES[0]}.gz": b"<html></html>"}, kind="html")
    bad = server.serve("bad", gz_files(make_tiny(1)))
    mirrors = [dead, missing, html, bad]
    with pytest.raises(DownloadError) as info:
        load_mnist(mirrors=mirrors, progress=False)
    message = str(info.value)
    assert f"could not download {FILES[0]}.gz" in message
    for m in mirrors:
        assert f"{m}{FILES[0]}.gz" in message
    assert "HTTP 404" in message
    assert "HTML page" in message
    assert "checksum mismatch" in message
    assert "refused" in message.lower()
    assert files_in(cache) == []  # not even a temporary file


def test_silent_server_times_out(tmp_path):
    with socket.socket() as listener:  # accepts connections (kernel backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(DownloadError, match=r"timed out after 0.3 s"):
            download("f.gz", [url], tmp_path, lambda p, u: None, progress=False, timeout=0.3)
    assert files_in(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path, server):
    url = server.serve("m", {"f.gz": b"payload"})

    def interrupted(path, url):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download("f.gz", [url], tmp_path, interrupted, progress=False)
    assert files_in(tmp_path) == []
    path, value = download("f.gz", [url], tmp_path, lambda p, u: p.read_bytes(), progress=False)
    assert value == b"payload" and path.read_bytes() == b"payload"
    assert files_in(tmp_path) == ["f.gz"]


def test_mirror_list_from_env_and_module(env, server, monkeypatch):
    tiny, _ = env
    server.serve("mirror/mnist", gz_files(tiny))
    monkeypatch.setenv("LAYERWISE_MIRRORS", f"{refused_url()} , {server.base}/mirror/{{dataset}}")
    check_tiny(load_mnist(progress=False), tiny)
    assert mnist_module.mirrors_for("mnist", ["x"]) == ["x"]  # the argument wins

    monkeypatch.delenv("LAYERWISE_MIRRORS")
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", [server.url("mirror/mnist")])
    mnist_module.cache_dir().joinpath("mnist", f"{FILES[0]}.gz").unlink()
    before = len(server.requests)
    check_tiny(load_mnist(progress=False), tiny)
    assert len(server.requests) == before + 1  # only the missing file was fetched


def test_download_false_and_nothing_local(env):
    with pytest.raises(DownloadError, match=r"not found in .* and download=False"):
        load_mnist(download=False)


def test_corrupt_cached_file_is_replaced(env, server):
    tiny, cache = env
    good = server.serve("good", gz_files(tiny))
    load_mnist(mirrors=[good], progress=False)
    (cache / f"{FILES[2]}.gz").write_bytes(gzip.compress(b"garbage"))
    with pytest.warns(RuntimeWarning, match="removing it from the cache"):
        check_tiny(load_mnist(mirrors=[good], progress=False), tiny)
    assert idx_md5(cache / f"{FILES[2]}.gz") == DATASETS["mnist"].md5[FILES[2]]


# --- local folders ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["subfolder", "root", "data_dir"])
def test_local_files_found_without_network(env, tmp_path, monkeypatch, layout):
    tiny, cache = env
    root = tmp_path / "data"
    folder = root / "mnist" if layout == "subfolder" else root
    for i, (name, a) in enumerate(tiny.items()):
        write_idx(folder / (name + (".gz" if i % 2 else "")), a)  # raw and .gz mixed
    if layout == "data_dir":
        result = load_mnist(data_dir=root, download=False)
    else:
        monkeypatch.setenv("LAYERWISE_DATA", str(root))
        result = load_mnist(download=False)
    check_tiny(result, tiny)
    assert files_in(cache) == []


def test_corrupt_user_file_is_an_error_and_kept(env, tmp_path, monkeypatch):
    tiny, _ = env
    folder = tmp_path / "data" / "mnist"
    for name, a in tiny.items():
        write_idx(folder / f"{name}.gz", a)
    bad = folder / f"{FILES[1]}.gz"
    write_idx(bad, np.zeros(12, np.uint8))
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "data"))
    with pytest.raises(FormatError, match="checksum mismatch") as info:
        load_mnist()
    assert str(bad) in str(info.value) and "Delete or replace it" in str(info.value)
    assert bad.exists()


def test_other_datasets_file_is_named(tmp_path, monkeypatch):
    """A Fashion-MNIST file where MNIST's should be: the error says whose it is."""
    fashion = require_fixture(FASHION_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LAYERWISE_DATA", str(fashion))
    with pytest.raises(FormatError, match="it is Fashion-MNIST's train-images-idx3-ubyte"):
        load_mnist(download=False)


def test_label_count_mismatch_names_both_files(tmp_path):
    tiny = make_tiny(0)
    tiny[FILES[3]] = tiny[FILES[3]][:4]
    for name, a in tiny.items():
        write_idx(tmp_path / name, a)
    with pytest.raises(FormatError) as info:
        load_idx_dir(tmp_path)
    message = str(info.value)
    assert "4 labels" in message and "5 images" in message
    assert str(tmp_path / FILES[3]) in message and str(tmp_path / FILES[2]) in message


def test_load_idx_dir_options(tmp_path):
    tiny = make_tiny(3, hw=(5, 6))
    for name, a in tiny.items():
        write_idx(tmp_path / f"{name}.gz", a)
    (x, t), (xe, te) = load_idx_dir(tmp_path, normalize=False, flatten=False, one_hot_label=True)
    assert x.shape == (12, 1, 5, 6) and x.dtype == np.uint8
    assert xe.shape == (5, 1, 5, 6) and te.shape == (5, 10)
    np.testing.assert_array_equal(x[:, 0], tiny[FILES[0]])
    assert t.shape == (12, 10) and t.dtype == np.float64  # the book's one-hot dtype
    np.testing.assert_array_equal(t.argmax(1), tiny[FILES[1]])
    (x, _), _ = load_idx_dir(tmp_path, dtype=np.float64)
    assert x.dtype == np.float64 and x.shape == (12, 30) and 0 <= x.min() and x.max() <= 1
    (tmp_path / f"{FILES[3]}.gz").unlink()
    with pytest.raises(InputError, match="missing IDX file"):
        load_idx_dir(tmp_path)


def test_load_idx_dir_rejects_bad_labels(tmp_path):
    tiny = make_tiny(0)
    tiny[FILES[1]] = np.full(12, 3, dtype=np.float32)  # labels must be integers
    for name, a in tiny.items():
        write_idx(tmp_path / name, a)
    with pytest.raises(FormatError, match="integer labels"):
        load_idx_dir(tmp_path)


def test_load_dataset_dispatch(tmp_path, env, monkeypatch):
    tiny, _ = env
    for name, a in tiny.items():
        write_idx(tmp_path / "dir" / name, a)
    check_tiny(load_dataset(str(tmp_path / "dir")), tiny)
    (x, _), _ = load_dataset("digits", flatten=False)
    assert x.shape[1:] == (1, 8, 8)
    monkeypatch.setenv("LAYERWISE_DATA", str(tmp_path / "dir"))
    check_tiny(load_dataset("MNIST", progress=False), tiny)
    with pytest.raises(InputError, match=r"unknown dataset 'cifar10'.*digits, mnist, fashion-mnist"):
        load_dataset("cifar10")
    with pytest.raises(InputError, match="floating"):
        load_dataset("mnist", dtype=np.int32)


# --- the real files --------------------------------------------------------------------------


def test_real_fashion_mnist_from_debian_package(tmp_path, monkeypatch):
    folder = require_fixture(FASHION_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    monkeypatch.setitem(mnist_module.MIRRORS, "fashion-mnist", [])
    (x, t), (xe, te) = load_fashion_mnist(download=False)  # verifies all four checksums
    assert x.shape == (60000, 784) and xe.shape == (10000, 784)
    assert x.dtype == np.float32 and 0.0 == x.min() and x.max() == 1.0
    assert t.dtype == np.uint8
    assert np.bincount(t).tolist() == [6000] * 10
    assert np.bincount(te).tolist() == [1000] * 10
    # Found in the system folder, not downloaded.
    paths = fetch_dataset("fashion-mnist", download=False)
    assert all(p.parent == folder for p in paths.values())
    assert files_in(tmp_path / "cache") == []


def test_real_mnist_test_files_match_published_md5(mnist_t10k_dir, tmp_path, monkeypatch):
    published = DATASETS["mnist"].md5
    images = read_idx(mnist_t10k_dir / "t10k-images-idx3-ubyte.gz", md5=published[FILES[2]])
    labels = read_idx(mnist_t10k_dir / "t10k-labels-idx1-ubyte.gz", md5=published[FILES[3]])
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(labels).tolist() == counts

    # Files are searched one by one: the real test files from LAYERWISE_DATA, tiny (28x28)
    # training files from a data set whose train checksums we patch in.
    train = make_tiny(5, n_train=20, hw=(28, 28))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LAYERWISE_DATA", str(mnist_t10k_dir))
    for name in FILES[:2]:
        write_idx(mnist_module.cache_dir() / "mnist" / f"{name}.gz", train[name])
    md5 = {**published, **{f: m for f, m in md5s(train).items() if f in FILES[:2]}}
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], md5=md5))
    (x, _), (xe, te) = load_mnist(flatten=False, one_hot_label=True, download=False)
    assert x.shape == (20, 1, 28, 28) and xe.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(xe[:, 0], images / np.float32(255))
    assert te.shape == (10000, 10) and te.sum(0).tolist() == counts


# --- present_locally: what `layerwise serve` offers without downloading ------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("layout", ["flat", "subfolder", "gz"])
def test_present_locally_finds_the_four_files(tmp_path, monkeypatch, name, layout):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], system_dirs=()))
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    root = tmp_path / "data"
    folder = root / name if layout == "subfolder" else root
    folder.mkdir(parents=True)
    assert not mnist_module.present_locally(name)
    monkeypatch.setenv("LAYERWISE_DATA", str(root))
    assert not mnist_module.present_locally(name)  # the folder alone is not the data set
    for fname in FILES[:3]:
        (folder / (fname + ".gz" if layout == "gz" else fname)).write_bytes(b"")  # presence only
    assert not mnist_module.present_locally(name)  # three of the four files
    (folder / FILES[3]).write_bytes(b"")
    assert mnist_module.present_locally(name)
    monkeypatch.delenv("LAYERWISE_DATA")
    assert not mnist_module.present_locally(name)


def test_present_locally_in_the_cache_and_of_an_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYERWISE_DATA", raising=False)
    cache = mnist_module.cache_dir() / "mnist"
    cache.mkdir(parents=True)
    for fname in FILES:
        (cache / f"{fname}.gz").write_bytes(b"")
    assert mnist_module.present_locally("mnist")
    with pytest.raises(InputError, match="unknown IDX data set 'cifar'"):
        mnist_module.present_locally("cifar")


def test_load_dataset_download_false_never_downloads(env):
    with pytest.raises(DownloadError, match="download=False"):
        load_dataset("mnist", download=False, progress=False)
    assert files_in(env[1]) == []
