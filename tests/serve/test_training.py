"""The Train page's API: one run at a time in a thread, its live events (server-sent events:
losses, epoch rows, the first layer's weights), stop, and the trained model as a file that
`layerwise serve` and load_checkpoint read; every bad field named, refusals as 409s."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
from serve_client import assert_alive, assert_error, sse_events, stroke
from starlette.testclient import TestClient

from layerwise.errors import InputError
from layerwise.io import load_checkpoint
from layerwise.serve import create_app, load_served
from layerwise.serve import training as training_module

WAIT = 120  # seconds: a bound on a run that should take well under one


def wait_finished(client):
    run = client.app.state.training.run
    run.thread.join(WAIT)
    assert run.finished, run.status
    return run


def events(client):
    """Every event of the current run (the stream ends when the run has finished)."""
    wait_finished(client)
    with client.stream("GET", "/api/train/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        text = response.read().decode()
    return sse_events(text)


def start_long_run(client):
    """A run that takes minutes unless stopped: 100 epochs in batches of 1."""
    response = client.post("/api/train", json={"epochs": 100, "batch_size": 1, "hidden": 8})
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture
def fresh(served):
    """An app of its own, on which no run has started."""
    with TestClient(create_app(served), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_options_and_no_run_yet(fresh):
    state = fresh.get("/api/train").json()
    assert state["run"] is None
    options = state["options"]
    assert options["datasets"][0] == "digits" and set(options["datasets"]) <= {"digits", "mnist", "fashion-mnist"}
    assert options["activations"] == ["relu", "sigmoid", "tanh"] and "adam" in options["optimizers"]
    assert options["max_epochs"] == 100 and options["defaults"]["dataset"] == "digits"
    assert_error(fresh.post("/api/train/stop"), 409, "no run is training")
    assert_error(fresh.get("/api/train/events"), 404, "no run has been started")
    assert_error(fresh.get("/api/train/model"), 409, "no finished run to save")
    assert_alive(fresh)


def test_a_run_streams_its_curve_and_finishes(client, tmp_path):
    response = client.post("/api/train", json={"epochs": 3, "hidden": [16], "batch_size": 100, "seed": 1,
                                               "optimizer": "adam", "lr": 0.01})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["settings"] == {"dataset": "digits", "hidden": [16], "activation": "relu", "optimizer": "adam",
                                   "lr": 0.01, "epochs": 3, "batch_size": 100, "seed": 1}
    run_number = started["run"]
    stream = events(client)
    kinds = [kind for kind, _ in stream]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("finished") == 1
    info = stream[0][1]
    assert info["run"] == run_number and info["steps_per_epoch"] == math.ceil(info["train_images"] / 100)
    finished = stream[-1][1]
    assert finished["status"] == "done" and finished["epochs"] == 3 and finished["test_acc"] > 0.5
    # The curve: every step's loss, once, in order.
    losses, expected_first = [], 1
    for kind, data in stream:
        if kind == "steps":
            assert data["first"] == expected_first and data["losses"]
            losses += data["losses"]
            expected_first += len(data["losses"])
    assert len(losses) == finished["steps"] == 3 * info["steps_per_epoch"]
    assert all(math.isfinite(v) and v > 0 for v in losses) and losses[-1] < losses[0]
    rows = [data for kind, data in stream if kind == "epoch"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_acc", "test_acc", "seconds"} <= set(rows[0])
    # Each epoch's row comes after that epoch's losses.
    assert kinds.index("epoch") > kinds.index("steps")
    weights = [data for kind, data in stream if kind == "weights"]
    assert weights and all(w["units"] == 16 and (w["height"], w["width"]) == (8, 8) for w in weights)
    assert all(len(w["values"]) == 16 * 64 for w in weights)
    state = client.get("/api/train").json()["run"]
    assert state["number"] == run_number and state["status"] == "done"
    assert state["events"] == len([kind for kind in kinds if kind != "weights"])  # weights: the latest only
    assert state["error"] is None

    # The trained model as a file: what `layerwise train` writes, and what `layerwise serve` serves.
    response = client.get("/api/train/model")
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    assert f'filename="layerwise-run{run_number}-digits.safetensors"' in response.headers["content-disposition"]
    path = tmp_path / "trained.safetensors"
    path.write_bytes(response.content)
    checkpoint = load_checkpoint(path)
    assert checkpoint.state == {"dataset": "digits", "input_shape": [64], "classes": 10}
    trained = client.app.state.training.run.model
    for key, value in trained.state_dict().items():
        np.testing.assert_array_equal(checkpoint.model.state_dict()[key], value)
    served = load_served(path)
    assert served.architecture == "64-16-10" and served.image_size == (8, 8) and served.dataset == "digits"
    with TestClient(create_app(served), base_url="http://127.0.0.1") as other:
        body = other.post("/api/predict", json={"image": stroke()}).json()
        scores = trained.predict(np.array(stroke(), dtype=np.float32).reshape(1, -1))
        assert body["class"] == int(np.argmax(scores))
    assert_alive(client)


def test_one_run_at_a_time_stop_and_save(client, tmp_path, monkeypatch):
    # The run waits after its first step until the refusals below have been made: it is
    # certainly still training when they arrive, however fast or slow this machine is.
    reached, release = threading.Event(), threading.Event()
    first_step = training_module.Run._on_step

    def held(self, step, loss):
        first_step(self, step, loss)
        if step == 1:
            reached.set()
            release.wait(WAIT)

    monkeypatch.setattr(training_module.Run, "_on_step", held)
    run = start_long_run(client)
    try:
        assert reached.wait(WAIT)
        assert client.get("/api/train").json()["run"]["status"] == "running"
        assert_error(client.post("/api/train", json={"epochs": 1}), 409, f"run {run['run']} is still training",
                     "(running)", "one run trains at a time", "stop it first")
        assert_error(client.get("/api/train/model"), 409, "no finished run to save")
        assert_alive(client)
        stopped = client.post("/api/train/stop")
    finally:
        release.set()
    assert stopped.status_code == 200 and stopped.json() == {"run": run["run"], "status": "stopping"}
    stream = events(client)
    assert stream[-1] == ("finished", {"status": "stopped", "test_acc": stream[-1][1]["test_acc"], "steps": 1,
                                       "epochs": 0})
    assert not [kind for kind, _ in stream if kind == "epoch"]  # stopped in its first epoch: no row
    assert [data["losses"] for kind, data in stream if kind == "steps"] == [[pytest.approx(
        client.app.state.training.run.trainer.history.step_loss[0])]]
    assert client.get("/api/train").json()["run"]["status"] == "stopped"
    assert_error(client.post("/api/train/stop"), 409, "no run is training")
    # A stopped run's model can be saved too.
    response = client.get("/api/train/model")
    assert response.status_code == 200
    (tmp_path / "stopped.safetensors").write_bytes(response.content)
    assert load_served(tmp_path / "stopped.safetensors").architecture == "64-8-10"
    # And the next run may start.
    monkeypatch.undo()
    assert client.post("/api/train", json={"epochs": 1}).status_code == 202
    assert events(client)[-1][1]["status"] == "done"
    assert_alive(client)


def test_a_failed_run_says_why_and_cannot_be_saved(client, monkeypatch):
    def no_data(settings, progress):
        raise InputError("the data went missing")

    monkeypatch.setattr(training_module, "load_run_data", no_data)
    assert client.post("/api/train", json={"epochs": 1}).status_code == 202
    stream = events(client)
    assert stream == [("finished", {"status": "failed", "error": "the data went missing"})]
    state = client.get("/api/train").json()["run"]
    assert state["status"] == "failed" and state["error"] == "the data went missing"
    assert_error(client.get("/api/train/model"), 409, "no finished run to save")
    assert_error(client.post("/api/train/stop"), 409, "no run is training")
    assert_alive(client)


def test_the_server_stopping_stops_a_run(served):
    with TestClient(create_app(served), base_url="http://127.0.0.1") as test_client:
        start_long_run(test_client)
        run = test_client.app.state.training.run
    run.thread.join(WAIT)  # the lifespan's end stopped it (and waited up to 5 s)
    assert run.status == "stopped"


@pytest.mark.parametrize(("body", "words"), [
    ({"dataset": "cifar10"}, ["'dataset'", "digits", "'cifar10'"]),
    ({"dataset": 5}, ["'dataset'", "5"]),
    ({"dataset": None}, ["'dataset'", "None"]),
    ({"hidden": 0}, ["'hidden'", "1 to 4 layer sizes from 1 to 1024", "[0]"]),
    ({"hidden": [1025]}, ["'hidden'", "[1025]"]),
    ({"hidden": []}, ["'hidden'", "[]"]),
    ({"hidden": [8, 8, 8, 8, 8]}, ["'hidden'", "[8, 8, 8, 8, 8]"]),
    ({"hidden": "50"}, ["'hidden'", "'50'"]),
    ({"hidden": [50.5]}, ["'hidden'", "[50.5]"]),
    ({"hidden": [True]}, ["'hidden'", "[True]"]),
    ({"hidden": True}, ["'hidden'", "True"]),
    ({"activation": "gelu"}, ["'activation'", "relu, sigmoid, tanh", "'gelu'"]),
    ({"activation": 1}, ["'activation'", "1"]),
    ({"optimizer": "lbfgs"}, ["'optimizer'", "sgd", "adam", "'lbfgs'"]),
    ({"optimizer": None}, ["'optimizer'", "None"]),
    ({"lr": 0}, ["'lr'", "(0, 10]", "got 0"]),
    ({"lr": -0.1}, ["'lr'", "-0.1"]),
    ({"lr": 11}, ["'lr'", "11"]),
    ({"lr": "0.1"}, ["'lr'", "'0.1'"]),
    ({"lr": True}, ["'lr'", "True"]),
    ({"epochs": 0}, ["'epochs'", "1 to 100", "got 0"]),
    ({"epochs": 101}, ["'epochs'", "101"]),
    ({"epochs": 2.5}, ["'epochs'", "2.5"]),
    ({"epochs": "3"}, ["'epochs'", '"3"']),
    ({"batch_size": 0}, ["'batch_size'", "1 to 1000", "got 0"]),
    ({"batch_size": 1001}, ["'batch_size'", "1001"]),
    ({"batch_size": [100]}, ["'batch_size'", "[100]"]),
    ({"seed": -1}, ["'seed'", "-1"]),
    ({"seed": "x"}, ["'seed'", '"x"']),
])
def test_bad_training_fields_are_named(client, body, words):
    assert_error(client.post("/api/train", json=body), 422, *words)
    assert client.app.state.training.run is None or client.app.state.training.run.finished
    assert_alive(client)


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
def test_a_non_finite_lr_is_refused(client, literal):
    response = client.post("/api/train", content=('{"lr": ' + literal + "}").encode())
    assert_error(response, 422, "'lr'", "(0, 10]")
    assert_alive(client)


def test_a_data_set_not_on_this_machine_is_refused(client, monkeypatch):
    monkeypatch.setattr(training_module, "present_locally", lambda name: False)
    message = assert_error(client.post("/api/train", json={"dataset": "mnist"}), 422, "'dataset'", "'mnist'")
    assert "on this machine" in message and json.dumps(client.get("/api/train").json()["options"]["datasets"]) \
        == '["digits"]'
    assert_alive(client)


def test_a_reconnecting_page_gets_only_the_events_it_missed(client):
    response = client.post("/api/train", json={"epochs": 2, "hidden": [8]})
    assert response.status_code == 202
    every = events(client)
    listed = [e for e in every if e[0] != "weights"]
    with client.stream("GET", "/api/train/events", headers={"Last-Event-ID": "3"}) as stream:
        rest = sse_events(stream.read().decode())
    assert [e for e in rest if e[0] != "weights"] == listed[3:]
    # Only the latest weights are kept: one grid, just before the end.
    assert [kind for kind, _ in rest].count("weights") == 1 and rest[-2][0] == "weights"
