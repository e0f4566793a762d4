"""The web app's routes as a browser calls them (Starlette's TestClient): the page and its
files, the model description, the test images, and everything the app refuses before a
route's own checks (bodies that are not a JSON object, bodies over the limit, unknown routes,
wrong methods), each a JSON {"error": ...} naming the problem, the server answering after."""

from __future__ import annotations

import json

import pytest
from serve_client import assert_alive, assert_error, stroke
from starlette.testclient import TestClient

from layerwise.serve import create_app
from layerwise.serve.app import MAX_BODY
from layerwise.serve.sessions import GRAPHS, MAX_BATCH

# -- the page and what it reads -----------------------------------------------------------------


def test_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text
    template = client.get("/static/index.html")  # the page before its words are filled in
    assert template.status_code == 200 and 'data-i18n="tab.draw"></button>' in template.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/i18n/ko.json").json()["tab.draw"] == "그리기"


def test_model_description(client, served):
    info = client.get("/api/model").json()
    assert info["architecture"] == "64-50-10" and info["dataset"] == "digits"
    assert info["input_shape"] == [64] and (info["height"], info["width"]) == (8, 8)
    assert info["labels"] == [str(d) for d in range(10)] and info["dtype"] == "float32"
    assert info["layers"] == ["Affine1", "Relu1", "Affine2"]
    assert info["source"] == served.source and "digits" in info["source"]
    # How the default model was trained, for the page to say in its language.
    assert info["trained"] == served.trained and info["trained"]["epochs"] == 30
    assert set(info["trained"]) == {"epochs", "optimizer", "lr", "accuracy", "seconds"}


def test_test_images(client, served):
    x, t = served.test_images()
    body = client.get("/api/images").json()
    assert body["total"] == len(x) and body["start"] == 0 and (body["height"], body["width"]) == (8, 8)
    assert len(body["images"]) == len(body["labels"]) == 24 and body["max_batch"] == MAX_BATCH
    assert body["labels"] == t[:24].tolist()
    for sent, image in zip(body["images"], x[:24], strict=True):
        assert abs(sum(map(sum, sent)) - float(image.sum())) < 1e-3 * 64  # rounded to 4 decimals
    part = client.get("/api/images", params={"start": 10, "count": 3}).json()
    assert part["start"] == 10 and part["labels"] == t[10:13].tolist() and len(part["images"]) == 3
    last = client.get("/api/images", params={"start": len(x) - 2, "count": 100}).json()
    assert len(last["images"]) == 2  # the end of the set, not an error


@pytest.mark.parametrize(("query", "words"), [
    ({"start": "abc"}, ["'start'", '"abc"', "0 to 354"]),
    ({"start": "-1"}, ["'start'", "-1"]),
    ({"start": "355"}, ["'start'", "355"]),
    ({"start": "1.5"}, ["'start'", '"1.5"']),
    ({"start": ""}, ["'start'", '""']),
    ({"count": "0"}, ["'count'", "1 to 100", "got 0"]),
    ({"count": "101"}, ["'count'", "101"]),
    ({"count": "ten"}, ["'count'", '"ten"']),
    ({"count": "1e3"}, ["'count'", '"1e3"']),
])
def test_bad_image_queries_are_named(client, query, words):
    assert_error(client.get("/api/images", params=query), 422, *words)
    assert_alive(client)


@pytest.mark.parametrize("query", [{"start": "²"}, {"start": "--1"}, {"count": "9" * 5000}])
def test_query_numbers_int_cannot_read_are_named(client, query):
    assert_error(client.get("/api/images", params=query), 422, f"'{next(iter(query))}'")


def test_graph_list(client):
    body = client.get("/api/graphs").json()
    assert [g["name"] for g in body["graphs"]] == list(GRAPHS) and body["max_batch"] == MAX_BATCH
    assert all(g["title"] for g in body["graphs"])


# -- refused before any route's own checks ------------------------------------------------------


def test_unknown_routes_and_wrong_methods_answer_json(client):
    assert_error(client.get("/api/nothing"), 404, "no route GET /api/nothing")
    assert_error(client.get("/static/nothing.js"), 404, "/static/nothing.js")
    assert_error(client.post("/api/models"), 404, "POST /api/models")
    assert_error(client.get("/api/predict"), 405, "/api/predict does not take GET")
    assert_error(client.put("/api/train"), 405, "/api/train does not take PUT")
    assert_error(client.delete("/api/model"), 405, "DELETE")
    assert_error(client.delete("/api/sessions/abc"), 404, "no session")
    assert_error(client.get("/api/sessions/abc/forward"), 405, "does not take GET")
    assert_error(client.post("/api/model"), 405, "/api/model does not take POST")
    assert_error(client.post("/api/images"), 405)
    assert_error(client.get("/api/train/stop"), 405)
    assert_error(client.get("/api/graphs/apple"), 405)
    assert_alive(client)


BODY_ROUTES = ["/api/predict", "/api/train", "/api/graphs/network", "/api/graphs/sigmoid"]


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(("raw", "words"), [
    (b"", ["empty", "JSON object"]),
    (b"   \n\t ", ["empty"]),
    (b"{", ["malformed JSON", "line 1, column 2"]),
    (b'{"image": [[0, 1]],}', ["malformed JSON"]),
    (b"{'image': 1}", ["malformed JSON"]),
    (b"image=1", ["malformed JSON"]),
    (b"[1, 2]", ["must be a JSON object", "list"]),
    (b'"text"', ["must be a JSON object", "str"]),
    (b"3", ["must be a JSON object", "int"]),
    (b"null", ["must be a JSON object", "NoneType"]),
    (b"\xff\xfe\x00", ["JSON"]),
    (b"[" * 100_000, ["malformed JSON"]),
    (b'{"image": ' + b"9" * 5000 + b"}", ["unreadable JSON", "digits"]),  # more digits than Python converts
])
def test_bodies_that_are_not_a_json_object(client, route, raw, words):
    response = client.post(route, content=raw, headers={"content-type": "application/json"})
    if route == "/api/graphs/sigmoid" and not raw.strip():
        assert response.status_code == 201  # its only field, x, is optional: an empty body is {}
        return
    assert_error(response, 400, *words)
    assert_alive(client)


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_a_body_over_the_limit_is_refused_by_its_declared_length(client, route):
    response = client.post(route, content=b" " * (MAX_BODY + 1))
    assert_error(response, 413, f"{MAX_BODY + 1:,} bytes", f"limit is {MAX_BODY:,}")
    assert_alive(client)


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_a_streamed_body_over_the_limit_is_refused_while_it_is_read(client, route):
    def chunks():  # no Content-Length (chunked): the app counts while it reads
        for _ in range(2_000):
            yield b" " * 1000

    response = client.post(route, content=chunks())
    assert_error(response, 413, f"over the limit of {MAX_BODY:,} bytes")
    assert "content-length" not in response.request.headers
    assert_alive(client)


def test_a_body_of_exactly_the_limit_is_read(client):
    body = json.dumps({"image": stroke()}).encode()
    padded = body + b" " * (MAX_BODY - len(body))
    assert len(padded) == MAX_BODY
    assert client.post("/api/predict", content=padded).status_code == 200
    streamed = client.post("/api/predict", content=iter([padded[:500_000], padded[500_000:]]))
    assert streamed.status_code == 200 and "content-length" not in streamed.request.headers


def test_other_sites_and_other_host_names_are_refused(served):
    # DNS rebinding names the attacker's host; a page on another site sends its Origin.
    with TestClient(create_app(served), base_url="http://evil.example") as other_host:
        assert_error(other_host.get("/api/model"), 403, "Host", "evil.example")
    with TestClient(create_app(served), base_url="http://127.0.0.1:8000") as local:
        assert_error(local.post("/api/graphs/apple", headers={"Origin": "http://evil.example"}), 403, "another site")
        assert local.post("/api/graphs/apple", headers={"Origin": "http://127.0.0.1:8000"}).status_code == 201
        assert local.get("/api/model", headers={"Origin": "http://evil.example"}).status_code == 200  # reads are fine
        assert local.post("/api/graphs/apple").status_code == 201  # scripts send no Origin
    with TestClient(create_app(served, hosts=("*",)), base_url="http://my-laptop.lan") as anywhere:
        assert anywhere.get("/api/model").status_code == 200  # --host 0.0.0.0: any name


def test_a_body_sent_to_a_book_graph_is_read(client):
    # Regression: malformed JSON to /api/graphs/apple was ignored and answered 201.
    assert_error(client.post("/api/graphs/apple", content=b"{", headers={"content-type": "application/json"}),
                 400, "malformed JSON")
