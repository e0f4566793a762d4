"""recipes: the networks and data `layerwise train`, the web app and the search build by name."""

import numpy as np
import pytest

from layerwise.errors import InputError
from layerwise.recipes import DEFAULT_LR, MODELS, OPTIMIZERS, build_network, load_run_data

SETTINGS = {"dataset": "digits", "model": "two-layer", "hidden": None, "activation": "relu", "optimizer": "adam",
            "lr": 0.01, "epochs": 1, "batch_size": 100, "weight_decay": 0.0, "dropout": 0.0, "batchnorm": False,
            "seed": 0, "dtype": "float32", "lr_schedule": "constant"}


@pytest.mark.parametrize("kind", MODELS)
def test_every_model_name_builds_a_network_that_fits_its_data(kind):
    settings = {**SETTINGS, "model": kind}
    (x, _), _ = load_run_data(settings, progress=False)
    assert x.ndim == (2 if kind in ("two-layer", "mlp") else 4)  # MLPs take flat images
    model = build_network(settings, x.shape[1:], 10)
    assert model.predict(x[:3]).shape == (3, 10)
    assert model.dtype == np.float32


def test_every_optimizer_has_a_default_lr():
    assert set(DEFAULT_LR) == set(OPTIMIZERS)


def test_mlp_only_options_are_refused_for_other_models():
    with pytest.raises(InputError, match="need --model mlp"):
        build_network({**SETTINGS, "dropout": 0.5}, (64,), 10)
