"""kernels.inference.all_finite equals np.isfinite(x).all()."""

import numpy as np
import pytest

import layerwise as lw


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
