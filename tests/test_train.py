"""The Trainer against the book's training-loop defects."""

import numpy as np
import pytest

import layerwise as lw


def small_problem(n=250, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    t = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x, t


def test_every_epoch_is_evaluated_when_n_is_not_a_multiple_of_the_batch():
    # The book compares `i % iter_per_epoch` with a float iter_per_epoch = 250 / 100 = 2.5:
    # never equal, so no epoch is ever evaluated. Here 250 images in batches of 100 make
    # 3 steps an epoch (the last one of 50), and each epoch gets its row.
    x, t = small_problem()
    net = lw.TwoLayerNet(6, 8, 3, weight_init_std=0.5, seed=0)
    history = lw.Trainer(net, lw.SGD(lr=0.1), x, t, x, t, epochs=4, batch_size=100, log=None).fit()
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3, 4]
    assert len(history.step_loss) == 4 * 3


def test_each_epoch_sees_every_sample_once(monkeypatch):
    # The book draws batches with np.random.choice (with replacement, unseeded).
    x, t = small_problem(n=230)
    x[:, 5] = np.arange(len(x))  # a column that names each sample
    seen = []
    net = lw.TwoLayerNet(6, 4, 3, seed=0)
    original = net.gradient

    def spy(xb, tb):
        seen.extend(xb[:, 5].astype(int).tolist())
        return original(xb, tb)

    monkeypatch.setattr(net, "gradient", spy)
    lw.Trainer(net, lw.SGD(lr=0.01), x, t, epochs=2, batch_size=64, log=None).fit()
    assert sorted(seen[:230]) == list(range(230)) and sorted(seen[230:]) == list(range(230))
    assert seen[:230] != seen[230:]  # reshuffled each epoch


def test_same_seed_same_weights():
    x, t = small_problem()
    results = []
    for _ in range(2):
        net = lw.MultiLayerNet(6, [8], 3, use_dropout=True, dropout_ration=0.3, seed=1)
        lw.Trainer(net, lw.Adam(lr=0.01), x, t, epochs=2, batch_size=32, seed=5, log=None).fit()
        results.append(net.state_dict())
    assert all(np.array_equal(results[0][k], results[1][k]) for k in results[0])


def test_cosine_schedule_is_torchs_cosine_annealing_per_step():
    torch = __import__("pytest").importorskip("torch")
    total = 37
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [0.1 * lw.optim.lr_factor("cosine", k, total) for k in range(total)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert lw.optim.lr_factor("constant", 5, total) == 1.0
    with __import__("pytest").raises(lw.InputError, match="cosine"):
        lw.optim.lr_factor("linear", 0, total)


def test_trainer_anneals_lr_and_a_resumed_run_stays_on_the_curve(tmp_path, monkeypatch):
    import pytest

    x, t = small_problem()

    def trainer(run_dir, log=None):
        net = lw.MultiLayerNet(6, [8], 3, use_dropout=True, dropout_ration=0.2, seed=1)
        return lw.Trainer(net, lw.Adam(lr=0.01), x, t, x, t, epochs=3, batch_size=64, seed=2,
                          run_dir=run_dir, log=log, lr_schedule="cosine")

    whole = trainer(tmp_path / "whole")
    used = []
    update = whole.optimizer.update
    monkeypatch.setattr(whole.optimizer, "update", lambda p, g: used.append(whole.optimizer.lr) or update(p, g))
    history = whole.fit()
    steps = 3 * 4  # 250 samples in batches of 64
    assert used == pytest.approx([0.01 * lw.optim.lr_factor("cosine", k, steps) for k in range(steps)], rel=1e-15)
    assert [row["lr"] for row in history.epochs] == [used[3], used[7], used[11]]

    def stop_after_first_epoch(message):
        if message.startswith("epoch   2/3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "split", log=stop_after_first_epoch).fit()
    checkpoint = lw.load_checkpoint(tmp_path / "split" / lw.train.CHECKPOINT_NAME)
    resumed = trainer(tmp_path / "split")
    resumed.model.load_state_dict(checkpoint.model.state_dict())
    resumed.optimizer.load_state_dict(checkpoint.optimizer.state_dict())  # holds the annealed lr
    resumed.load_state(checkpoint.state)
    resumed.fit()
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(lw.InputError, match="constant"):
        lw.Trainer(resumed.model, lw.Adam(lr=0.01), x, t, log=None).load_state(checkpoint.state)
    with pytest.raises(lw.InputError, match="lr_schedule"):
        lw.Trainer(resumed.model, lw.Adam(lr=0.01), x, t, log=None, lr_schedule="linear")


# -- hooks and stop: how a live view (layerwise serve) follows a run -----------------------------

def test_on_step_and_on_epoch_are_called_for_every_step_and_epoch():
    x, t = small_problem()  # 250 images in batches of 100: 3 steps an epoch
    steps, rows = [], []
    net = lw.TwoLayerNet(6, 8, 3, weight_init_std=0.5, seed=0)
    trainer = lw.Trainer(net, lw.SGD(lr=0.1), x, t, x, t, epochs=4, batch_size=100, log=None,
                         on_step=lambda step, loss: steps.append((step, loss)), on_epoch=rows.append)
    history = trainer.fit()
    assert [s for s, _ in steps] == list(range(1, 13))
    assert [loss for _, loss in steps] == history.step_loss
    assert rows == history.epochs and [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert not trainer.stopped


def test_stop_from_on_step_ends_fit_after_that_step_without_a_row_for_the_epoch():
    x, t = small_problem()
    rows = []
    net = lw.TwoLayerNet(6, 8, 3, weight_init_std=0.5, seed=0)

    def on_step(step, loss):
        if step == 5:  # the second step of epoch 2
            trainer.stop()

    trainer = lw.Trainer(net, lw.SGD(lr=0.1), x, t, x, t, epochs=4, batch_size=100, log=None,
                         on_step=on_step, on_epoch=rows.append)
    history = trainer.fit()
    assert trainer.stopped
    assert len(history.step_loss) == 5
    assert [r["epoch"] for r in history.epochs] == [1] and rows == history.epochs
    assert trainer.epoch == 1 and trainer.step_in_epoch == 2


def test_stop_from_another_thread():
    import threading

    x, t = small_problem()
    reached, sent = threading.Event(), threading.Event()
    net = lw.TwoLayerNet(6, 8, 3, weight_init_std=0.5, seed=0)

    def on_step(step, loss):
        if step == 3:  # the last step of epoch 1: the run waits here until stop() has been sent
            reached.set()
            assert sent.wait(30)

    trainer = lw.Trainer(net, lw.SGD(lr=0.1), x, t, x, t, epochs=4, batch_size=100, log=None, on_step=on_step)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("history", trainer.fit()))
    worker.start()
    try:
        assert reached.wait(30)
        trainer.stop()
    finally:
        sent.set()
        worker.join(30)
    assert not worker.is_alive()
    history = result["history"]
    # Epoch 1's batches were all done, so it has its row; epoch 2 stopped before its first step.
    assert trainer.stopped and len(history.step_loss) == 3
    assert [r["epoch"] for r in history.epochs] == [1]


def test_stop_before_fit_runs_no_step():
    x, t = small_problem()
    calls = []
    trainer = lw.Trainer(lw.TwoLayerNet(6, 8, 3, seed=0), lw.SGD(lr=0.1), x, t, epochs=2, log=None,
                         on_step=lambda *a: calls.append(a), on_epoch=calls.append)
    trainer.stop()
    history = trainer.fit()
    assert trainer.stopped and history.step_loss == [] and history.epochs == [] and calls == []


def test_training_accuracy_on_the_whole_set_scores_the_rows_themselves(monkeypatch):
    # With train_eval_samples >= n the sample is every row in order: the rows are scored in
    # place (a sweep scores all 48,000 training images each epoch; the copy was 150 MB).
    x, t = small_problem(n=230)
    net = lw.TwoLayerNet(6, 8, 3, seed=0)
    seen = []
    original = net.accuracy

    def spy(xs, ts, *args, **kwargs):
        seen.append(xs)
        return original(xs, ts, *args, **kwargs)

    monkeypatch.setattr(net, "accuracy", spy)
    trainer = lw.Trainer(net, lw.SGD(lr=0.1), x, t, epochs=1, batch_size=50, train_eval_samples=1000, log=None)
    row = trainer.evaluate()
    assert seen[0] is trainer.x_train
    assert row["train_acc"] == original(x, t)


def test_no_training_accuracy_with_zero_samples_and_a_clear_error_below():
    # Regression: train_eval_samples=0 trained a whole epoch, then failed inside
    # accuracy() with "empty dataset".
    x, t = small_problem(n=230)
    lines = []
    trainer = lw.Trainer(lw.TwoLayerNet(6, 8, 3, seed=0), lw.SGD(lr=0.1), x, t, x[:50], t[:50], epochs=2,
                         batch_size=50, train_eval_samples=0, log=lines.append)
    history = trainer.fit()
    assert len(history.epochs) == 2
    assert all("train_acc" not in row and "test_acc" in row for row in history.epochs)
    assert len(lines) == 2 and "train acc" not in lines[0] and "test acc" in lines[0]
    for bad in (-1, 0.5, "100"):
        with pytest.raises(lw.InputError, match=rf"train_eval_samples must be a whole number >= 0.*got {bad!r}"):
            lw.Trainer(lw.TwoLayerNet(6, 8, 3, seed=0), lw.SGD(lr=0.1), x, t, train_eval_samples=bad)


def test_training_accuracy_on_a_sample_scores_the_sorted_sample():
    x, t = small_problem(n=230)
    net = lw.TwoLayerNet(6, 8, 3, seed=0)
    trainer = lw.Trainer(net, lw.SGD(lr=0.1), x, t, epochs=1, batch_size=50, train_eval_samples=100, seed=3,
                         log=None)
    sample = np.sort(np.random.default_rng(3 + 1).permutation(230)[:100])
    assert trainer.evaluate()["train_acc"] == net.accuracy(x[sample], t[sample])
