"""Choices measured on the machine once and kept (layerwise.kernels.tuning)."""

import json
import time

import numpy as np
import pytest

import layerwise as lw
from layerwise.kernels import blas_limits, kept_choices, measuring, processes, tuning
from layerwise.kernels import threads as _threads


class FakeClock:
    """Time that passes only when a step runs: each plan's step takes its own fixed time."""

    def __init__(self, step_s):
        self.now, self.step_s, self.plan = 0.0, step_s, None

    def __call__(self):
        return self.now

    def step(self):
        self.now += self.step_s[self.plan]


@pytest.fixture
def fake_plans(monkeypatch):
    """enter_plan only records which plan is on: the fake clock charges that plan's step time."""
    entered = []

    def use(step_s):
        clock = FakeClock(step_s)

        class Enter:
            def __init__(self, plan, threads):
                self.plan = plan

            def __enter__(self):
                entered.append(self.plan)
                clock.plan = self.plan

            def __exit__(self, *exc):
                clock.plan = None

        monkeypatch.setattr(tuning, "enter_plan", Enter)
        return clock, entered

    return use


def test_measure_plans_times_each_plan_in_turns(fake_plans):
    step_s = {"blas": 0.002, "blas1": 0.001, "owned": 0.004, "split": 0.003, "processes": 0.0025}
    clock, entered = fake_plans(step_s)
    times = tuning.measure_plans(clock.step, 2, clock=clock)
    for plan, seconds in step_s.items():
        assert times[plan] == pytest.approx([seconds] * len(times[plan]))
    assert all(len(values) == tuning._ROUNDS == 3 for values in times.values())
    # every plan once per round, and a different plan first in each round
    assert entered == ["blas", "blas1", "owned", "split", "processes", "blas1", "owned", "split", "processes",
                       "blas", "owned", "split", "processes", "blas", "blas1"]
    entered.clear()
    assert set(tuning.measure_plans(clock.step, 2, ("blas", "owned"), clock=clock)) == {"blas", "owned"}
    assert set(entered) == {"blas", "owned"}  # only the plans asked for


def test_a_turn_whose_first_step_starts_a_worker_settles_more_steps(fake_plans, monkeypatch):
    # The processes plan starts its worker in a turn's first step (0.3-0.5 s, longer than the
    # settling time): its next steps, the worker's first, must not be the ones timed.
    monkeypatch.setattr(tuning, "PLANS", ("processes",))
    clock, _ = fake_plans({"processes": 0.01})
    steps = []

    def step():
        steps.append(clock.now)
        clock.now += 1.0 if len(steps) % 6 == 1 else 0.02  # each turn's first step: slow

    times = tuning.measure_plans(step, 2, ("processes",), clock=clock)
    assert len(steps) == 3 * (tuning._SETTLE_STEPS + 3)  # 3 untimed, then 3 timed (0.05 s), each turn
    assert times["processes"] == pytest.approx([0.02] * 3)


def _plan(monkeypatch, step_s, by_shape="blas", key="net", probes=None, work=1e12):
    probes = [] if probes is None else probes
    clock = FakeClock(step_s)
    monkeypatch.setattr(tuning, "measure_plans", lambda step, threads, plans=tuning.PLANS: {
        plan: [seconds] * 3 for plan, seconds in step_s.items()})
    return tuning.training_plan(key, 2, by_shape, lambda: probes.append(1) or clock.step, work)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kept_choices, "_memory", {})
    return tmp_path / "cache" / "tuning.json"


def test_a_plan_measured_while_the_cores_gave_less_than_usual_is_not_kept(monkeypatch, cache):
    speedups = iter([1.9, 1.9, 1.0, 1.1, 1.8, 1.7])  # before and after each measurement
    monkeypatch.setattr(measuring, "blas_speedup", lambda threads: next(speedups))
    first = _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}, key="a")
    assert (first.plan, first.how) == ("blas1", "measured")  # the first: nothing to compare with
    # every 2-thread plan at the one-thread rate, as on the Zen 4 VM in a slow period
    slow = _plan(monkeypatch, {"blas": 6.7, "blas1": 6.2, "owned": 6.3}, key="b")
    assert slow.plan == "blas" and slow.how == (
        "by shape: BLAS on 2 threads ran 1.00x one thread's speed while the plans were measured, 1.90x usually "
        "here; measured again next run")
    assert slow.ms_per_step == {"blas": 6700.0, "blas1": 6200.0, "owned": 6300.0}  # shown, not kept
    assert "b | 2 threads" not in json.loads(cache.read_text())["machines"][kept_choices.machine_signature()]
    again = _plan(monkeypatch, {"blas": 4.0, "blas1": 6.2, "owned": 4.5}, key="b")  # 1.7x: as usual
    assert (again.plan, again.how) == ("blas", "measured")


def test_a_measured_plan_is_kept_in_the_cache_file_and_reused(monkeypatch, cache):
    probes = []
    plan = _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}, probes=probes)
    assert (plan.plan, plan.how) == ("blas1", "measured") and probes == [1]
    assert plan.ms_per_step == {"blas": 2000.0, "blas1": 1000.0, "owned": 3000.0}
    stored = json.loads(cache.read_text())["machines"][kept_choices.machine_signature()]["net | 2 threads"]
    assert stored["plan"] == "blas1"
    monkeypatch.setattr(kept_choices, "_memory", {})  # a new process: only the file remembers
    again = _plan(monkeypatch, {"blas": 1.0, "blas1": 9.0, "owned": 9.0}, probes=probes)
    assert (again.plan, again.how) == ("blas1", "kept from an earlier measurement") and probes == [1]
    assert "BLAS on 1 thread" in again.describe() and "blas1 1e+03" in again.describe()


def test_another_machine_or_network_is_measured_anew(monkeypatch, cache):
    _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0})
    assert _plan(monkeypatch, {"blas": 1.0, "blas1": 2.0, "owned": 3.0}, key="other").plan == "blas"
    monkeypatch.setattr(kept_choices, "machine_signature", lambda: "another CPU")
    assert _plan(monkeypatch, {"blas": 3.0, "blas1": 2.0, "owned": 1.0}).plan == "owned"
    machines = json.loads(cache.read_text())["machines"]
    assert len(machines) == 2 and set(machines["another CPU"]) == {"net | 2 threads", "blas speedup, 2 threads"}


def test_the_shape_rule_stays_unless_another_plan_is_clearly_faster(monkeypatch, cache):
    assert _plan(monkeypatch, {"blas": 1.0, "blas1": 0.98, "owned": 1.5}, key="a").plan == "blas"
    assert _plan(monkeypatch, {"blas": 1.0, "blas1": 0.9, "owned": 1.5}, key="b").plan == "blas1"
    assert _plan(monkeypatch, {"blas": 0.9, "blas1": 0.99, "owned": 1.0}, by_shape="owned", key="c").plan == "blas"


def test_no_measurement_with_one_thread_a_short_run_or_tuning_off(monkeypatch, cache):
    probes = []
    assert tuning.training_plan("n", 1, "owned", lambda: probes.append(1)).how == "one thread"
    short = _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}, by_shape="owned", probes=probes,
                  work=tuning.MIN_WORK_TO_MEASURE - 1)
    assert (short.plan, short.how) == ("owned", "by shape: too short a run to measure")
    monkeypatch.setenv("LAYERWISE_TUNING", "0")
    off = _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}, probes=probes)
    assert (off.plan, off.how) == ("blas", "by shape: LAYERWISE_TUNING=0")
    assert probes == [] and not cache.exists() and not cache.parent.exists()  # not even the lock file


def test_a_kept_plan_holds_for_a_short_run_too(monkeypatch, cache):
    # A resumed run's last epoch is short; it must train the way the whole run did.
    _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0})
    short = _plan(monkeypatch, {"blas": 1.0, "blas1": 2.0, "owned": 3.0}, work=1)
    assert (short.plan, short.how) == ("blas1", "kept from an earlier measurement")


def test_a_broken_or_unwritable_cache_costs_only_a_measurement(monkeypatch, cache):
    cache.parent.mkdir()
    here = kept_choices.machine_signature()
    for broken in ("{not json", "[1, 2]", '{"machines": [1]}', json.dumps({"machines": {here: [1]}}),
                   json.dumps({"machines": {here: {"net | 2 threads": {"plan": "blas1", "ms_per_step": ["x"]}}}})):
        cache.write_text(broken)
        monkeypatch.setattr(kept_choices, "_memory", {})
        assert _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}).how == "measured", broken
        assert json.loads(cache.read_text())["format"] == kept_choices.FORMAT  # rewritten whole
    # a rename that fails: the plan holds for this process, the log says it was not kept, and no
    # temporary file is left behind
    real_replace = kept_choices.os.replace

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(kept_choices.os, "replace", failing_replace)
    plan = _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}, key="other")
    assert (plan.plan, plan.how) == ("blas1", "measured, not kept")
    assert not list(cache.parent.glob(".tuning-*"))
    monkeypatch.setattr(kept_choices.os, "replace", real_replace)
    assert _plan(monkeypatch, {"blas": 1.0, "blas1": 2.0, "owned": 3.0}, key="other").plan == "blas1"  # remembered
    # a folder that cannot be made
    blocked = cache.parent / "blocked"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(blocked / "sub"))
    assert _plan(monkeypatch, {"blas": 2.0, "blas1": 1.0, "owned": 3.0}, key="third").how == "measured, not kept"


def test_processes_measure_one_at_a_time_and_the_second_keeps_the_firsts_plan(cache, tmp_path):
    # Two processes asking for the same network's plan at once: the second waits on the lock,
    # then finds the first one's record instead of measuring too.
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from layerwise.kernels import tuning\n"
        "seconds = {'blas': 1.0, 'blas1': 0.5, 'owned': 2.0}\n"
        "tuning.measure_plans = lambda step, threads, plans: (time.sleep(1.0),\n"
        "                                                    {p: [seconds[p]] * 3 for p in seconds})[1]\n"
        "plan = tuning.training_plan('net', 2, 'owned', lambda: None, 1e15)\n"
        "print(plan.plan, plan.how)\n"
    )
    env = {**__import__("os").environ, "LAYERWISE_CACHE_DIR": str(cache.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = sorted(proc.communicate(timeout=60)[0].strip() for proc in procs)
    assert outputs == ["blas1 kept from an earlier measurement", "blas1 measured"]


def test_enter_plan_sets_blas_or_owns_the_threads_and_restores(monkeypatch):
    monkeypatch.setattr(_threads, "run_threads", lambda: (2, True))
    before = [lib.num_threads for lib in blas_limits._blas().lib_controllers]
    seen = {}
    for plan in tuning.PLANS:
        with tuning.enter_plan(plan, 2):
            seen[plan] = ({lib.num_threads for lib in blas_limits._blas().lib_controllers}, _threads._owned,
                          _threads.batch_parts(), processes.active()[0])
        assert _threads.batch_parts() == 1 and processes.active() == (0, None)
    assert seen == {"blas": ({2}, 0, 1, 0), "blas1": ({1}, 0, 1, 0), "owned": ({1}, 2, 1, 0),
                    "split": ({1}, 2, 2, 0), "processes": ({1}, 2, 1, 2)}
    assert [lib.num_threads for lib in blas_limits._blas().lib_controllers] == before


def test_measure_plans_on_a_real_step(monkeypatch):
    monkeypatch.setattr(_threads, "run_threads", lambda: (2, True))
    monkeypatch.setattr(tuning, "_SETTLE_S", 0.01)
    monkeypatch.setattr(tuning, "_REP_S", 0.005)
    a = np.ones((64, 64), np.float32)
    times = tuning.measure_plans(lambda: a @ a, 2)
    assert set(times) == set(tuning.PLANS)
    assert all(len(values) == tuning._ROUNDS and min(values) > 0 for values in times.values())


def _mlp_trainer(epochs=1, **kwargs):
    rng = np.random.default_rng(3)
    x, t = rng.random((300, 784), dtype=np.float32), rng.integers(0, 10, 300)
    model = lw.TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32)
    return lw.Trainer(model, lw.Adam(lr=1e-3), x, t, epochs=epochs, batch_size=100, progress=False, **kwargs)


def test_the_probe_leaves_the_run_untouched():
    trainer = _mlp_trainer(log=None)
    params = {k: v.copy() for k, v in trainer.model.params.items()}
    rng_state = trainer.shuffle_rng.bit_generator.state
    step = trainer._plan_probe()
    for _ in range(3):
        step()
    assert all(np.array_equal(trainer.model.params[k], v) for k, v in params.items())
    assert trainer.shuffle_rng.bit_generator.state == rng_state
    assert trainer.optimizer.state_dict() == lw.Adam(lr=1e-3).state_dict()  # Adam's moments: the copy's only


def test_the_trainer_measures_once_follows_the_plan_and_trains_as_unmeasured(monkeypatch, cache):
    import layerwise.train

    monkeypatch.setattr(layerwise.train, "run_threads", lambda: (2, True))
    monkeypatch.setattr(tuning, "MIN_WORK_TO_MEASURE", 0)
    measured = []

    def measure(step, threads, plans):
        step()
        measured.append(threads)
        return {"blas": [2.0] * 3, "blas1": [1.0] * 3, "owned": [3.0] * 3}

    monkeypatch.setattr(tuning, "measure_plans", measure)
    lines = []
    trainer = _mlp_trainer(epochs=2, log=lines.append)
    trainer.plan_threads()
    limits = []
    gradient = trainer.model.gradient
    monkeypatch.setattr(trainer.model, "gradient", lambda *a: limits.append(
        {lib.num_threads for lib in blas_limits._blas().lib_controllers}) or gradient(*a))
    trainer.fit()
    assert measured == [2] and trainer.thread_plan.plan == "blas1"
    assert limits == [{1}] * 6  # every step on one BLAS thread
    assert any("BLAS on 1 thread (measured" in line and str(cache) in line for line in lines)
    kept = _mlp_trainer(log=None)
    assert kept.plan_threads().how == "kept from an earlier measurement" and measured == [2]
    # the same plan without any measurement gives the same numbers bit for bit
    monkeypatch.setenv("LAYERWISE_TUNING", "0")
    monkeypatch.setattr(layerwise.train, "run_threads", lambda: (1, True))
    plain = _mlp_trainer(epochs=2, log=None)
    plain.fit()
    assert plain.history.step_loss == trainer.history.step_loss


def test_a_failing_measurement_falls_back_to_the_shape_rule(monkeypatch, cache):
    def broken():
        raise ValueError("the copy's step failed")

    plan = tuning.training_plan("net", 2, "owned", lambda: broken, 1e12)
    assert (plan.plan, plan.how) == ("owned", "by shape: the measurement failed") and not cache.exists()


def test_the_trainer_counts_a_runs_multiply_adds_to_decide_whether_to_measure(monkeypatch, cache):
    import layerwise.train

    x, t = np.zeros((600, 1, 28, 28), np.float32), np.zeros(600, np.int64)
    model = lw.SimpleConvNet(seed=0, dtype=np.float32)
    trainer = lw.Trainer(model, lw.Adam(), x, t, epochs=2, progress=False, log=None)
    # conv 30x1x5x5 at 24x24 positions, Affine 4320x100, Affine 100x10
    assert trainer._macs_per_sample() == 30 * 25 * 24 * 24 + 4320 * 100 + 100 * 10
    works = []
    monkeypatch.setattr(layerwise.train, "training_plan", lambda key, threads, by_shape, probe, work, plans:
                        works.append(work) or tuning.ThreadPlan(by_shape, threads, "by shape"))
    assert trainer._plan_for(2).plan == "split"  # SimpleConvNet's activations are worth splitting, by batch parts
    assert works == [3 * 2 * 600 * trainer._macs_per_sample()]
    # a one-epoch run of 784-50-10 on Fashion-MNIST is far below the bar; a DeepConvNet epoch above it
    assert 3 * 60_000 * (784 * 50 + 50 * 10) < tuning.MIN_WORK_TO_MEASURE
    deep = lw.Trainer(lw.DeepConvNet(seed=0, dtype=np.float32), lw.Adam(), x, t, epochs=1, progress=False, log=None)
    assert 3 * 60_000 * deep._macs_per_sample() > tuning.MIN_WORK_TO_MEASURE


def test_a_checkpoint_keeps_the_plan_and_a_resumed_run_trains_with_it(monkeypatch, cache, tmp_path):
    import layerwise.train
    from layerwise.io import load_checkpoint

    monkeypatch.setattr(layerwise.train, "run_threads", lambda: (2, True))
    monkeypatch.setattr(tuning, "MIN_WORK_TO_MEASURE", 0)
    monkeypatch.setattr(tuning, "measure_plans", lambda step, threads, plans=tuning.PLANS: {
        "blas": [2.0] * 3, "blas1": [1.0] * 3, "owned": [3.0] * 3})
    first = _mlp_trainer(epochs=2, log=None, run_dir=tmp_path / "run")
    first.epochs = 1  # stop after one epoch, as an interrupted run would
    first.fit()
    assert first.thread_plan.plan == "blas1"
    # another machine's cache, or none: the checkpoint decides
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(kept_choices, "_memory", {})
    monkeypatch.setenv("LAYERWISE_TUNING", "0")
    resumed = _mlp_trainer(epochs=2, log=None)
    resumed.load_state(load_checkpoint(tmp_path / "run" / layerwise.train.CHECKPOINT_NAME).state)
    plan = resumed.plan_threads()
    assert (plan.plan, plan.how) == ("blas1", "kept from the checkpoint")
    # with another number of threads the checkpoint's plan does not apply
    assert resumed._plan_for(3).how == "by shape: LAYERWISE_TUNING=0"


def test_a_convolution_on_another_thread_does_not_wait_for_a_measurement(cache):
    # Regression: a thread plan's measurement holds the machine lock while its steps run, and
    # the split plan's other part, on a pool thread, waited for that lock in conv_way while the
    # measuring thread waited for the part: the first DeepConvNet training on 2 threads with a
    # fresh cache never started. Now it measures without the lock its own process holds.
    import threading

    measured = []
    with kept_choices.machine_lock():
        answer = []
        other = threading.Thread(target=lambda: answer.append(
            tuning.conv_way("C16 FN16 28x28", lambda: measured.append(1) or {"im2col": 2.0, "winograd": 1.0})))
        other.start()
        other.join(10)
        assert not other.is_alive() and answer == ["winograd"] and measured == [1]
    assert tuning.conv_way("C16 FN16 28x28", lambda: measured.append(1) or {}) == "winograd"  # kept
    assert measured == [1] and tuning.kept_ways()["C16 FN16 28x28"]["way"] == "winograd"


def test_threads_asking_for_one_convolution_at_once_share_one_measurement(cache):
    # A split's two parts ask at the same moment: one measures, the other waits for its
    # choice, and both compute the same way (the numbers do not depend on which came first).
    import threading

    measuring, measured, answers = threading.Event(), [], []

    def measure():
        measuring.set()
        measured.append(threading.get_ident())
        time.sleep(0.2)  # the other thread asks meanwhile
        return {"im2col": 2.0, "winograd 4x4": 1.0}

    first = threading.Thread(target=lambda: answers.append(tuning.conv_way("C32", measure)))
    first.start()
    assert measuring.wait(10)
    answers.append(tuning.conv_way("C32", measure))  # while the first one measures
    first.join(10)
    assert answers == ["winograd 4x4", "winograd 4x4"] and len(measured) == 1


def test_a_process_that_measures_nothing_takes_the_choices_it_is_given(monkeypatch, cache):
    monkeypatch.setattr(kept_choices, "_measuring_here", True)
    tuning.conv_way("C1", lambda: {"im2col": 2.0, "winograd 4x4": 1.0})  # this process measures ...
    tuning.product_blocks("rows K26 N30", lambda: {0: 2.0, 256: 1.0})
    choices = kept_choices.choices_here()
    assert choices["convolution C1"]["way"] == "winograd 4x4" and choices["product rows K26 N30"]["rows"] == 256
    monkeypatch.setattr(kept_choices, "_memory", {})  # ... a worker process, another file
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(cache.parent / "elsewhere"))
    kept_choices.measure_nothing()
    assert kept_choices._measuring_here is False

    def never():
        raise AssertionError("measured")

    assert tuning.conv_way("C1", never) == "im2col" and tuning.product_blocks("rows K26 N30", never) == 0
    kept_choices.adopt_choices(choices)
    assert tuning.conv_way("C1", never) == "winograd 4x4" and tuning.product_blocks("rows K26 N30", never) == 256
    assert not (cache.parent / "elsewhere").exists()  # no lock taken, nothing written


def test_the_first_training_of_a_convnet_on_two_threads_measures_its_plans_and_trains(monkeypatch, tmp_path):
    # The regression above, end to end: a fresh cache, a convolution whose way is measured, the
    # plans on 2 threads measured (the split plan's parts on a pool thread, the processes plan's
    # in a worker process that measures nothing), then training on the plan chosen.
    import threading

    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})
    monkeypatch.setattr(tuning, "MIN_WORK_TO_MEASURE", 0)
    monkeypatch.setattr(tuning, "_SETTLE_S", 0.02)
    monkeypatch.setattr(tuning, "_REP_S", 0.01)
    monkeypatch.setattr(lw.train, "run_threads", lambda: (2, True))
    monkeypatch.setattr(_threads, "run_threads", lambda: (2, True))
    rng = np.random.default_rng(0)
    x, t = rng.random((64, 16, 16, 16), dtype=np.float32), rng.integers(0, 10, 64)
    model = lw.Sequential([lw.layers.Convolution(rng.standard_normal((16, 16, 3, 3)) * 0.1, np.zeros(16), pad=1),
                           lw.layers.Relu(), lw.layers.Pooling(2, 2, stride=2),
                           lw.layers.Affine(rng.standard_normal((16 * 8 * 8, 10)) * 0.01, np.zeros(10))]
                          ).astype(np.float32)
    trainer = lw.Trainer(model, lw.Adam(lr=1e-3), x, t, epochs=1, batch_size=32, progress=False, log=None)
    done = []
    run = threading.Thread(target=lambda: done.append((trainer.plan_threads(), trainer.fit())), daemon=True)
    run.start()
    run.join(120)
    assert done, "the plan's measurement or the training hung"
    plan = done[0][0]
    assert plan.how == "measured" and set(plan.ms_per_step) == set(tuning.PLANS)
    assert tuning.kept_ways()  # the convolution's way was measured meanwhile
    assert len(trainer.history.step_loss) == 2
