"""`layerwise train / evaluate / predict` end to end, run as a user runs them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

import layerwise as lw


def layerwise_cmd(*args, cwd=None, check=True):
    result = subprocess.run([sys.executable, "-m", "layerwise", *map(str, args)], capture_output=True,
                            text=True, timeout=600, cwd=cwd)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`layerwise train` with no arguments, run in an empty folder."""
    cwd = tmp_path_factory.mktemp("user")
    result = layerwise_cmd("train", cwd=cwd)
    runs = list((cwd / "runs").iterdir())
    assert len(runs) == 1
    return result, runs[0]


def test_default_train_reaches_97_percent_and_writes_a_run(default_run):
    result, run_dir = default_run
    assert "test accuracy" in result.stdout and str(run_dir.name) in result.stdout
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["epochs"]) == 20
    assert history["epochs"][-1]["test_acc"] >= 0.97
    assert (run_dir / "history.csv").read_text().startswith("epoch,train_loss,train_acc,test_acc")
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = lw.load(run_dir / "model.safetensors")
    assert isinstance(model, lw.TwoLayerNet) and model.dtype == np.float32
    _, (x_test, t_test) = lw.load_digits()
    assert model.accuracy(x_test, t_test) == history["epochs"][-1]["test_acc"]
    settings = json.loads((run_dir / "config.json").read_text())
    assert settings["dataset"] == "digits" and settings["optimizer"] == "adam"


def test_training_is_deterministic_for_a_seed(tmp_path):
    for name in ("a", "b"):
        layerwise_cmd("train", "--epochs", 2, "--seed", 3, "--out", tmp_path / name, "--quiet")
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_extends_a_run_bit_exactly(tmp_path):
    common = ("--model", "mlp", "--hidden", "32,16", "--dropout", 0.2, "--optimizer", "adam", "--quiet")
    layerwise_cmd("train", *common, "--epochs", 4, "--out", tmp_path / "whole")
    layerwise_cmd("train", *common, "--epochs", 2, "--out", tmp_path / "split")
    layerwise_cmd("train", "--resume", tmp_path / "split", "--epochs", 4, "--quiet")
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    split = load_file(tmp_path / "split" / "model.safetensors")
    assert whole.keys() == split.keys()
    assert all(np.array_equal(whole[k], split[k]) for k in whole)
    history = json.loads((tmp_path / "split" / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3, 4]


def test_out_directory_of_another_run_is_refused_unless_forced(tmp_path):
    layerwise_cmd("train", "--epochs", 1, "--out", tmp_path, "--quiet")
    before = (tmp_path / "model.safetensors").read_bytes()
    result = layerwise_cmd("train", "--epochs", 1, "--out", tmp_path, "--quiet", check=False)
    assert result.returncode == 2 and "--force" in result.stderr
    assert (tmp_path / "model.safetensors").read_bytes() == before
    layerwise_cmd("train", "--epochs", 1, "--out", tmp_path, "--quiet", "--force")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--epochs", 0), "--epochs"),
        (("--batch-size", -5), "--batch-size"),
        (("--lr", "-0.1"), "--lr"),
        (("--lr", "nan"), "--lr"),
        (("--optimizer", "adamw"), "adamw"),
        (("--model", "resnet"), "resnet"),
        (("--dataset", "cifar"), "cifar"),
        (("--model", "two-layer", "--dropout", 0.5), "--model mlp"),
        (("--hidden", "10,-3"), "--hidden"),
    ],
)
def test_bad_arguments_are_named(tmp_path, args, words):
    result = layerwise_cmd("train", *args, "--out", tmp_path / "run", check=False)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_prints_and_draws(default_run, tmp_path):
    _, run_dir = default_run
    result = layerwise_cmd("evaluate", run_dir / "model.safetensors", "--out", tmp_path)
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout
    assert "class 9:" in result.stdout
    for name in ("confusion.png", "misclassified.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_predict_classifies_image_files(default_run, tmp_path):
    from PIL import Image

    _, run_dir = default_run
    _, (x_test, t_test) = lw.load_digits(normalize=False, flatten=False)
    paths = []
    for i in range(5):
        pixels = (x_test[i, 0].astype(np.float64) * 255 / 16).astype(np.uint8)
        dark_on_light = Image.fromarray(255 - pixels).resize((64, 64), Image.Resampling.NEAREST)
        path = tmp_path / f"digit{i}.png"
        dark_on_light.save(path)
        paths.append(path)
    result = layerwise_cmd("predict", run_dir / "model.safetensors", *paths)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5 and all("[inverted]" in line for line in lines)
    top1 = [int(line.split(": ")[1].split(" ")[0]) for line in lines]
    assert sum(int(a == b) for a, b in zip(top1, t_test[:5], strict=True)) >= 4
    import re

    probabilities = [float(p) for p in re.findall(r"\((\d\.\d+)\)", lines[0])]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1.0 + 1e-9


def test_predict_names_a_file_that_is_not_an_image(default_run, tmp_path):
    _, run_dir = default_run
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = layerwise_cmd("predict", run_dir / "model.safetensors", bad, check=False)
    assert result.returncode == 2 and "notes.png" in result.stderr


@pytest.mark.parametrize(("model", "epochs", "at_least"), [("convnet", 3, 0.93), ("deep-convnet", 1, 0.0)])
def test_conv_models_train_evaluate_and_predict(tmp_path, model, epochs, at_least):
    from PIL import Image

    run_dir = tmp_path / "run"
    layerwise_cmd("train", "--model", model, "--epochs", epochs, "--out", run_dir, "--quiet")
    history = json.loads((run_dir / "history.json").read_text())
    assert history["epochs"][-1]["test_acc"] >= at_least
    net = lw.load(run_dir / "model.safetensors")
    assert type(net).__name__ == {"convnet": "SimpleConvNet", "deep-convnet": "DeepConvNet"}[model]
    result = layerwise_cmd("evaluate", run_dir / "model.safetensors", "--out", tmp_path)
    assert f"accuracy {history['epochs'][-1]['test_acc']:.4f}" in result.stdout
    _, (x_test, _) = lw.load_digits(normalize=False, flatten=False)
    image = tmp_path / "digit.png"
    Image.fromarray((x_test[0, 0] * 15).astype(np.uint8)).save(image)
    lines = layerwise_cmd("predict", run_dir / "model.safetensors", image).stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(image))


def test_lr_schedule_option_is_saved_and_resumed(tmp_path):
    layerwise_cmd("train", "--epochs", 2, "--lr-schedule", "cosine", "--out", tmp_path / "run", "--quiet")
    settings = json.loads((tmp_path / "run" / "config.json").read_text())
    assert settings["lr_schedule"] == "cosine"
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    lrs = [row["lr"] for row in history["epochs"]]
    assert 0 < lrs[1] < lrs[0] < settings["lr"]
    # A run directory from before the option existed resumes with the constant schedule.
    layerwise_cmd("train", "--epochs", 1, "--out", tmp_path / "old", "--quiet")
    config = tmp_path / "old" / "config.json"
    settings = json.loads(config.read_text())
    del settings["lr_schedule"]
    config.write_text(json.dumps(settings))
    layerwise_cmd("train", "--resume", tmp_path / "old", "--epochs", 2, "--quiet")
    assert len(json.loads((tmp_path / "old" / "history.json").read_text())["epochs"]) == 2
    result = layerwise_cmd("train", "--lr-schedule", "linear", "--out", tmp_path / "bad", check=False)
    assert result.returncode == 2 and "cosine" in result.stderr
