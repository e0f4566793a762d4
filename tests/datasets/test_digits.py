"""The bundled 8x8 digits: contents, the fixed stratified split, and the book's options."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from layerwise.datasets import load_digits
from layerwise.datasets.digits import TEST_EVERY, _raw, split_indices
from layerwise.errors import InputError

# Class sizes of the 1,797-image copy (scikit-learn's load_digits reports the same).
CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_bundled_file_and_attribution_are_shipped():
    data = resources.files("layerwise.datasets").joinpath("data")
    packed = data.joinpath("digits.csv.gz").read_bytes()
    assert hashlib.md5(packed).hexdigest() == "9b335364a7bfd63947c7480a5bd51f2d"
    note = data.joinpath("ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in note and "Alpaydin" in note


def test_contents():
    images, labels = _raw()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.max() == 16 and images.min() == 0
    assert np.bincount(labels).tolist() == CLASS_COUNTS
    # The first image is the well-known "0" of the UCI file.
    assert images[0, 1].tolist() == [0, 0, 13, 15, 10, 15, 5, 0]
    assert labels[:10].tolist() == list(range(10))


def test_split_sizes_and_stratification():
    (x, t), (xe, te) = load_digits()
    assert x.shape == (1442, 64) and xe.shape == (355, 64)
    assert t.shape == (1442,) and te.shape == (355,)
    test_counts = np.bincount(te, minlength=10)
    assert test_counts.tolist() == [n // TEST_EVERY for n in CLASS_COUNTS]
    fractions = test_counts / np.array(CLASS_COUNTS)
    assert np.all((fractions > 0.19) & (fractions <= 0.2))
    assert (np.bincount(t) + test_counts).tolist() == CLASS_COUNTS


def test_split_is_a_partition_following_the_fixed_rule():
    _, labels = _raw()
    train, test = split_indices(labels)
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).tolist() == list(range(1797))
    # The rule itself, spelled out independently: the 5th, 10th, ... image of each class.
    seen = np.zeros(10, int)
    expected = []
    for i, c in enumerate(labels):
        seen[c] += 1
        if seen[c] % 5 == 0:
            expected.append(i)
    assert test.tolist() == expected


def test_images_match_split_indices_and_are_deterministic():
    images, labels = _raw()
    train, test = split_indices(labels)
    (x, t), (xe, te) = load_digits(normalize=False, flatten=False)
    np.testing.assert_array_equal(x[:, 0], images[train])
    np.testing.assert_array_equal(xe[:, 0], images[test])
    np.testing.assert_array_equal(t, labels[train])
    (x2, t2), (xe2, te2) = load_digits(normalize=False, flatten=False)
    for a, b in [(x, x2), (t, t2), (xe, xe2), (te, te2)]:
        np.testing.assert_array_equal(a, b)


def test_options():
    (x, t), _ = load_digits(normalize=False, flatten=False)
    assert x.shape == (1442, 1, 8, 8) and x.dtype == np.uint8 and x.max() == 16
    assert t.dtype == np.uint8
    (xn, _), _ = load_digits()
    assert xn.dtype == np.float32 and xn.min() == 0.0 and xn.max() == 1.0
    np.testing.assert_array_equal(xn, x.reshape(1442, 64) / np.float32(16))
    (_, t32), _ = load_digits(one_hot_label=True)  # float32 images, float64 one-hot as in the book
    assert t32.dtype == np.float64
    (x64, th), _ = load_digits(one_hot_label=True, dtype=np.float64)
    assert x64.dtype == np.float64 and th.shape == (1442, 10) and th.dtype == np.float64
    np.testing.assert_array_equal(th.argmax(axis=1), t)
    assert np.all(th.sum(axis=1) == 1)
    with pytest.raises(InputError, match="floating"):
        load_digits(dtype=np.uint8)


def test_returned_arrays_are_fresh_and_writable():
    (x, t), _ = load_digits(normalize=False)
    x[:] = 0
    t[:] = 0
    (x2, t2), _ = load_digits(normalize=False)
    assert x2.max() == 16 and t2.max() == 9
