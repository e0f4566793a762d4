"""kernels.inference.all_finite equals np.isfinite(x).all()."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layerwise as lw
from layerwise.kernels.inference import all_finite

SPECIAL = [0.0, -0.0, 1.0, -1.0, 3e38, -3e38, 1e-45, np.nan, np.inf, -np.inf]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       shape=st.sampled_from([(0, 3), (7,), (1, 784), (100, 784), (5000,), (3, 1, 28, 28), (2, 70000)]),
       layout=st.sampled_from(["C", "F", "strided"]))
def test_all_finite_equals_np_isfinite_all(data, dtype, shape, layout):
    x = np.ones(shape, dtype) * data.draw(st.sampled_from([1.0, 3e38]))  # huge: every sum overflows
    for _ in range(data.draw(st.integers(0, 3))):
        if x.size:
            x.reshape(-1)[data.draw(st.integers(0, x.size - 1))] = data.draw(st.sampled_from(SPECIAL))
    x = {"C": x, "F": np.asfortranarray(x), "strided": x[..., ::2]}[layout]
    with np.errstate(over="ignore", invalid="ignore"):
        assert all_finite(x) == bool(np.isfinite(x).all())


@pytest.mark.parametrize("layout", ["C", "F"])
def test_predict_finiteness_check_refuses_non_finite_and_passes_huge_finite(layout):
    net = lw.TwoLayerNet(6, 4, 3, seed=0)
    x = np.asarray(np.random.default_rng(0).random((5, 6), dtype=np.float32), order=layout)
    x[3, 2], x[3, 3] = 3e38, 3e38  # finite; their sum overflows, so the quick check looks closer
    with np.errstate(over="ignore"):  # the sum, then the network itself, overflow
        net.predict(x)  # no error: every value is finite
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy(order=layout)
        y[4, 1] = bad
        with pytest.raises(lw.InputError, match="sample 4 contains NaN or infinity"):
            net.predict(y)
