"""``layerwise sweep``: the book's hyperparameter search (chapter 6), each trial a plain
function run through a ``concurrent.futures.Executor``: a local process pool by default, a
Dask cluster by address.

- :mod:`~layerwise.sweep.spec`: the settings, the ranges, and the trial configurations.
- :mod:`~layerwise.sweep.trial`: ``run_trial(config) -> result``, the one function a worker runs.
- :mod:`~layerwise.sweep.store`: ``SWEEP_DIR``: sweep.json and trials.jsonl, appended whole.
- :mod:`~layerwise.sweep.run`: the trials through an executor, resumed, and the summary.
- :mod:`~layerwise.sweep.plots`: the book's figure of the best trials, and lr against weight decay.
"""

from .run import best_trials, cluster_executor, local_executor, pools_after, prestart, run_sweep, summary, train_command
from .spec import BOOK_LR, BOOK_WEIGHT_DECAY, SweepSpec, parse_range
from .store import SweepDir
from .trial import run_trial, validation_split

__all__ = [
    "BOOK_LR",
    "BOOK_WEIGHT_DECAY",
    "SweepDir",
    "SweepSpec",
    "best_trials",
    "cluster_executor",
    "local_executor",
    "parse_range",
    "pools_after",
    "prestart",
    "run_sweep",
    "run_trial",
    "summary",
    "train_command",
    "validation_split",
]
