"""The web app in a real browser: headless Chromium driven by Playwright, as a user would use it.

Debian's ``chromium`` is launched (Playwright's own browser download is not reachable on these
machines); without it the tests skip, and fail under LAYERWISE_REQUIRE_FIXTURES=1. The server
runs in this process (uvicorn on 127.0.0.1, a free port), so the tests compare the page's
numbers with the Python API on the very same model. Each test saves a screenshot: into
``$LAYERWISE_SCREENSHOTS`` if set (``LAYERWISE_SCREENSHOTS=docs/img`` refreshes the README's
pictures), else into the test's temporary folder.

Every test runs once in each language the page speaks (the browser's locale, hence its
Accept-Language, set to English, Korean, Japanese), and checks the words the page shows
against that language's catalogue; screenshots are named ``NAME.png`` in English and
``NAME-ko.png``, ``NAME-ja.png`` in the others.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from conftest import MNIST_T10K, require_fixture, require_program
from playwright.sync_api import sync_playwright

from layerwise.datasets.idx import read_idx
from layerwise.functional import softmax
from layerwise.graph.examples import example_title
from layerwise.models import TwoLayerNet
from layerwise.optim import make_optimizer
from layerwise.serve import ServedModel, create_app, default_model, load_served
from layerwise.serve.i18n import LANGUAGES, catalogue
from layerwise.train import Trainer

CHROMIUM_HINT = "Debian/Ubuntu: apt-get install chromium; the tests drive it with Playwright"
TIMEOUT_MS = 20_000


class Server:
    """uvicorn serving ``create_app(served)`` on 127.0.0.1 in a thread, stopped at the end."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.app = create_app(served)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.state.begin_shutdown()  # what Ctrl-C does first in `layerwise serve`
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_program("chromium", CHROMIUM_HINT)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator:
    with sync_playwright() as p:
        # --no-sandbox: Chromium's sandbox refuses to run as root, as CI does.
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def digits_server() -> Iterator[Server]:
    with Server(default_model()) as server:
        yield server


#: The browser's locale for each language: what a Korean or Japanese user's browser asks for.
LOCALES = {"en": "en-US", "ko": "ko-KR", "ja": "ja-JP"}


@pytest.fixture(params=LANGUAGES)
def lang(request) -> str:
    return request.param


def shown(lang: str, key: str) -> re.Pattern:
    """What the page shows for ``key`` in ``lang``, any value in each placeholder."""
    parts = re.split(r"\{\w+\}", catalogue(lang)[key])
    return re.compile(".+?".join(re.escape(part) for part in parts), re.S)


@pytest.fixture
def page(browser, lang, request) -> Iterator:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True,
                                  locale=LOCALES[lang])
    page = context.new_page()
    page.lang = lang  # which language the page should be in, for the screenshot's name
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LAYERWISE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}.png" if page.lang == "en" else f"{name}-{page.lang}.png")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real picture, not a blank page
    return path


def open_app(page, server: Server) -> None:
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    # In the browser's language, from the catalogue.
    assert page.locator("html").get_attribute("lang") == page.lang
    words = catalogue(page.lang)
    assert page.locator("#tab-step").inner_text() == words["tab.step"]
    line = page.locator("#model-line").inner_text()
    key = "model.default" if server.served.trained else "model.line"
    assert shown(page.lang, key).fullmatch(line), line


def test_the_language_switch_shows_the_page_in_another_language_and_keeps_it(page, digits_server: Server,
                                                                            tmp_path: Path) -> None:
    open_app(page, digits_server)
    other = LANGUAGES[(LANGUAGES.index(page.lang) + 1) % len(LANGUAGES)]
    assert page.locator("#lang-switch").input_value() == page.lang
    names = page.locator("#lang-switch option").all_inner_texts()
    assert names == [catalogue(code)["language.name"] for code in LANGUAGES]
    page.click("#tab-step")
    with page.expect_navigation():
        page.select_option("#lang-switch", other)
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#view-step").is_visible()  # the open view comes along
    for _ in range(2):  # after the switch, and again on the next visit (the cookie)
        assert page.locator("html").get_attribute("lang") == other
        assert page.locator("#tab-draw").inner_text() == catalogue(other)["tab.draw"]
        assert page.locator("#lang-switch").input_value() == other
        page.goto(digits_server.url)
        page.wait_for_selector("body[data-ready=true]")


# -- Draw ---------------------------------------------------------------------------------------

def mnist_test_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    folder = require_fixture(MNIST_T10K)
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:count].astype(np.float64) / 255
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:count].astype(np.int64)
    return images, labels


def draw_as_strokes(page, image: np.ndarray) -> None:
    """Draw ``image`` (H, W) on the pad as horizontal mouse strokes over each run of ink."""
    box = page.locator("#pad").bounding_box()
    h, w = image.shape
    sx, sy = box["width"] / w, box["height"] / h
    for y in range(h):
        x = 0
        while x < w:
            if image[y, x] < 0.5:
                x += 1
                continue
            start = x
            while x < w and image[y, x] >= 0.5:
                x += 1
            top = box["y"] + (y + 0.5) * sy
            page.mouse.move(box["x"] + (start + 0.5) * sx, top)
            page.mouse.down()
            page.mouse.move(box["x"] + (x - 0.5) * sx, top, steps=2)
            page.mouse.up()


def api_top_class(page, image: list) -> tuple[int, list]:
    """What the API answers for ``image``, asked from the page's own origin."""
    answer = page.evaluate(
        """async (image) => {
            const r = await fetch('/api/predict', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                   body: JSON.stringify({image})});
            return await r.json();
        }""",
        image,
    )
    return answer["top"][0]["class"], answer["probabilities"]


def check_drawn_digit(page, server: Server, image: np.ndarray) -> int:
    page.click("#clear")
    draw_as_strokes(page, image)
    # The page predicts while drawing; wait until no request is in flight or queued, so that
    # its last answer is for the finished drawing, then read what it sent and shows at once.
    page.wait_for_function("!window.layerwise.busy && window.layerwise.lastImage !== null")
    sent, shown = page.evaluate(
        "[window.layerwise.lastImage, Number(document.getElementById('top').dataset.topClass)]")
    label_text = page.locator("#top li").first.locator(".label").inner_text()
    h, w = server.served.image_size
    assert np.array(sent).shape == (h, w)
    api_class, probabilities = api_top_class(page, sent)
    assert shown == api_class
    assert label_text == server.served.labels[api_class]
    # ... and the API's answer is the Python API's for the same pixels.
    x = np.array(sent, dtype=np.float32).reshape(1, *server.served.sample_shape)
    expected = softmax(server.served.model.predict(x).astype(np.float64))[0]
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    return shown


def test_draw_a_real_mnist_digit_on_the_digits_model(page, digits_server: Server, tmp_path: Path) -> None:
    open_app(page, digits_server)
    images, _ = mnist_test_digits(3)
    for image in images:
        check_drawn_digit(page, digits_server, image)
    # The gradient map and the activations (ReLU's mask among them) are drawn.
    assert page.locator("#activations figure").count() == len(digits_server.app.state.served.model.layers)
    caption = page.locator("#activations figure[data-layer=Relu1] figcaption").inner_text()
    assert shown(page.lang, "draw.masked").search(caption), caption
    screenshot(page, "serve-draw-mnist-on-digits", tmp_path)


def pen_strokes(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw ``strokes`` (points on the 280×280 pad) as a user does: press, move, release."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> list[tuple[float, float]]:
    return [(cx + rx * math.cos(a0 + (a1 - a0) * i / n), cy + ry * math.sin(a0 + (a1 - a0) * i / n))
            for i in range(n + 1)]


def test_a_hand_drawn_3_is_recognised_by_the_default_model(page, digits_server: Server, tmp_path: Path) -> None:
    # The "done when": a new user opens the page, draws a 3 and sees it recognised.
    open_app(page, digits_server)
    pen_strokes(page, [arc(140, 92, 52, 48, -0.9 * math.pi, 0.5 * math.pi)
                       + arc(140, 188, 58, 48, -0.5 * math.pi, 0.9 * math.pi)])
    page.wait_for_function("!window.layerwise.busy && window.layerwise.lastImage !== null")
    assert page.locator("#top li").first.locator(".label").inner_text() == "3"
    assert float(page.locator("#top li").first.locator(".prob").inner_text().rstrip(" %")) > 90
    screenshot(page, "serve-draw", tmp_path)


@pytest.fixture(scope="module")
def mnist_server() -> Iterator[Server]:
    """A 784-50-10 net trained briefly on the first half of MNIST's real test set; its digits
    are drawn from the second half."""
    images, labels = mnist_test_digits(10_000)
    x = images[:5000].reshape(5000, 784).astype(np.float32)
    model = TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32)
    Trainer(model, make_optimizer("adam", lr=0.003), x, labels[:5000], epochs=3, batch_size=100,
            log=None, progress=False).fit()
    served = ServedModel(model, "test: 784-50-10 on half of MNIST's test set", "mnist", (784,),
                         tuple(str(k) for k in range(10)))
    with Server(served) as server:
        server.digits = images[5000:], labels[5000:]
        yield server


def test_draw_real_mnist_digits_on_a_28x28_model(page, mnist_server: Server, tmp_path: Path) -> None:
    open_app(page, mnist_server)
    images, labels = mnist_server.digits
    shown = [check_drawn_digit(page, mnist_server, images[i]) for i in range(5)]
    # Redrawn with a mouse, re-centred and shrunk, most digits are still what they were.
    assert sum(int(s == k) for s, k in zip(shown, labels[:5], strict=True)) >= 3, (shown, labels[:5])
    screenshot(page, "serve-draw-mnist", tmp_path)


# -- Step through backprop ------------------------------------------------------------------------

def step(page, button: str, phase_after: str | None = None) -> None:
    before = page.locator("#step-status").inner_text()
    page.click(button)
    page.wait_for_function(f"document.getElementById('step-status').innerText !== {json.dumps(before)}")
    if phase_after:
        page.wait_for_function(f"document.getElementById('step-status').dataset.phase === {json.dumps(phase_after)}")


def value_text(page, node: str, key: str) -> str:
    return page.locator(f"[data-node='{node}'] [data-key='{key}'] > span").first.inner_text()


def test_step_the_apples_graph(page, digits_server: Server, tmp_path: Path) -> None:
    open_app(page, digits_server)
    page.click("#tab-step")
    page.select_option("#graph-name", "apple")
    page.click("#graph-start")
    page.wait_for_selector("[data-node=price]")
    assert page.locator("#step-backward").is_disabled()  # backward needs the forward pass first
    # The book's words in the page's language: the title and the inputs' labels.
    assert page.locator("#graph-title").inner_text() == example_title("apple", page.lang)
    assert page.locator("[data-input=apple] b").inner_text().strip() == {"en": "apple", "ko": "사과",
                                                                         "ja": "りんご"}[page.lang]
    assert page.locator("#graph-name option[value=apple]").inner_text() == catalogue(page.lang)["graph.apple"]

    step(page, "#step-forward")
    assert value_text(page, "apple_price", "output") == "200"
    assert "current" in page.locator("[data-node=apple_price]").get_attribute("class")
    step(page, "#step-forward", "backward")
    assert value_text(page, "price", "output") == "220"
    assert "current" in page.locator("[data-node=price]").get_attribute("class")

    step(page, "#step-backward")
    assert value_text(page, "price", "dout") == "1"
    assert value_text(page, "price", "dx") == "1.1"  # to apple_price
    assert value_text(page, "price", "dy") == "200"  # to tax
    step(page, "#step-backward", "done")
    assert value_text(page, "apple_price", "dx") == "2.2"  # to apple
    assert value_text(page, "apple_price", "dy") == "110"  # to apple_num
    assert "current" in page.locator("[data-node=apple_price]").get_attribute("class")

    page.click("#step-check")
    page.wait_for_selector("#check:not([hidden])")
    rows = page.locator("#check-table tbody tr")
    assert rows.count() == 4
    for i in range(rows.count()):
        assert float(rows.nth(i).locator("td").nth(3).inner_text()) < 1e-7
    screenshot(page, "serve-step-apples", tmp_path)


def test_step_the_network_on_two_images(page, digits_server: Server, tmp_path: Path) -> None:
    open_app(page, digits_server)
    page.click("#tab-step")
    page.select_option("#graph-name", "network")
    # Choose test images 3 and 7 (the page starts with 0 and 1 chosen).
    page.wait_for_selector("#thumbs canvas[data-image='7']")
    for i in (0, 1, 3, 7):
        page.click(f"#thumbs canvas[data-image='{i}']")
    assert page.locator("#picked-count").inner_text() == "2"
    page.click("#graph-start")
    page.wait_for_selector("[data-node=Affine1]")
    for _ in range(4):
        step(page, "#step-forward")
    for _ in range(4):
        step(page, "#step-backward")
    assert page.locator("#step-status").get_attribute("data-phase") == "done"
    assert page.locator("[data-node=Relu1] [data-key=mask]").count() == 1  # ReLU shows its mask
    assert page.locator("[data-node=loss] [data-key=y]").count() == 1  # SoftmaxWithLoss its y and t
    assert page.locator("[data-node=loss] [data-key=t]").count() == 1

    area = page.locator("[data-node=Affine1] [data-key=dW] textarea")
    page_dW = np.array(json.loads(area.input_value()))
    served = digits_server.served
    x, t = served.test_images()
    batch = x[[3, 7]].reshape(2, *served.sample_shape)
    expected = copy.deepcopy(served.model).astype(np.float64).gradient(batch, t[[3, 7]])["W1"]
    assert page_dW.shape == (expected.size,)
    scale = np.abs(expected).max()
    assert scale > 1e-6  # a real gradient (small: the served net is sure of these digits), not zeros
    np.testing.assert_allclose(page_dW.reshape(expected.shape), expected, rtol=1e-6, atol=1e-6 * scale)
    page.locator("[data-node=Affine1] [data-key=dW] details summary").click()
    screenshot(page, "serve-step-network", tmp_path)


# -- Train --------------------------------------------------------------------------------------

def test_start_and_stop_a_training_run(page, digits_server: Server, tmp_path: Path) -> None:
    open_app(page, digits_server)
    page.click("#tab-train")
    page.fill("#train-epochs", "100")
    page.fill("#train-hidden", "100")
    page.click("#train-start")
    page.wait_for_function("Number(document.getElementById('loss-chart').dataset.points || 0) > 30")
    page.wait_for_function("Number(document.getElementById('acc-chart').dataset.points || 0) >= 2")
    # A second start while the run trains is refused with a message.
    assert page.locator("#train-start").is_disabled()
    status = page.evaluate(
        """async () => (await fetch('/api/train', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                   body: '{}'})).status"""
    )
    assert status == 409
    page.click("#train-stop")
    page.wait_for_function("document.getElementById('train-status').dataset.status === 'stopped'")
    points = int(page.locator("#loss-chart").get_attribute("data-points"))
    assert points > 30
    assert int(page.locator("#weights").get_attribute("data-units")) == 36
    assert shown(page.lang, "train.stopped").fullmatch(page.locator("#train-status").inner_text())
    run = digits_server.app.state.training.run
    assert run.status == "stopped" and run.trainer.epoch < 100
    assert len(run.trainer.history.step_loss) == points
    # The finished run can be saved as a model file.
    with page.expect_download() as download:
        page.click("#train-save")
    saved = tmp_path / "run.safetensors"
    download.value.save_as(saved)
    again = load_served(saved)
    assert again.architecture == "64-100-10"
    screenshot(page, "serve-train", tmp_path)
