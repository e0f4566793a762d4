"""SimpleConvNet's convolution products on one chunk of the fused run (17 images, 5×5 filters,
one channel, col column-major with a ones column: ``kernels.fused``), whole and in blocks of
rows as ``kernels.blocks`` runs them: the forward col·weights (9,792 × 26)·(26 × 30) and the
weight gradient colᵀ·d (26 × 9,792)·(9,792 × 30); and the plain layer's forward on a
convolution chunk of 72 images, col·col_W with col_W a transposed view (41,472 × 25)·(25 × 30).
us, median of 9 alternating rounds, each the median of 30 calls, 1 thread.

    python benchmarks/results/2026-12-06-blocks/block_sizes.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/results/2026-12-06-blocks/block_sizes.py

Output: block_sizes-skylakex.txt, block_sizes-haswell.txt.
"""

import statistics
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import blocks, tuning

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.timing import median_seconds
from benchmarks.worker import _blas


def products() -> dict[str, tuple]:
    rng = np.random.default_rng(0)
    fused_col = np.asfortranarray(rng.random((17 * 576, 26), dtype=np.float32))
    layer_col = np.asfortranarray(rng.random((72 * 576, 25), dtype=np.float32))
    weights = rng.random((26, 30), dtype=np.float32)
    col_W = rng.random((30, 25), dtype=np.float32).T  # the layer's: a transposed view
    d = rng.random((17 * 576, 30), dtype=np.float32)
    return {
        "fused forward col·weights (9792 x 26)(26 x 30)": ("rows", fused_col, weights),
        "fused weight gradient colᵀ·d (26 x 9792)(9792 x 30)": ("inner", fused_col, d),
        "layer forward col·col_W (41472 x 25)(25 x 30), col_W a view": ("rows", layer_col, col_W),
    }


def main() -> None:
    lib = _blas()
    print(f"OpenBLAS {lib.get('version')} {lib.get('architecture')}, 1 thread; us, median of 9 alternating rounds")
    print()
    header = " | ".join("whole" if rows == 0 else f"{rows} rows" for rows in tuning.BLOCK_ROWS)
    print(f"| product | {header} | fastest / whole |")
    print("|---|" + "--:|" * (len(tuning.BLOCK_ROWS) + 1))
    with threadpool_limits(1, user_api="blas"):
        for name, (op, a, b) in products().items():
            out = np.empty((a.shape[0], b.shape[1]), np.float32)

            def run(rows: int, op: str = op, a: np.ndarray = a, b: np.ndarray = b, out: np.ndarray = out) -> None:
                if op == "rows":
                    blocks._rows_in_blocks(a, b, out, rows) if rows else np.matmul(a, b, out=out)
                else:
                    blocks._inner_in_blocks(a, b, rows) if rows else np.matmul(a.T, b)

            rounds: dict[int, list[float]] = {rows: [] for rows in tuning.BLOCK_ROWS}
            for _ in range(9):
                for rows in rounds:
                    rounds[rows].append(median_seconds(lambda rows=rows: run(rows), 30))
            us = {rows: 1e6 * statistics.median(times) for rows, times in rounds.items()}
            cells = " | ".join(f"{us[rows]:.0f}" for rows in tuning.BLOCK_ROWS)
            print(f"| {name} | {cells} | {min(us.values()) / us[0]:.2f} |")


if __name__ == "__main__":
    main()
