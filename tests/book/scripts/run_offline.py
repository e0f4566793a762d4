"""Run a book-style script offline, with the real MNIST test set standing in for the training set.

Usage: python run_offline.py SCRIPT [ARGS...]

There is no MNIST training set in ../shared (and no network in the tests), so the test makes a
data folder (LAYERWISE_DATA) where train-images/train-labels are links to the t10k files. layerwise
checks every file against its published checksum; this runner tells it, for this process only,
that the training files' published checksums are the test files'. The script itself then runs
unchanged, as ``python SCRIPT`` would run it (``__name__ == "__main__"``, its folder on sys.path).
"""

import dataclasses
import os
import runpy
import sys

from layerwise.datasets import mnist

spec = mnist.DATASETS["mnist"]
md5 = dict(spec.md5)
md5["train-images-idx3-ubyte"] = md5["t10k-images-idx3-ubyte"]
md5["train-labels-idx1-ubyte"] = md5["t10k-labels-idx1-ubyte"]
mnist.DATASETS["mnist"] = dataclasses.replace(spec, md5=md5)

script = os.path.abspath(sys.argv[1])
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(script)
runpy.run_path(script, run_name="__main__")
