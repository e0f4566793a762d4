"""Step-through sessions over HTTP: the book's graphs step to the book's numbers, a network on
test images steps to the model's own gradient, the check sets every gradient beside central
differences; unknown graphs, sessions, nodes and steps are 404s, steps out of order 409s."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from serve_client import assert_alive, assert_error

from layerwise.serve import sessions as sessions_module
from layerwise.serve.sessions import GRAPHS, MAX_BATCH, MAX_SESSIONS


def start(client, name, body=None):
    response = client.post(f"/api/graphs/{name}", json=body if body is not None else {})
    assert response.status_code == 201, response.text
    return response.json()


def step(client, sid, direction, status=200):
    """One step; returns the session's whole state after it, with ``stepped`` and the stepped
    ``node`` the answer carried (which must be that node in the whole state)."""
    response = client.post(f"/api/sessions/{sid}/{direction}")
    assert response.status_code == status, response.text
    answer = response.json()
    if status != 200 or direction == "reset":
        return answer
    state = client.get(f"/api/sessions/{sid}").json()
    assert answer["node"] == state["nodes"][answer["stepped"]]
    assert {k: answer[k] for k in ("phase", "forward_done", "backward_done", "current", "n_nodes")} == \
        {k: state[k] for k in ("phase", "forward_done", "backward_done", "current", "n_nodes")}
    return {**state, "stepped": answer["stepped"]}


def number(value_json):
    assert value_json["kind"] == "scalar"
    return value_json["value"]


# -- the book's graphs ---------------------------------------------------------------------------


def test_apple_session_steps_to_the_books_numbers(client):
    state = start(client, "apple")
    sid = state["session"]
    assert state["graph"] == "apple" and state["title"] and state["phase"] == "forward"
    assert state["n_nodes"] == 2 and state["forward_done"] == 0 and state["current"] is None
    assert [(i["name"], number(i["value"])) for i in state["inputs"]] == [("apple", 100), ("apple_num", 2),
                                                                           ("tax", 1.1)]
    assert state["nodes"][0]["output"] is None

    state = step(client, sid, "forward")
    assert state["stepped"] == 0 and number(state["nodes"][0]["output"]) == 200
    assert {k: number(v) for k, v in state["nodes"][0]["caches"].items()} == {"x": 100, "y": 2}
    assert state["nodes"][1]["output"] is None
    state = step(client, sid, "forward")
    assert state["stepped"] == 1 and number(state["nodes"][1]["output"]) == pytest.approx(220)
    assert state["phase"] == "backward"

    state = step(client, sid, "backward")
    node = state["nodes"][1]
    assert state["stepped"] == 1 and number(node["dout"]) == 1 and node["backward_done"]
    assert [(r["name"], r["to"]) for r in node["returns"]] == [("dx", "apple_price"), ("dy", "tax")]
    assert [number(r["value"]) for r in node["returns"]] == pytest.approx([1.1, 200])
    assert node["formula"] == "dx = dout · y,  dy = dout · x"
    state = step(client, sid, "backward")
    node = state["nodes"][0]
    assert number(node["dout"]) == pytest.approx(1.1)
    assert [number(r["value"]) for r in node["returns"]] == pytest.approx([2.2, 110])
    assert state["phase"] == "done"

    # The same state again, and one node by index, by output name and by label.
    again = client.get(f"/api/sessions/{sid}").json()
    assert again["phase"] == "done" and again["nodes"] == state["nodes"]
    assert client.get(f"/api/sessions/{sid}/nodes/0").json() == state["nodes"][0]
    assert client.get(f"/api/sessions/{sid}/nodes/price").json() == state["nodes"][1]
    assert client.get(f"/api/sessions/{sid}/nodes/apple_price").json()["index"] == 0

    rows = client.post(f"/api/sessions/{sid}/check").json()["rows"]
    assert {r["name"] for r in rows} == {"apple", "apple_num", "tax", "apple_price"}
    for r in rows:
        assert r["relative_error"] < 1e-7 and r["checked"] == r["size"] == 1
        assert number(r["numerical"]) == pytest.approx(number(r["analytic"]), rel=1e-6)

    state = step(client, sid, "reset")
    assert state["stepped"] is None and state["phase"] == "forward" and state["forward_done"] == 0
    assert all(n["output"] is None and n["dout"] is None for n in state["nodes"])


def test_apple_orange_and_sigmoid_sessions(client):
    state = start(client, "apple-orange")
    for _ in range(state["n_nodes"]):
        step(client, state["session"], "forward")
    for _ in range(state["n_nodes"]):
        last = step(client, state["session"], "backward")
    grads = {r["to"]: number(r["value"]) for n in last["nodes"] for r in n["returns"]}
    assert grads == pytest.approx({"apple": 2.2, "apple_num": 110, "orange": 3.3, "orange_num": 165,
                                   "apple_price": 1.1, "orange_price": 1.1, "all_price": 1.1, "tax": 650})

    for x, body in ((1.0, {}), (-2.5, {"x": -2.5}), (3.0, {"x": 3})):
        state = start(client, "sigmoid", body)
        sid = state["session"]
        assert number(state["inputs"][0]["value"]) == x
        for _ in range(2 * state["n_nodes"]):
            state = step(client, sid, "forward" if state["phase"] == "forward" else "backward")
        y = 1 / (1 + np.exp(-x))
        fused = state["nodes"][-1]
        assert fused["kind"] == "Sigmoid" and number(fused["returns"][0]["value"]) == pytest.approx(y * (1 - y))
        decomposed = state["nodes"][0]["returns"][0]  # ×(-1): its dx is dL/dx
        assert number(decomposed["value"]) == pytest.approx(y * (1 - y))
        rows = client.post(f"/api/sessions/{sid}/check").json()["rows"]
        assert max(r["relative_error"] for r in rows) < 1e-7


# -- a real network ------------------------------------------------------------------------------


def test_network_session_equals_the_models_gradient(client, served):
    images, labels = served.test_images()
    state = start(client, "network", {"images": [0, 1]})
    sid = state["session"]
    assert state["images"] == [0, 1] and state["labels"] == labels[:2].tolist()
    assert state["n_nodes"] == 4 and [n["label"] for n in state["nodes"]] == ["Affine1", "Relu1", "Affine2",
                                                                              "SoftmaxWithLoss"]
    assert state["inputs"][0]["value"]["shape"] == [2, 64] and "float64" in state["title"]
    for i in range(4):
        assert step(client, sid, "forward")["stepped"] == i
    for i in range(4):
        assert step(client, sid, "backward")["stepped"] == 3 - i

    node = client.get(f"/api/sessions/{sid}/nodes/Affine1", params={"full": "1"}).json()
    assert node["kind"] == "Affine" and node["backward_done"]
    dW = node["param_grads"]["dW"]
    assert dW["shape"] == [64, 50] and dW["dtype"] == "float64"
    x, t = images[[0, 1]].reshape(2, -1), labels[[0, 1]]
    model64 = copy.deepcopy(served.model).astype(np.float64)
    grads = model64.gradient(x, t)
    np.testing.assert_allclose(np.array(dW["values"]).reshape(64, 50), grads["W1"], rtol=1e-6, atol=1e-6)
    db = node["param_grads"]["db"]
    np.testing.assert_allclose(db["values"], grads["b1"], rtol=1e-6, atol=1e-6)
    affine2 = client.get(f"/api/sessions/{sid}/nodes/2").json()
    np.testing.assert_allclose(np.array(affine2["param_grads"]["dW"]["values"]).reshape(50, 10), grads["W2"],
                               rtol=1e-6, atol=1e-6)
    loss = client.get(f"/api/sessions/{sid}/nodes/loss").json()
    assert number(loss["output"]) == pytest.approx(model64.loss(x, t), rel=1e-9)
    assert loss["returns"][1] == {"name": "dy", "to": "t", "value": None}  # labels get no gradient
    relu = client.get(f"/api/sessions/{sid}/nodes/Relu1").json()
    assert relu["caches"]["mask"]["shape"] == [2, 50]
    # The heat map of x is the two images side by side, one row each.
    heat = state["inputs"][0]["value"]["heat"]
    assert (heat["rows"], heat["cols"]) == (2, 64)

    rows = {r["name"]: r for r in client.post(f"/api/sessions/{sid}/check").json()["rows"]}
    assert {"x", "Affine1.W", "Affine1.b", "Affine2.W", "Affine2.b"} <= set(rows)
    for r in rows.values():
        assert r["relative_error"] < 1e-6, r["name"]
    assert rows["Affine1.W"]["size"] == 3200 and rows["Affine1.W"]["checked"] == 64
    # The served model is the one it was: the session ran on copies.
    assert served.model.params["W1"].dtype == np.float32


def test_a_full_batch_of_test_images(client, served):
    _, labels = served.test_images()
    picked = [354, 3, 3, 100, 0, 1, 2, 5][:MAX_BATCH]
    state = start(client, "network", {"images": picked})
    assert state["labels"] == labels[picked].tolist() and state["inputs"][0]["value"]["shape"] == [MAX_BATCH, 64]


# -- refused ---------------------------------------------------------------------------------------


def test_unknown_graph(client):
    assert_error(client.post("/api/graphs/nope", json={}), 404, "no graph 'nope'", *GRAPHS)
    assert_alive(client)


@pytest.mark.parametrize(("body", "words"), [
    ({"x": "1"}, ["'x'", "'1'"]),
    ({"x": True}, ["'x'", "True"]),
    ({"x": None}, ["'x'", "None"]),
    ({"x": 101}, ["'x'", "-100 to 100", "101"]),
    ({"x": -1e6}, ["'x'"]),
    ({"x": 10**400}, ["'x'", "-100 to 100"]),  # an integer too large for a float
    ({"x": [1]}, ["'x'"]),
])
def test_bad_sigmoid_x(client, body, words):
    assert_error(client.post("/api/graphs/sigmoid", json=body), 422, *words)
    assert_alive(client)


def test_non_finite_sigmoid_x(client):
    for literal in ("NaN", "Infinity", "-Infinity"):
        response = client.post("/api/graphs/sigmoid", content=('{"x": ' + literal + "}").encode())
        assert_error(response, 422, "'x'", "-100 to 100")
    assert_alive(client)


@pytest.mark.parametrize(("body", "words"), [
    ({}, ["'images'", f"1 to {MAX_BATCH}", "0 to 354", "None"]),
    ({"images": []}, ["'images'", "[]"]),
    ({"images": 3}, ["'images'", "got 3"]),
    ({"images": "0,1"}, ["'images'", "'0,1'"]),
    ({"images": list(range(MAX_BATCH + 1))}, ["'images'", f"1 to {MAX_BATCH}"]),
    ({"images": [0, 355]}, ["'images'", "355 is not a test image number", "0 to 354"]),
    ({"images": [-1]}, ["'images'", "-1 is not"]),
    ({"images": ["0"]}, ["'images'", "'0' is not"]),
    ({"images": [True]}, ["'images'", "True is not"]),
    ({"images": [1.5]}, ["'images'", "1.5 is not"]),
    ({"images": [None]}, ["'images'", "None is not"]),
])
def test_bad_network_images(client, body, words):
    assert_error(client.post("/api/graphs/network", json=body), 422, *words)
    assert_alive(client)


def test_unknown_session_on_every_session_route(client):
    sid = "0123456789abcdef"
    words = (f"no session '{sid}'", "start the graph again")
    assert_error(client.get(f"/api/sessions/{sid}"), 404, *words)
    for direction in ("forward", "backward", "reset"):
        assert_error(client.post(f"/api/sessions/{sid}/{direction}"), 404, *words)
    assert_error(client.get(f"/api/sessions/{sid}/nodes/0"), 404, *words)
    assert_error(client.post(f"/api/sessions/{sid}/check"), 404, *words)
    assert_alive(client)


def test_unknown_node_and_unknown_step(client):
    sid = start(client, "apple")["session"]
    for key in ("nope", "2", "99", "-1", "Affine1", "²", "9" * 5000, "0x1", " 1"):
        assert_error(client.get(f"/api/sessions/{sid}/nodes/{key}"), 404, "no node", "0..1 (apple_price, price)")
    assert_error(client.post(f"/api/sessions/{sid}/sideways"), 404, "no step 'sideways'", "forward, backward and reset")
    assert_alive(client)
    assert step(client, sid, "forward")["stepped"] == 0  # the session is as it was


def test_steps_out_of_order_and_check_before_backward(client):
    sid = start(client, "apple")["session"]
    assert_error(client.post(f"/api/sessions/{sid}/backward"), 409, "whole forward pass first", "0 of 2")
    assert_error(client.post(f"/api/sessions/{sid}/check"), 409, "check needs the finished backward pass")
    step(client, sid, "forward")
    step(client, sid, "forward")
    assert_error(client.post(f"/api/sessions/{sid}/forward"), 409, "forward pass is complete", "step backward next")
    assert_error(client.post(f"/api/sessions/{sid}/check"), 409, "0 backward")
    step(client, sid, "backward")
    step(client, sid, "backward")
    assert_error(client.post(f"/api/sessions/{sid}/backward"), 409, "backward pass is complete", "reset")
    assert_error(client.post(f"/api/sessions/{sid}/forward"), 409, "reset to start again")
    assert_alive(client)
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["phase"] == "done" and state["forward_done"] == state["backward_done"] == 2


def test_the_least_recently_used_session_goes_first(client):
    first = start(client, "apple")["session"]
    second = start(client, "apple")["session"]
    for _ in range(MAX_SESSIONS - 2):
        start(client, "apple")
    assert client.get(f"/api/sessions/{first}").status_code == 200  # used: now the most recent
    start(client, "apple")  # one over the limit: `second` is the least recently used
    assert client.get(f"/api/sessions/{first}").status_code == 200
    assert_error(client.get(f"/api/sessions/{second}"), 404, f"no session '{second}'", f"last {MAX_SESSIONS}")


def test_sigmoid_session_without_a_body_uses_x_1(client):
    # Regression: `x` is optional, yet an empty body was refused as "the request body is empty".
    response = client.post("/api/graphs/sigmoid")
    assert response.status_code == 201
    assert response.json()["inputs"][0]["value"]["value"] == 1.0


def test_a_session_can_be_deleted(client):
    sid = start(client, "apple")["session"]
    assert client.delete(f"/api/sessions/{sid}").json() == {"deleted": sid}
    assert_error(client.get(f"/api/sessions/{sid}"), 404, "no session")
    assert_error(client.delete(f"/api/sessions/{sid}"), 404, "no session")


def test_sessions_are_kept_within_a_byte_budget(client, monkeypatch):
    # Each session holds copies of the network's arrays; large ones are let go before the count limit.
    first = start(client, "network", {"images": [0, 1]})["session"]
    weight = client.app.state.sessions.get(first).nbytes
    assert weight > 0
    monkeypatch.setattr(sessions_module, "MAX_SESSION_BYTES", int(2.5 * weight))
    second = start(client, "network", {"images": [0, 1]})["session"]
    third = start(client, "network", {"images": [0, 1]})["session"]
    assert_error(client.get(f"/api/sessions/{first}"), 404, "no session")
    assert client.get(f"/api/sessions/{second}").status_code == 200
    assert client.get(f"/api/sessions/{third}").status_code == 200


def test_a_step_answers_with_the_node_it_ran_not_the_whole_graph(client):
    sid = start(client, "network", {"images": [0, 1, 2]})["session"]
    answer = client.post(f"/api/sessions/{sid}/forward").json()
    assert answer["stepped"] == 0 and answer["node"]["label"] == "Affine1" and "nodes" not in answer
    assert answer["phase"] == "forward" and answer["current"] == 0
    # Parameters go as shape and short text only: the page shows what flows.
    assert answer["node"]["params"]["W"]["shape"] == [64, 50] and "values" not in answer["node"]["params"]["W"]
