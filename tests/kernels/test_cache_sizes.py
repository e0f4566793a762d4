"""The machine's caches read from sysfs, and the working sets sized from them
(layerwise.kernels.cache_sizes)."""

import numpy as np
import pytest

import layerwise as lw
from layerwise.kernels import cache_sizes


def _sysfs(root, caches):
    for i, (level, kind, size, cpus) in enumerate(caches):
        index = root / f"index{i}"
        index.mkdir(parents=True)
        for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", cpus)):
            (index / name).write_text(f"{value}\n")
    return root


def test_the_last_level_cache_is_read_from_sysfs(tmp_path):
    root = _sysfs(tmp_path, [(1, "Data", "48K", "0"), (1, "Instruction", "32K", "0"),
                             (2, "Unified", "1024K", "0"), (3, "Unified", "32768K", "0-1")])
    assert cache_sizes.last_level_cache(root) == (32 * 2**20, 2)
    assert cache_sizes.last_level_cache(tmp_path / "missing") is None
    assert cache_sizes._count_cpus("0-3,8,10-11") == 7


def test_the_core_cache_is_the_level_2_data_cache_from_sysfs(tmp_path):
    cache_sizes.core_cache_bytes.cache_clear()
    try:
        root = _sysfs(tmp_path / "amd", [(1, "Data", "48K", "0"), (1, "Instruction", "32K", "0"),
                                         (2, "Unified", "1024K", "0"), (3, "Unified", "32768K", "0-1")])
        assert cache_sizes.core_cache_bytes(root) == 2**20
        huge = _sysfs(tmp_path / "huge", [(2, "Unified", "65536K", "0")])
        assert cache_sizes.core_cache_bytes(huge) == 4 * 2**20  # clamped
        assert cache_sizes.core_cache_bytes(tmp_path / "missing") == 2**20  # the default
    finally:
        cache_sizes.core_cache_bytes.cache_clear()


@pytest.mark.parametrize(("found", "inference", "inference_one", "conv"), [
    ((32 * 2**20, 2), 8 * 2**20, 4 * 2**20, 4 * 2**20),  # the AMD VM: 32 MiB of L3 for 2 CPUs
    ((30 * 2**20, 1), 15 * 2**20, 7.5 * 2**20, 7.5 * 2**20),
    ((512 * 2**20, 2), 32 * 2**20, 32 * 2**20, 16 * 2**20),  # clamped
    ((2**20, 4), 2**20, 2**20, 2**19),
    (None, 8 * 2**20, 4 * 2**20, 4 * 2**20),  # no sysfs
])
def test_chunk_sizes_are_a_half_and_a_quarter_of_the_cache_share_of_a_cpu(
    monkeypatch, found, inference, inference_one, conv
):
    monkeypatch.setattr(cache_sizes, "last_level_cache", lambda: found)
    chunk_sizes = (cache_sizes.inference_chunk_bytes, cache_sizes.conv_chunk_bytes)
    for size in chunk_sizes:
        size.cache_clear()
    try:
        assert cache_sizes.inference_chunk_bytes(2) == inference  # predict's chunks on several threads
        assert cache_sizes.inference_chunk_bytes(1) == inference_one  # on one
        assert cache_sizes.conv_chunk_bytes() == conv  # a convolution's im2col chunks
    finally:
        for size in chunk_sizes:
            size.cache_clear()


def test_a_model_chunks_by_the_machine_unless_told(monkeypatch):
    model = lw.DeepConvNet(seed=0, dtype=np.float32)
    per_image = 2 * 16 * 28 * 28 * 4  # the second convolution's input and output, one image
    import layerwise.models.sequential

    monkeypatch.setattr(layerwise.models.sequential, "inference_chunk_bytes", lambda threads: threads * 4 * 2**20)
    assert model.inference_batch_size((1, 28, 28), 4) == 4 * 2**20 // per_image
    assert model.inference_batch_size((1, 28, 28), 4, threads=2) == 8 * 2**20 // per_image
    model.inference_chunk_bytes = 2**20
    assert model.inference_batch_size((1, 28, 28), 4) == 2**20 // per_image
