"""What goes over HTTP (layerwise.serve.payloads): request fields checked with errors naming
the field and the value, and NumPy values as the JSON the page draws (no NaN in JSON)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from layerwise.serve.payloads import (
    ACTIVATION_CHANNELS,
    FULL_MAX,
    HEAT_MAX,
    RequestError,
    image_field,
    int_field,
    json_body,
    value_json,
)


def refused(call, *words, status=422):
    with pytest.raises(RequestError) as info:
        call()
    assert info.value.status == status
    for word in words:
        assert word in info.value.message, (word, info.value.message)
    return info.value.message


# -- request fields ------------------------------------------------------------------------------


def test_json_body():
    assert json_body(b' {"a": 1} ') == {"a": 1}
    assert json_body('{"é": "ü"}'.encode()) == {"é": "ü"}
    refused(lambda: json_body(b""), "empty", status=400)
    refused(lambda: json_body(b'{"a": }'), "malformed JSON at line 1, column 7", status=400)
    refused(lambda: json_body(b"[]"), "must be a JSON object, got list", status=400)
    refused(lambda: json_body(b"\x80\x81"), status=400)
    refused(lambda: json_body(b"[" * 50_000 + b"]" * 50_000), "JSON", status=400)
    refused(lambda: json_body(b'{"n": ' + b"1" * 5000 + b"}"), "unreadable JSON", status=400)


def test_image_field():
    rows = [[0, 0.5, 1], [1, 0.25, 0]]
    image = image_field({"image": rows}, 2, 3)
    assert image.dtype == np.float64 and image.shape == (2, 3)
    np.testing.assert_array_equal(image, rows)
    assert image_field({"pic": rows}, 2, 3, name="pic").shape == (2, 3)
    refused(lambda: image_field({}, 2, 3), "missing field 'image'", "2 rows of 3")
    refused(lambda: image_field({"image": rows}, 3, 2), "wrong shape", "got 2 rows of [3] numbers", "3 rows of 2")
    refused(lambda: image_field({"image": [[0, 0, 0], [0, 0]]}, 2, 3), "[2, 3]")
    refused(lambda: image_field({"image": [[0, 0, 0], [0, "x", 0]]}, 2, 3), 'row 1, column 1 is "x"')
    refused(lambda: image_field({"image": [[0, 0, 0], [0, 0, math.inf]]}, 2, 3), "row 1, column 2 is inf")
    refused(lambda: image_field({"image": [[0, 0, 1.0000001], [0, 0, 0]]}, 2, 3), "row 0, column 2", "outside")
    refused(lambda: image_field({"image": [[0, 0, 2], [0, 0, 0]]}, 2, 3), "row 0, column 2 is 2, outside")
    refused(lambda: image_field({"image": [[0, 0, 0], [0, 10**400, 0]]}, 2, 3),
            "row 1, column 1 is an integer of 401 digits, outside")


def test_int_field():
    assert int_field({"n": 3}, "n", 0, 5) == 3
    assert int_field({"n": 3.0}, "n", 0, 5) == 3
    assert int_field({}, "n", 0, 5, 2) == 2 and int_field({"n": None}, "n", 0, 5, 2) == 2
    assert int_field({"n": 0}, "n", 0, 5) == 0 and int_field({"n": 5}, "n", 0, 5) == 5
    refused(lambda: int_field({}, "n", 0, 5), "missing field 'n'", "0 to 5")
    for bad, shown in ((6, "6"), (-1, "-1"), (True, "true"), ("2", '"2"'), (2.5, "2.5"), ([1], "[1]"),
                       (math.nan, "NaN"), (math.inf, "Infinity")):
        refused(lambda bad=bad: int_field({"n": bad}, "n", 0, 5), "field 'n'", "0 to 5", f"got {shown}")


# -- values as JSON --------------------------------------------------------------------------------


def test_scalars_and_none():
    assert value_json(None) is None
    assert value_json(220.00000000000003) == {"kind": "scalar", "value": 220.00000000000003, "text": "220"}
    assert value_json(np.float32(0.5)) == {"kind": "scalar", "value": 0.5, "text": "0.5"}
    assert value_json(np.array(1.25))["value"] == 1.25
    assert value_json(3)["value"] == 3.0
    assert value_json(True) == {"kind": "scalar", "value": True, "text": "True"}
    assert value_json(np.bool_(False))["value"] is False
    nan = value_json(math.nan)
    assert nan["value"] is None and nan["text"] == "nan"


def test_arrays():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = value_json(a)
    assert out["kind"] == "array" and out["shape"] == [3, 4] and out["dtype"] == "float32" and out["size"] == 12
    assert out["first"] == list(range(8)) and out["values"] == list(range(12))
    assert out["text"] == "(3, 4) [0 1 2 …]"
    heat = out["heat"]
    assert (heat["rows"], heat["cols"], heat["min"], heat["max"], heat["shrunk"]) == (3, 4, 0, 11, False)
    assert heat["values"] == list(range(12))
    assert value_json(np.array([1, 2, 3]))["values"] == [1.0, 2.0, 3.0]
    assert value_json(np.array([True, False]))["shape"] == [2]
    empty = value_json(np.zeros((0, 3)))
    assert empty["size"] == 0 and "heat" not in empty and empty["values"] == []
    json.dumps(out, allow_nan=False)


def test_non_finite_numbers_are_null():
    out = value_json(np.array([1.0, np.nan, np.inf, -np.inf]))
    assert out["values"] == [1.0, None, None, None] and out["first"] == [1.0, None, None, None]
    assert out["heat"]["min"] == out["heat"]["max"] == 1.0
    all_nan = value_json(np.full(3, np.nan))
    assert all_nan["heat"]["min"] == all_nan["heat"]["max"] == 0.0
    json.dumps(out, allow_nan=False)
    json.dumps(all_nan, allow_nan=False)


def test_a_large_array_is_shrunk_and_sent_whole_only_when_asked():
    a = np.random.default_rng(0).random((2 * HEAT_MAX + 1, 50))
    assert a.size > FULL_MAX
    short = value_json(a)
    assert "values" not in short and len(short["first"]) == 8
    heat = short["heat"]
    assert heat["shrunk"] and heat["rows"] <= HEAT_MAX and heat["cols"] == 50
    assert len(heat["values"]) == heat["rows"] * heat["cols"]
    assert heat["min"] == pytest.approx(a.min()) and heat["max"] == pytest.approx(a.max())
    # Block means: the first cell of the heat map is the mean of its block of rows.
    fr = math.ceil(a.shape[0] / HEAT_MAX)
    assert heat["values"][0] == pytest.approx(a[:fr, 0].mean())
    full = value_json(a, full=True)
    assert full["values"] == a.reshape(-1).tolist()
    # Images (N, C, H, W): each sample's rows, its channels side by side, so each looks like one.
    images = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    conv = value_json(images)
    assert (conv["heat"]["rows"], conv["heat"]["cols"]) == (2 * 4, 3 * 5)
    grid = np.array(conv["heat"]["values"]).reshape(8, 15)
    assert (grid[4:8, 5:10] == images[1, 1]).all()  # sample 1, channel 1
    # ... at most ACTIVATION_CHANNELS of them.
    many = value_json(np.zeros((1, ACTIVATION_CHANNELS + 5, 3, 3)))
    assert many["heat"]["cols"] == ACTIVATION_CHANNELS * 3
