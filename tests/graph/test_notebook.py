"""The step-through in Jupyter (layerwise.graph.notebook): the static table, the ipywidgets
buttons, the fallback without ipywidgets, and step_through on graphs, examples and models."""

from __future__ import annotations

import sys
from html.parser import HTMLParser

import ipywidgets  # noqa: F401 - a test dependency (the widget path), never skipped
import numpy as np
import pytest
from IPython.core import formatters

from layerwise import TwoLayerNet
from layerwise.errors import InputError
from layerwise.graph import Graph, Stepper, step_through
from layerwise.graph import stepper as plain
from layerwise.graph.notebook import CheckRows, check_table_html
from layerwise.graph.stepper import CheckRow


class _Page(HTMLParser):
    """An HTML fragment as its tags and its text (entities decoded, as a browser shows it)."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.rows: list[tuple[dict, list[str]]] = []  # (attributes of <tr>, texts of its cells)
        self._text: list[str] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append((dict(attrs), []))
        elif tag in ("td", "th"):
            self.rows[-1][1].append("")
        elif tag == "br":
            self._add(" | ")

    def handle_data(self, data: str) -> None:
        self._add(data)

    def _add(self, data: str) -> None:
        self._text.append(data)
        if self.rows and self.rows[-1][1]:
            self.rows[-1][1][-1] += data

    @property
    def text(self) -> str:
        return "".join(self._text)

    def body_rows(self) -> list[tuple[dict, list[str]]]:
        """The rows of the node table (not its header)."""
        return [(attrs, cells) for attrs, cells in self.rows if cells and cells[0].split()[0].isdigit()]


def _cells(s: Stepper) -> dict[str, list[str]]:
    """Node table cells by the node's output name (column 2 holds 'inputs → output')."""
    rows = _Page(s._repr_html_()).body_rows()
    return {cells[1].split("→ ")[1].split(" |")[0]: cells for _, cells in rows}


# -- the static table ----------------------------------------------------------------------------

def test_a_fresh_stepper_lists_the_nodes_with_empty_cells_and_a_hint():
    s = step_through("apple")
    page = _Page(s._repr_html_())
    assert "call .run() or .step_forward()" in page.text
    assert "apple = 100" in page.text and "tax = 1.1" in page.text  # the inputs are known already
    rows = page.body_rows()
    assert len(rows) == 2
    for _, cells in rows:
        assert "Mul" in cells[1]
        assert cells[2:] == ["", "", "", ""]


def test_apple_html_after_each_step_shows_the_books_numbers():
    s = step_through("apple")
    s.step_forward()
    cells = _cells(s)
    assert cells["apple_price"][2] == "apple_price = 200"
    assert cells["apple_price"][3] == "x = 100 | y = 2"  # the Mul node's caches
    assert cells["price"][2] == ""
    s.step_forward()
    cells = _cells(s)
    assert cells["price"][2] == "price = 220"
    assert cells["price"][4:] == ["", ""]
    assert "next: .step_backward() runs node 1" in _Page(s._repr_html_()).text

    s.step_backward()
    cells = _cells(s)
    assert cells["price"][4] == "1"
    assert cells["price"][5] == "dx = 1.1 → apple_price | dy = 200 → tax"
    assert cells["apple_price"][4:] == ["", ""]  # its backward has not run yet
    s.step_backward()
    cells = _cells(s)
    assert cells["apple_price"][4] == "1.1"
    assert cells["apple_price"][5] == "dx = 2.2 → apple | dy = 110 → apple_num"


def test_the_current_node_is_highlighted():
    s = step_through("apple")
    assert not any(attrs.get("class") == "current" for attrs, _ in _Page(s._repr_html_()).body_rows())
    for step, expected in [(s.step_forward, 0), (s.step_forward, 1), (s.step_backward, 1), (s.step_backward, 0)]:
        step()
        current = [cells[0] for attrs, cells in _Page(s._repr_html_()).body_rows() if attrs.get("class") == "current"]
        assert current == [f"{expected} ▶"]


def test_every_text_is_escaped():
    g = Graph(title="<script>alert(1)</script>")
    b = g.input("<b>", 3.0)
    y = g.input("y&z", 2.0)
    g.mul(b, y, name="<i>out</i>")
    s = step_through(g)
    s.run()
    page = _Page(s._repr_html_())
    assert "script" not in page.tags and page.tags.count("i") == 1  # the hint's, none from a name
    assert page.tags.count("b") == 1 + len(g.ops)  # the title and each node's label, nothing from a name
    assert "<script>alert(1)</script>" in page.text
    assert "<b> = 3" in page.text and "y&z = 2" in page.text
    assert "<i>out</i> = 6" in page.text
    assert "dx = 2 → <b>" in page.text


def test_the_table_shows_relu_mask_and_softmax_caches_of_a_network():
    net = TwoLayerNet(input_size=4, hidden_size=3, output_size=2, weight_init_std=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 4))
    s = step_through(net, x, np.array([0, 1]))
    s.run()
    cells = _cells(s)
    assert cells["Relu1"][3].startswith("mask = (2, 3) [")
    assert cells["loss"][3].startswith("y = (2, 2) [") and "t = (2,) [0 1]" in cells["loss"][3]
    assert "dW = (4, 3) [" in cells["Affine1"][5] and "db = (3,) [" in cells["Affine1"][5]
    assert "W: (4, 3) [" in cells["Affine1"][1]  # the parameters, beside the node


def test_check_returns_rows_that_show_as_a_table():
    s = step_through("apple")
    s.run()
    rows = s.check()
    assert isinstance(rows, CheckRows) and isinstance(rows, list)
    assert [r.name for r in rows] == ["apple", "apple_num", "tax", "apple_price"]
    page = _Page(rows._repr_html_())
    assert page.rows[0][1] == ["value", "backprop", "numerical", "relative error", "checked / size", "note"]
    by_name = {cells[0]: cells for _, cells in page.rows[1:]}
    assert by_name["apple"][1:3] == ["2.2", "2.2"] and by_name["tax"][4] == "1 / 1"
    assert "over" not in page.text


def test_check_table_flags_a_failed_gradient_and_escapes_names():
    rows = [CheckRow("<W>", np.zeros((3, 4)), np.ones((3, 4)), 1.0, 5, 12),
            CheckRow("b", 1.0, 1.0, 0.0, 1, 1)]
    page = _Page(check_table_html(rows))
    assert "W" not in page.tags
    (_, bad), (_, good) = page.rows[1:]
    assert bad[0] == "<W>" and bad[3] == "1 (over 1e-6)" and bad[4] == "5 / 12"
    assert bad[1] == "(3, 4) [0 0 0 …]"
    assert good[3] == "0"


# -- in Jupyter: buttons, or the table ----------------------------------------------------------------

def test_without_ipywidgets_the_notebook_shows_the_static_table(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now fails
    s = step_through("apple")
    s.step_forward()
    data, _ = formatters.DisplayFormatter().format(s)
    assert not any("widget" in key for key in data)
    assert data["text/html"] == s._repr_html_()
    assert "apple_price = 200" in _Page(data["text/html"]).text
    assert data["text/plain"] == repr(s)
    with pytest.raises(ImportError):
        s.widget()


def test_with_ipywidgets_the_notebook_shows_the_buttons_and_keeps_the_table_for_other_viewers():
    s = step_through("apple")
    data, _ = formatters.DisplayFormatter().format(s)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "call .run() or .step_forward()" in _Page(data["text/html"]).text


def test_clicking_the_buttons_steps_and_redraws():
    s = step_through("apple")
    ui = s.widget()
    click = {name: button.click for name, button in ui.buttons.items()}

    def enabled() -> list[str]:
        return [name for name, button in ui.buttons.items() if not button.disabled]

    assert enabled() == ["Step forward"]
    click["Step forward"]()
    click["Step forward"]()
    text = _Page(ui.output.value).text
    assert "apple_price = 200" in text and "price = 220" in text
    assert enabled() == ["Step backward", "Reset"]
    click["Step backward"]()
    click["Step backward"]()
    text = _Page(ui.output.value).text
    assert "dx = 2.2 → apple" in text and "dy = 110 → apple_num" in text and "dy = 200 → tax" in text
    assert (s.forward_done, s.backward_done) == (2, 2)
    assert enabled() == ["Reset", "Check"]

    click["Check"]()
    page = _Page(ui.output.value)
    assert "gradient check" in page.text and ["apple", "2.2", "2.2"] in [cells[:3] for _, cells in page.rows]
    click["Reset"]()
    assert (s.forward_done, s.backward_done) == (0, 0)
    assert "gradient check" not in _Page(ui.output.value).text  # a reset makes the old check stale
    assert enabled() == ["Step forward"]


def test_out_of_order_clicks_show_the_message_instead_of_raising():
    s = step_through("apple")
    ui = s.widget()
    ui.buttons["Step backward"].click()  # disabled in the page, but a click from code still arrives
    assert "Step backward: step backward needs the whole forward pass first" in _Page(ui.output.value).text
    assert (s.forward_done, s.backward_done) == (0, 0)
    ui.buttons["Check"].click()
    assert "Check: check needs the finished backward pass" in _Page(ui.output.value).text
    ui.buttons["Step forward"].click()
    assert "needs" not in _Page(ui.output.value).text  # a good step clears the message
    ui.buttons["Step forward"].click()
    ui.buttons["Step forward"].click()
    assert "the forward pass is complete" in _Page(ui.output.value).text
    assert s.forward_done == 2


# -- step_through ---------------------------------------------------------------------------------

def test_step_through_a_float64_two_layer_net_gives_its_gradient():
    net = TwoLayerNet(input_size=6, hidden_size=5, output_size=3, weight_init_std=0.3, seed=1)
    assert net.dtype == np.float64
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((4, 6)), np.array([0, 2, 1, 2])
    before = {k: v.copy() for k, v in net.params.items()}
    s = step_through(net, x, t)
    assert isinstance(s, Stepper)
    s.run()
    expected = net.gradient(x, t)
    for label, suffix in [("Affine1", "1"), ("Affine2", "2")]:
        grads = s.view(label).param_grads
        np.testing.assert_allclose(grads["dW"], expected["W" + suffix], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(grads["db"], expected["b" + suffix], rtol=1e-12, atol=1e-15)
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)  # the net's own layers were not stepped


def test_step_through_graphs_and_examples():
    g = Graph()
    g.mul(g.input("a", 2.0), g.input("b", 3.0), name="c")
    s = step_through(g)
    assert isinstance(s, Stepper) and isinstance(s, plain.Stepper) and s.graph is g
    assert [op.output.name for op in step_through("apple-orange").graph.ops][-1] == "price"
    sig = step_through("sigmoid", x=0.0)
    sig.run()
    assert sig.graph["x"].grad == pytest.approx(0.25)
    assert sig.graph["x_fused"].grad == pytest.approx(0.25)


@pytest.mark.parametrize(("args", "message"), [
    (("pear",), "no example graph 'pear'"),
    (("apple", 1.0), "takes no x or t"),
    ((42,), "expected a Graph, an example name (apple, apple-orange, sigmoid) or a model"),
    ((TwoLayerNet(2, 2, 2, seed=0),), "x and t missing"),
    ((TwoLayerNet(2, 2, 2, seed=0), np.zeros((1, 2))), "t missing"),
])
def test_step_through_says_what_it_takes(args, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        step_through(*args)


def test_step_through_a_graph_refuses_a_batch():
    with pytest.raises(InputError, match="x and t are for a model"):
        step_through(step_through("apple").graph, x=np.zeros(1))
