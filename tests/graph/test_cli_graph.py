"""``layerwise graph`` (layerwise.cli.graph): the book's graphs and model files as DOT text,
SVG and PNG, and its errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from graph_pictures import cli, dot_edges, svg_texts

from layerwise import io
from layerwise.datasets import load_digits
from layerwise.graph import format_value
from layerwise.models import TwoLayerNet


def test_cli_prints_dot_to_stdout():
    out = cli("apple").stdout
    assert out.startswith("digraph") and out.rstrip().endswith("}")
    assert ("×", "price", "220", "1") in dot_edges(out)
    out = cli("sigmoid", "--x", "2").stdout
    assert ("x", "sigmoid", "2", format_value(0.10499358540350662)) in dot_edges(out)


def test_cli_writes_dot(tmp_path):
    dot = tmp_path / "ao.dot"
    result = cli("apple-orange", "-o", str(dot))
    assert str(dot) in result.stdout and dot.read_text(encoding="utf-8") == cli("apple-orange").stdout


@pytest.mark.usefixtures("needs_dot")
def test_cli_writes_svg_and_png(tmp_path):
    svg, png = tmp_path / "ao.svg", tmp_path / "ao.png"
    cli("apple-orange", "-o", str(svg))
    assert "715" in [t for t, _ in svg_texts(svg.read_text(encoding="utf-8"))]
    cli("apple-orange", "-o", str(png), "--dpi", "72")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors(tmp_path):
    result = cli("banana", check=False)
    assert result.returncode == 2 and "neither a ready-made graph" in result.stderr
    result = cli("apple", "--x", "2", check=False)
    assert result.returncode == 2 and "--x applies to the sigmoid graph only" in result.stderr
    # No Graphviz on PATH: DOT still works, SVG names the program and how to install it.
    env = {**os.environ, "PATH": str(tmp_path)}
    assert cli("apple", "-o", str(tmp_path / "a.dot"), env=env).returncode == 0
    result = cli("apple", "-o", str(tmp_path / "a.svg"), check=False, env=env)
    assert result.returncode == 2 and "`dot`" in result.stderr and "apt-get install graphviz" in result.stderr


def digits_model_files(tmp_path):
    """A small net saved twice: with training state (dataset, input shape), and bare."""
    net = TwoLayerNet(64, 16, 10, weight_init_std=0.3, seed=3)
    path = io.save(net, tmp_path / "model.safetensors", state={"dataset": "digits", "input_shape": [64]})
    return net, path, io.save(net, tmp_path / "bare.safetensors")


def digits_loss_and_norm(net, n=20):
    _, (x, t) = load_digits()
    norm = np.linalg.norm(net.gradient(x[:n], t[:n])["W1"].astype(np.float64))
    return net.loss(x[:n], t[:n]), norm


def test_cli_draws_a_model_file(tmp_path):
    net, path, bare = digits_model_files(tmp_path)
    out = cli(str(path)).stdout  # no data: shapes for a batch of N
    assert "(N, 64)" in out and "(N, 16)" in out and "W2" in out and "‖∇‖" not in out

    # With a batch of the run's test images: the loss and the gradient norms, as DOT text.
    out = cli(str(path), "--batch", "20").stdout
    loss, norm = digits_loss_and_norm(net)
    assert f"L = {format_value(loss)}" in out
    assert f"‖∇‖ {format_value(norm)}" in out
    assert "digits test images" in out

    # A file without training state: shapes from the constructor; random inputs on request.
    out = cli(str(bare), "--batch", "4", "--dataset", "random").stdout
    assert "(4, 64)" in out and "random inputs, seed 0" in out and "L = " in out

    result = cli(str(path), "--x", "1", check=False)
    assert result.returncode == 2 and "sigmoid graph only" in result.stderr
    result = cli(str(path), "--input-shape", "a,b", check=False)
    assert result.returncode == 2 and "--input-shape" in result.stderr
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    result = cli(str(not_a_model), check=False)
    assert result.returncode == 2 and "notes.txt" in result.stderr


@pytest.mark.usefixtures("needs_dot")
def test_cli_draws_a_model_file_to_svg_and_png(tmp_path):
    net, path, bare = digits_model_files(tmp_path)
    svg = tmp_path / "model.svg"
    assert "wrote" in cli(str(path), "--batch", "20", "-o", str(svg)).stdout
    texts = [t for t, _ in svg_texts(svg.read_text(encoding="utf-8"))]
    loss, norm = digits_loss_and_norm(net)
    assert f"L = {format_value(loss)}" in texts
    assert f"‖∇‖ {format_value(norm)}" in texts
    assert any("digits test images" in text for text in texts)

    png = tmp_path / "bare.png"
    cli(str(bare), "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
