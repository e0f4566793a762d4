"""Where measured choices are kept: the file, keyed by the machine, its lock, and a process
that measures nothing."""

import json
import threading

import pytest

from layerwise.kernels import kept_choices


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kept_choices, "_memory", {})
    monkeypatch.setattr(kept_choices, "_measuring_here", True)
    return tmp_path / "cache" / "tuning.json"


def test_the_cpu_is_named_with_its_family_model_and_stepping(tmp_path):
    # Two VMs that both call themselves "AMD EPYC" (Zen 4 and a faster one) must not share
    # the measured choices kept under the machine's signature.
    info = tmp_path / "cpuinfo"
    block = "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {model}\n" \
            "model name\t: AMD EPYC\nstepping\t: 1\n\n"
    info.write_text(block.format(n=0, model=17) + block.format(n=1, model=99))
    assert kept_choices.cpu_model(info) == "AMD EPYC (family 25, model 17, stepping 1)"
    bare = tmp_path / "bare"
    bare.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert kept_choices.cpu_model(bare) == "Some CPU"
    assert kept_choices.cpu_model(tmp_path / "missing")  # the platform module's answer, never empty


def test_the_signature_names_the_cpu_the_cores_the_blas_and_the_format():
    signature = kept_choices.machine_signature()
    assert signature.startswith(kept_choices.cpu_model()) and signature.endswith(f"| {kept_choices.FORMAT}")
    assert " cores | " in signature


def test_a_record_is_kept_for_this_process_and_in_the_file(monkeypatch, cache):
    def valid(record):
        return isinstance(record, dict) and "way" in record

    assert kept_choices.remember("machine A", "convolution C1", {"way": "winograd"})
    assert json.loads(cache.read_text()) == {"format": kept_choices.FORMAT,
                                             "machines": {"machine A": {"convolution C1": {"way": "winograd"}}}}
    monkeypatch.setattr(kept_choices, "_memory", {})  # a new process: only the file remembers
    assert kept_choices.recall("machine A", "convolution C1", valid) == {"way": "winograd"}
    assert kept_choices.recall("machine B", "convolution C1", valid) is None  # another machine
    monkeypatch.setattr(kept_choices, "_memory", {})
    assert kept_choices.recall("machine A", "convolution C1", lambda record: False) is None  # refused
    cache.write_text("{not json")  # a damaged file: nothing kept, and the next record rewrites it whole
    monkeypatch.setattr(kept_choices, "_memory", {})
    assert kept_choices.recall("machine A", "convolution C1", valid) is None
    assert kept_choices.remember("machine A", "product K1", {"rows": 0})
    assert json.loads(cache.read_text())["machines"] == {"machine A": {"product K1": {"rows": 0}}}


def test_kept_records_take_this_machines_by_prefix_from_the_file_and_this_process(monkeypatch, cache):
    here = kept_choices.machine_signature()
    kept_choices.remember(here, "convolution C2", {"way": "im2col"})
    kept_choices.remember("another machine", "convolution C3", {"way": "im2col"})
    monkeypatch.setattr(kept_choices, "_memory", {})
    kept_choices.adopt_choices({"convolution C1": {"way": "winograd"}, "product K1": {"rows": 256}})
    ways = kept_choices.kept_records("convolution ", lambda record: "way" in record)
    assert ways == {"C1": {"way": "winograd"}, "C2": {"way": "im2col"}}
    assert set(kept_choices.choices_here()) == {"convolution C1", "convolution C2", "product K1"}


def test_the_machine_lock_is_reentrant_and_says_when_another_thread_holds_it(cache):
    answers = []
    with kept_choices.machine_lock() as held:
        with kept_choices.machine_lock(wait=False) as again:  # the same thread: re-entrant
            assert held and again
        other = threading.Thread(target=lambda: answers.append(kept_choices.machine_lock(wait=False).__enter__()))
        other.start()
        other.join(10)
        assert answers == [False]  # another thread of this process: told at once, not kept waiting
    assert cache.with_suffix(".lock").exists()  # the lock across processes is a file beside the cache


def test_a_process_that_measures_nothing_says_so(monkeypatch, cache):
    assert kept_choices.measuring_here()
    kept_choices.measure_nothing()
    assert not kept_choices.measuring_here()
