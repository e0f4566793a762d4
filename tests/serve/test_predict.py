"""POST /api/predict: the probabilities are the model's, the input gradient is the gradient of
the chosen class's score (checked against central differences), the ReLU mask is where the
pre-activation is <= 0; every bad image or class is refused naming the row, column or field."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from serve_client import assert_alive, assert_error, blank, stroke

from layerwise.functional import softmax
from layerwise.gradcheck import numerical_gradient, relative_error
from layerwise.serve import ServedModel
from layerwise.serve.explain import Explainer

IMAGES = [0, 1, 7, 42, 300]


@pytest.fixture(scope="module")
def served64(served):
    """The served model in float64 (the book's dtype), to compare gradients with central differences."""
    model = copy.deepcopy(served.model).astype(np.float64)
    return ServedModel(model, "float64 copy", served.dataset, served.sample_shape, served.labels)


def score_gradient(model, image, k):
    """Central differences of class k's score with respect to the pixels (float64)."""
    def score(v):
        return float(model.predict(v.reshape(1, -1))[0, k])

    return numerical_gradient(score, np.array(image, dtype=np.float64))


@pytest.mark.parametrize("index", IMAGES)
def test_probabilities_are_the_models(client, served, index):
    x, _ = served.test_images()
    image = x[index]
    body = client.post("/api/predict", json={"image": image.tolist()}).json()
    expected = softmax(served.model.predict(image.reshape(1, -1)).astype(np.float64))[0]
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-6, atol=1e-6)
    assert abs(sum(body["probabilities"]) - 1) < 1e-9
    top = body["top"]
    assert [e["class"] for e in top] == list(np.argsort(-expected, kind="stable")[:3])
    assert [e["label"] for e in top] == [str(e["class"]) for e in top]
    assert top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"]
    assert body["class"] == top[0]["class"] == int(np.argmax(expected))
    assert np.array(body["input_gradient"]).shape == (8, 8)


def test_the_default_model_reads_the_test_digits(client, served):
    x, t = served.test_images()
    right = sum(client.post("/api/predict", json={"image": x[i].tolist()}).json()["class"] == t[i] for i in IMAGES)
    assert right >= 4  # ~97% test accuracy


@pytest.mark.parametrize("index", IMAGES)
def test_input_gradient_is_the_chosen_scores_gradient(client, served, served64, index):
    x, _ = served.test_images()
    image = x[index].astype(np.float64)
    for k in (None, 3):
        payload = {"image": image.tolist()} if k is None else {"image": image.tolist(), "class": k}
        body = client.post("/api/predict", json=payload).json()
        chosen = body["class"]
        assert k is None or chosen == k
        # float64: the layers' backward equals central differences (the score is piecewise linear).
        analytic64 = Explainer(served64).explain(image, chosen).input_gradient
        numeric = score_gradient(served64.model, image, chosen)
        assert relative_error(analytic64, numeric) < 1e-6
        # The served float32 model's gradient, over HTTP: the same to float32 rounding.
        sent = np.array(body["input_gradient"])
        scale = float(np.abs(analytic64).max())
        np.testing.assert_allclose(sent, analytic64, rtol=1e-4, atol=1e-4 * scale)


def test_a_chosen_class_changes_the_gradient_not_the_probabilities(client):
    image = stroke()
    default = client.post("/api/predict", json={"image": image}).json()
    other = (default["class"] + 1) % 10
    chosen = client.post("/api/predict", json={"image": image, "class": other}).json()
    assert chosen["class"] == other and chosen["probabilities"] == default["probabilities"]
    assert chosen["input_gradient"] != default["input_gradient"]
    # null and a whole-valued float are the default and that class.
    assert client.post("/api/predict", json={"image": image, "class": None}).json()["class"] == default["class"]
    assert client.post("/api/predict", json={"image": image, "class": float(other)}).json()["class"] == other


@pytest.mark.parametrize("index", IMAGES)
def test_activations_and_the_relu_mask(client, served, index):
    x, _ = served.test_images()
    image = x[index]
    acts = client.post("/api/predict", json={"image": image.tolist()}).json()["activations"]
    assert [(a["layer"], a["kind"], a["shape"]) for a in acts] == [
        ("Affine1", "Affine", [50]), ("Relu1", "Relu", [50]), ("Affine2", "Affine", [10])]
    pre = np.array(acts[0]["values"])
    params = served.model.params
    expected_pre = image.reshape(-1).astype(np.float64) @ params["W1"].astype(np.float64) + params["b1"]
    np.testing.assert_allclose(pre, expected_pre, rtol=1e-5, atol=1e-5)
    mask = np.array(acts[1]["mask"])
    assert mask.dtype == bool and mask.shape == (50,)
    np.testing.assert_array_equal(mask, pre <= 0)
    clear = np.abs(expected_pre) > 1e-4  # away from 0, float32 and float64 agree on the sign
    np.testing.assert_array_equal(mask[clear], (expected_pre <= 0)[clear])
    np.testing.assert_array_equal(np.array(acts[1]["values"]), np.maximum(pre, 0))
    assert acts[0]["mask"] is None and acts[2]["mask"] is None
    np.testing.assert_allclose(softmax(np.array(acts[2]["values"])[None])[0],
                               client.post("/api/predict", json={"image": image.tolist()}).json()["probabilities"],
                               rtol=1e-6, atol=1e-7)


def test_integers_and_the_ends_of_the_range_are_pixels(client):
    image = [[0, 1] * 4 for _ in range(8)]
    assert client.post("/api/predict", json={"image": image}).status_code == 200
    assert client.post("/api/predict", json={"image": blank()}).status_code == 200


def test_the_served_model_is_not_touched(client, served):
    before = {k: v.copy() for k, v in served.model.state_dict().items()}
    client.post("/api/predict", json={"image": stroke(), "class": 4})
    after = served.model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


# -- refused ---------------------------------------------------------------------------------------


def image_with(i, j, value):
    image = blank()
    image[i][j] = value
    return image


RAGGED = blank()
RAGGED[3] = [0.0] * 7


@pytest.mark.parametrize(("body", "words"), [
    ({}, ["missing field 'image'", "8 rows of 8"]),
    ({"picture": blank()}, ["missing field 'image'"]),
    ({"image": None}, ["'image'", "list of rows"]),
    ({"image": "0" * 64}, ["'image'", "list of rows"]),
    ({"image": 0.5}, ["'image'", "list of rows"]),
    ({"image": {"rows": 8}}, ["'image'", "list of rows"]),
    ({"image": [0.0] * 64}, ["'image'", "list of rows", "8 rows of 8"]),
    ({"image": [[0.0] * 8] * 7 + [0.0]}, ["'image'", "list of rows"]),
    ({"image": []}, ["'image'", "wrong shape", "got 0 rows", "expected 8 rows of 8"]),
    ({"image": blank(7, 8)}, ["'image'", "wrong shape", "got 7 rows of [8] numbers"]),
    ({"image": blank(9, 8)}, ["'image'", "got 9 rows"]),
    ({"image": blank(8, 9)}, ["'image'", "got 8 rows of [9] numbers"]),
    ({"image": blank(28, 28)}, ["'image'", "got 28 rows of [28] numbers", "expected 8 rows of 8"]),
    ({"image": RAGGED}, ["'image'", "wrong shape", "[7, 8]"]),
    ({"image": image_with(2, 3, "0.5")}, ["'image'", "row 2, column 3", '"0.5"', "not a number"]),
    ({"image": image_with(0, 7, True)}, ["row 0, column 7", "true", "not a number"]),
    ({"image": image_with(7, 0, False)}, ["row 7, column 0", "false", "not a number"]),
    ({"image": image_with(4, 4, None)}, ["row 4, column 4", "null", "not a number"]),
    ({"image": image_with(1, 1, [0.5])}, ["row 1, column 1", "[0.5]", "not a number"]),
    ({"image": image_with(1, 2, {"v": 1})}, ["row 1, column 2", "not a number"]),
    ({"image": image_with(5, 6, 1.5)}, ["'image'", "row 5, column 6", "1.5", "outside [0, 1]"]),
    ({"image": image_with(0, 0, -0.01)}, ["row 0, column 0", "-0.01", "outside [0, 1]"]),
    ({"image": image_with(0, 0, 255)}, ["row 0, column 0", "255", "outside [0, 1]"]),
    ({"image": image_with(3, 2, 10**400)}, ["row 3, column 2", "an integer of 401 digits", "outside [0, 1]"]),
    ({"image": image_with(3, 2, -(10**30))}, ["row 3, column 2", "31 digits", "outside [0, 1]"]),
    ({"image": stroke(), "class": 10}, ["'class'", "0 to 9", "got 10"]),
    ({"image": stroke(), "class": -1}, ["'class'", "got -1"]),
    ({"image": stroke(), "class": "3"}, ["'class'", '"3"']),
    ({"image": stroke(), "class": 2.5}, ["'class'", "2.5"]),
    ({"image": stroke(), "class": True}, ["'class'", "true"]),
    ({"image": stroke(), "class": [1]}, ["'class'", "[1]"]),
])
def test_bad_predict_fields_are_named(client, body, words):
    assert_error(client.post("/api/predict", json=body), 422, *words)
    assert_alive(client)


@pytest.mark.parametrize(("literal", "shown"), [
    ("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"), ("1e400", "inf"), ("-1e400", "-inf"),
])
def test_non_finite_pixels_are_refused(client, literal, shown):
    rows = [json.dumps(r) for r in blank()]
    rows[6] = "[0, 0, " + literal + ", 0, 0, 0, 0, 0]"
    raw = '{"image": [' + ", ".join(rows) + "]}"
    message = assert_error(client.post("/api/predict", content=raw.encode()), 422,
                           "'image'", "row 6, column 2", "finite")
    assert f" {shown};" in message
    assert_alive(client)


def test_a_nan_class_is_refused(client):
    raw = '{"image": ' + json.dumps(stroke()) + ', "class": NaN}'
    assert_error(client.post("/api/predict", content=raw.encode()), 422, "'class'", "NaN")
    assert_alive(client)
