"""This machine's split sizes (``kernels.split_sizes``), measured afresh: a float32 pass, a
product and the SGD and Adam updates, whole against split across 2 owned threads, us by size
(the median of a round, the best of 3 rounds), and the size each split pays from.

    python benchmarks/results/2026-12-06-split-sizes/split_sizes.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/results/2026-12-06-split-sizes/split_sizes.py

Output: split_sizes-skylakex.txt, split_sizes-haswell.txt.
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ["LAYERWISE_CACHE_DIR"] = tempfile.mkdtemp(prefix="split-sizes-")  # measured, not recalled

import numpy as np

from layerwise.kernels import blas_limits, split_sizes, threads
from layerwise.optim import SGD, Adam

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas


def main() -> None:
    blas_limits.set_blas_threads(2)
    with threads.owned_threads() as workers:
        split_sizes.adopt()
        for opt in (SGD(lr=0.1), Adam(lr=1e-3)):
            opt.step = 1
            opt._begin_step()
            split_sizes.update_min_elements(type(opt).__name__, opt._apply, opt.slots, np.dtype(np.float32))
    blas = _blas()
    print(f"Split sizes, {workers} owned threads, OpenBLAS {blas.get('version')} {blas.get('architecture')}")
    for key, record in split_sizes.kept_sizes().items():
        at = "never" if record["min"] >= split_sizes.NEVER else f"{record['min']:,}"
        print(f"\n{key}: split from {at}\n")
        print("| size | whole us | split us | split / whole |")
        print("|--:|--:|--:|--:|")
        for size, (whole, split) in sorted(record["us"].items(), key=lambda item: int(item[0])):
            print(f"| {int(size):,} | {whole} | {split} | {split / whole:.2f} |")


if __name__ == "__main__":
    main()
