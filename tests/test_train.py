"""The Trainer against the book's training-loop defects."""

import numpy as np

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
