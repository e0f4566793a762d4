"""The served model (layerwise.serve.model): the default one trained at start, model files
`layerwise train` writes (an MLP and a convnet, served end to end), and the files refused at
load with an error naming the problem."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from serve_client import assert_alive, assert_error
from starlette.testclient import TestClient

import layerwise as lw
from layerwise.cli import main as cli_main
from layerwise.errors import FormatError, InputError
from layerwise.functional import softmax
from layerwise.gradcheck import numerical_gradient, relative_error
from layerwise.io import save
from layerwise.serve import ServedModel, create_app, load_served
from layerwise.serve import model as model_module
from layerwise.serve.explain import Explainer

# -- the default model ---------------------------------------------------------------------------


def test_the_default_model(served):
    assert served.architecture == "64-50-10" and served.dataset == "digits"
    assert served.sample_shape == (64,) and served.image_size == (8, 8)
    assert served.labels == tuple(str(d) for d in range(10)) and served.model.dtype == np.float32
    x, t = served.test_images()
    assert x.shape == (len(t), 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert served.test_images()[0] is x  # loaded once
    assert served.model.accuracy(x.reshape(len(x), -1), t) > 0.9
    assert "test accuracy" in served.source and "digits" in served.source


def test_test_images_of_a_data_set_not_on_this_machine(monkeypatch):
    monkeypatch.setattr(model_module, "present_locally", lambda name: False)
    net = lw.TwoLayerNet(784, 10, 10, seed=0, dtype=np.float32)
    served = ServedModel(net, "a file", "mnist", (784,), tuple(str(d) for d in range(10)))
    with pytest.raises(InputError, match=r"no test images of 'mnist'.*not on this machine \(serve never downloads\)"):
        served.test_images()
    with TestClient(create_app(served), base_url="http://127.0.0.1") as client:
        assert_error(client.get("/api/images"), 409, "not on this machine")
        assert_error(client.post("/api/graphs/network", json={"images": [0]}), 409, "not on this machine")
        assert client.post("/api/graphs/apple").status_code == 201  # the book's graphs need no data
        assert_alive(client, 28, 28)


def test_test_images_of_another_size():
    net = lw.TwoLayerNet(16, 5, 10, seed=0, dtype=np.float32)
    served = ServedModel(net, "a file", "digits", (16,), tuple(str(d) for d in range(10)))
    assert served.image_size == (4, 4)
    with pytest.raises(InputError, match="test images are 8×8, but the model takes 4×4"):
        served.test_images()


# -- model files -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def convnet_file(tmp_path_factory):
    """A tiny convnet trained on the digits by the command line, as a user makes one."""
    out = tmp_path_factory.mktemp("convnet") / "run"
    assert cli_main(["train", "--model", "convnet", "--hidden", "16", "--epochs", "1", "--quiet",
                     "--out", str(out)]) == 0
    return out / "model.safetensors"


@pytest.fixture(scope="module")
def convnet(convnet_file):
    return load_served(convnet_file)


def test_a_convnet_file_is_served(convnet, convnet_file):
    assert convnet.sample_shape == (1, 8, 8) and convnet.image_size == (8, 8)
    assert convnet.architecture.startswith("Convolution → Relu → Pooling") and convnet.source == str(convnet_file)
    assert convnet.dataset == "digits" and len(convnet.labels) == 10
    assert convnet.trained is None  # a file: the page shows its path


def test_predict_with_a_convnet(convnet):
    x, _ = convnet.test_images()
    with TestClient(create_app(convnet), base_url="http://127.0.0.1") as client:
        info = client.get("/api/model").json()
        assert info["input_shape"] == [1, 8, 8] and info["layers"][:3] == ["Convolution1", "Relu1", "Pooling1"]
        for index in (0, 5):
            image = x[index]
            body = client.post("/api/predict", json={"image": image.tolist()}).json()
            expected = softmax(convnet.model.predict(image.reshape(1, 1, 8, 8)).astype(np.float64))[0]
            np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-6, atol=1e-6)
            conv = body["activations"][0]
            channels = conv["shape"][0]
            assert conv["kind"] == "Convolution" and conv["shape"][1:] == [6, 6]
            assert conv["shown"] == [min(channels, 8), 6, 6] and len(conv["values"]) == min(channels, 8) * 36
            relu = body["activations"][1]
            np.testing.assert_array_equal(relu["mask"], np.array(conv["values"]) <= 0)
            assert np.array(body["input_gradient"]).shape == (8, 8)
        assert_error(client.post("/api/predict", json={"image": [[0.0] * 8] * 7}), 422, "got 7 rows")
        assert_alive(client)


def test_a_convnets_input_gradient_is_the_scores_gradient(convnet):
    model64 = copy.deepcopy(convnet.model).astype(np.float64)
    served64 = ServedModel(model64, "float64", "digits", convnet.sample_shape, convnet.labels)
    x, _ = convnet.test_images()
    image = x[3].astype(np.float64)
    result = Explainer(served64).explain(image)

    def score(v):
        return float(model64.predict(v.reshape(1, 1, 8, 8))[0, result.chosen])

    assert relative_error(result.input_gradient, numerical_gradient(score, image.copy())) < 1e-6
    loose = Explainer(convnet).explain(image.astype(np.float32), result.chosen).input_gradient
    np.testing.assert_allclose(loose, result.input_gradient, rtol=1e-3,
                               atol=1e-3 * float(np.abs(result.input_gradient).max()))


def test_a_network_session_on_a_convnet(convnet):
    images, labels = convnet.test_images()
    with TestClient(create_app(convnet), base_url="http://127.0.0.1") as client:
        state = client.post("/api/graphs/network", json={"images": [0, 1]}).json()
        sid, n = state["session"], state["n_nodes"]
        assert n == len(list(convnet.model)) + 1
        for _ in range(n):
            assert client.post(f"/api/sessions/{sid}/forward").status_code == 200
        for _ in range(n):
            assert client.post(f"/api/sessions/{sid}/backward").status_code == 200
        node = client.get(f"/api/sessions/{sid}/nodes/Convolution1", params={"full": "1"}).json()
        assert "col" in node["caches"]  # the im2col matrix of its input, the book's cache
        dW = node["param_grads"]["dW"]
        grads = copy.deepcopy(convnet.model).astype(np.float64).gradient(images[[0, 1]].reshape(2, 1, 8, 8),
                                                                         labels[[0, 1]])
        np.testing.assert_allclose(np.array(dW["values"]).reshape(dW["shape"]), grads["W1"], rtol=1e-6, atol=1e-6)
        pooling = client.get(f"/api/sessions/{sid}/nodes/Pooling1").json()
        assert "arg_max" in pooling["caches"]
        response = client.post(f"/api/sessions/{sid}/check")
        assert response.status_code == 200, response.text
        rows = {r["name"]: r for r in response.json()["rows"]}
        for name in ("x", "Convolution1.W", "Convolution1.b", "Affine1.W", "Affine2.b"):
            assert rows[name]["relative_error"] < 1e-6, name
        assert_alive(client)


# -- refused at load -------------------------------------------------------------------------------


def test_a_three_channel_model_is_refused(tmp_path):
    net = lw.SimpleConvNet((3, 8, 8), {"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1}, hidden_size=5,
                           output_size=10, seed=0)
    path = save(net, tmp_path / "rgb.safetensors", state={"input_shape": [3, 8, 8], "dataset": "digits"})
    with pytest.raises(InputError, match=r"rgb\.safetensors: the model takes 3-channel images; .*single-channel"):
        load_served(path)


def test_a_flat_input_that_is_not_a_square_image_is_refused(tmp_path):
    path = save(lw.TwoLayerNet(60, 5, 10, seed=0), tmp_path / "flat.safetensors", state={"input_shape": [60]})
    with pytest.raises(InputError, match=r"flat\.safetensors: the model takes 60 inputs, not a square image"):
        load_served(path)


def test_an_input_shape_that_is_not_an_image_is_refused(tmp_path):
    path = save(lw.TwoLayerNet(64, 5, 10, seed=0), tmp_path / "grid.safetensors", state={"input_shape": [8, 8]})
    with pytest.raises(InputError, match=r"input shape \(8, 8\) is not an image"):
        load_served(path)


def test_a_file_without_its_input_shape_is_refused(tmp_path):
    path = save(lw.TwoLayerNet(64, 5, 10, seed=0), tmp_path / "bare.safetensors")
    with pytest.raises(InputError, match=r"bare\.safetensors: the model file does not record its input shape"):
        load_served(path)


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_bytes(b"not a model" * 10)
    with pytest.raises(FormatError, match=r"notes\.safetensors"):
        load_served(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        load_served(tmp_path / "missing.safetensors")


@pytest.mark.parametrize(("dataset", "first_label"), [("fashion-mnist", "T-shirt/top"), ("digits", "0"),
                                                      ("/some/folder", "0"), (None, "0")])
def test_class_labels_from_the_data_set(tmp_path, dataset, first_label):
    state = {"input_shape": [64]} if dataset is None else {"input_shape": [64], "dataset": dataset}
    path = save(lw.TwoLayerNet(64, 5, 10, seed=0), tmp_path / "m.safetensors", state=state)
    served = load_served(path)
    assert len(served.labels) == 10 and served.labels[0] == first_label and served.dataset == dataset
