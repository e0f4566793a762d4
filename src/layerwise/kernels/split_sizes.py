"""When work is worth splitting across the threads layerwise owns on this machine: the smallest
elementwise pass, optimizer update and matrix product that ran faster split than whole,
measured the first time layerwise owns that many threads here, and kept.

What they decide: ``threads.worth_splitting`` (a pass: an activation, pooling, an im2col copy),
``updates.apply_in_parts`` (an optimizer's update of one parameter) and ``threads.matmul``
(a product) run whole below the sizes, in parts at or above them. Which core computes what
changes; the numbers do not, but for a product cut along its inner sum (``matmul`` says which).

Why measured: a part handed to a pool thread costs a wake-up and data crossing cores, and how
much differs by machine. The constants these replace came from the family-26 AMD VM, where a
handoff cost ~25 us and a float32 pass over 2^17 values paid for it. On the Zen 4 VM a pass
that size took 2.0x as long split as whole (102 against 50 us, the scalar loop below): Adam's
update (13 passes) paid for splitting from ~200,000 values, SGD's from ~930,000 (in another
measurement never: 0.97 of whole at 2^20), a product from ~11M multiply-adds (SkylakeX kernels;
benchmarks/results/2026-12-06-split-sizes/split_sizes-skylakex.txt, and the run's report).
The pass is timed as the ReLU runs it (``activations.max_zero``): NumPy's scalar
``np.maximum(x, 0)``, 3x slower a value, paid from ~515,000 values where the ReLU's own loop
pays from ~1,070,000 (at 2^19 values 93 us whole, 145 split; benchmarks/results/
2026-12-06-split-check/pass_ways-skylakex.txt).

Why checked: each measurement is bracketed by ``measuring.bracketed`` (two readings of ~80 ms
each, once per machine); one made while BLAS on the owned threads ran well below its usual
speed-up here is not kept (the defaults serve the rest of the process, and a later run
measures again), as a thread plan is not (``kernels.tuning``): the VM's slow periods, when its
second core gives next to nothing, would make "never split" look right, and it would be kept
for good.

``LAYERWISE_TUNING=0``, and a worker process of the ``"processes"`` plan that was handed no
kept sizes, use ``DEFAULTS``: the earlier constants.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import kept_choices, measuring, threads
from .activations import max_zero
from .measuring import median_seconds

__all__ = ["DEFAULTS", "adopt", "kept_sizes", "update_min_elements"]

#: The sizes before they were measured: values of a pass, multiply-adds of a product (an
#: update's is the pass's).
DEFAULTS = {"pass": threads.SPLIT_MIN_ELEMENTS, "product": threads.SPLIT_MIN_MACS}
#: Splitting must be this much faster at a size, and at every larger size measured.
MARGIN = 0.05
#: A size this large means "never split": nothing measured split faster.
NEVER = 1 << 40
_PASS_SIZES = tuple(1 << e for e in range(14, 23))  # 16K .. 4M values
#: Below the smallest size measured nothing is split.
SMALLEST = _PASS_SIZES[0]
_PRODUCT_ROWS, _PRODUCT_SIZES = 128, (64, 128, 256, 384, 512, 768, 1024)  # (rows, d) @ (d, d)
_ROUNDS = 3


def smallest_that_pays(whole: dict[int, float], split: dict[int, float]) -> int:
    """The size from which ``split`` takes less than (1 - MARGIN) of ``whole``'s time at every
    larger size measured: between the largest size where it did not and the next, where the
    ratio split / whole crosses 1 - MARGIN, interpolated in the sizes' logarithm (the sizes
    measured are powers of two apart; Adam's update paid at 2^19 values and not at 2^18, and
    SimpleConvNet's 432,000 weights lie between). ``NEVER`` if the largest did not pay; the
    smallest size if all did."""
    sizes = sorted(whole)
    ratio = {size: split[size] / whole[size] for size in sizes}
    goal = 1 - MARGIN
    paying = len(sizes)
    while paying and ratio[sizes[paying - 1]] < goal:
        paying -= 1
    if paying == len(sizes):
        return NEVER
    if paying == 0:
        return sizes[0]
    (small, big), (r_small, r_big) = sizes[paying - 1 : paying + 1], (ratio[sizes[paying - 1]], ratio[sizes[paying]])
    return round(small * (big / small) ** ((r_small - goal) / (r_small - r_big)))


def _compare(sizes: tuple[int, ...], make: Callable[[int], tuple[Callable[[], object], Callable[[], object]]],
             work: Callable[[int], int]) -> tuple[dict[int, float], dict[int, float]]:
    """Seconds of each size's whole and split way, the best of ``_ROUNDS`` rounds of medians."""
    whole, split = {}, {}
    for size in sizes:
        one, parts = make(size)
        reps = max(5, min(100, (1 << 23) // work(size)))
        whole[size] = min(median_seconds(one, reps) for _ in range(_ROUNDS))
        split[size] = min(median_seconds(parts, reps) for _ in range(_ROUNDS))
    return whole, split


def _measure_pass(dtype: np.dtype) -> tuple[dict[int, float], dict[int, float]]:
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[Callable[[], object], Callable[[], object]]:
        x = rng.standard_normal(n).astype(dtype)
        out = np.empty_like(x)
        return (lambda: max_zero(x, out),
                lambda: threads.in_parts(lambda b: max_zero(x[b], out[b]), n))

    return _compare(_PASS_SIZES, make, lambda n: n)


def _measure_product(dtype: np.dtype) -> tuple[dict[int, float], dict[int, float]]:
    rng = np.random.default_rng(0)

    def make(d: int) -> tuple[Callable[[], object], Callable[[], object]]:
        a = rng.standard_normal((_PRODUCT_ROWS, d)).astype(dtype)
        b = rng.standard_normal((d, d)).astype(dtype)
        return lambda: np.dot(a, b), lambda: threads.matmul(a, b, min_macs=0)

    whole, split = _compare(_PRODUCT_SIZES, make, lambda d: _PRODUCT_ROWS * d * d // 16)
    macs = {_PRODUCT_ROWS * d * d: d for d in _PRODUCT_SIZES}
    return ({m: whole[d] for m, d in macs.items()}, {m: split[d] for m, d in macs.items()})


def _record(whole: dict[int, float], split: dict[int, float]) -> dict:
    return {"min": smallest_that_pays(whole, split),
            "us": {str(size): [round(whole[size] * 1e6, 1), round(split[size] * 1e6, 1)] for size in whole},
            "measured": time.strftime("%Y-%m-%d")}


def _valid(record: object) -> bool:
    return isinstance(record, dict) and isinstance(record.get("min"), int) and record["min"] > 0


#: Keys measured in this process while the cores did not run as usual (``measuring``): their
#: defaults serve until the process ends, and a later run measures again.
_disturbed: set[str] = set()


def _kept_or_measured(key: str, measure: Callable[[], tuple[dict[int, float], dict[int, float]]]) -> int | None:
    """The size kept for ``key``, else measured now on the owned threads and kept; None when it
    cannot be measured now (tuning off, a worker process, another thread measuring) or was
    measured while BLAS on those threads ran well below its usual speed-up here
    (``measuring.bracketed``): the caller's default."""
    if not kept_choices.tuning_enabled() or key in _disturbed:
        return None
    signature = kept_choices.machine_signature()
    record = kept_choices.recall(signature, key, _valid)
    if record is None and kept_choices.measuring_here():
        with kept_choices.machine_lock(wait=False) as held:
            if held:  # else another thread measures, maybe waiting on the pool: not now
                record = kept_choices.recall(signature, key, _valid)
                if record is None:
                    measured, _, usual = measuring.bracketed(signature, threads.owned(), lambda: _record(*measure()))
                    if usual is None:
                        record = measured
                        kept_choices.remember(signature, key, record)
                    else:
                        _disturbed.add(key)
    return None if record is None else record["min"]


def adopt() -> dict[str, int]:
    """Inside ``threads.owned_threads`` with several threads: this machine's sizes for a pass and
    a product at that thread count (kept, else measured now in float32, ~0.3 s), set for
    ``threads``' splits; ``DEFAULTS`` where they cannot be had. Returns them."""
    workers = threads.owned()
    if workers <= 1:
        return dict(DEFAULTS)
    dtype = np.dtype(np.float32)
    found = {}
    # "relu pass": timed with the loop the ReLU runs (max_zero). Records under "pass" timed the
    # scalar np.maximum, 3x slower a value, so that splitting paid from half the size: unused.
    for kind, what, measure in (("pass", "relu pass", _measure_pass), ("product", "product", _measure_product)):
        size = _kept_or_measured(f"split {what} {dtype.name}, {workers} threads", lambda m=measure: m(dtype))
        found[kind] = DEFAULTS[kind] if size is None else size
    threads.set_split_sizes(found["pass"], found["product"])
    return found


def update_min_elements(rule: str, apply: Callable[..., None], slots: tuple[str, ...], dtype: np.dtype) -> int | None:
    """The smallest parameter whose update by ``apply`` (an optimizer's ``_apply``, ``rule`` its
    class name, ``slots`` its state arrays) ran faster split across the owned threads than
    whole on this machine: kept, else measured now on scratch arrays (the optimizer's own state
    untouched); None where it can be neither (the caller takes the pass's size, this once)."""
    workers = threads.owned()
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[Callable[[], object], Callable[[], object]]:
        p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype) * 1e-3
        state = {slot: np.zeros(n, dtype) for slot in slots}
        s = np.empty(n, dtype)

        def part(b: slice) -> None:
            apply(p[b], g[b], {slot: a[b] for slot, a in state.items()}, s[b])

        return lambda: apply(p, g, state, s), lambda: threads.in_parts(part, n)

    return _kept_or_measured(f"split update {rule} {np.dtype(dtype).name}, {workers} threads",
                             lambda: _compare(_PASS_SIZES, make, lambda n: 4 * n))


def kept_sizes() -> dict[str, dict]:
    """The split sizes kept for this machine: key ("pass float32, 2 threads", "update Adam
    float32, 2 threads", ...) -> record ("min", and the "us" each size took whole and split)."""
    return kept_choices.kept_records("split ", _valid)
