"""The book's ``common/trainer.py``: ``Trainer(network, x_train, t_train, x_test, t_test, ...)``.

Why not ``layerwise.Trainer``: that trainer is a different loop, on purpose. It shuffles each
epoch without replacement from a seeded generator, evaluates at the END of each epoch, logs its
own line, and stops on a diverging loss. The book's scripts depend on the book's loop: mini-batches
drawn WITH replacement by ``np.random.choice`` (so ``np.random.seed`` repeats a run),
``int(epochs * train_size / mini_batch_size)`` iterations in all, an evaluation at every
iteration ``i`` with ``i % iter_per_epoch == 0`` (the first right after the first step, so the
first accuracy is near chance), ``evaluate_sample_num_per_epoch`` cutting BOTH the train and test
samples, a ``train loss:`` line per iteration, and ``train_acc_list``/``test_acc_list`` of exactly
``epochs`` entries that the scripts plot against ``np.arange(epochs)``. Bending
``layerwise.Trainer`` to all of that would take more hooks than this loop has lines, so this is
the book's loop, written on layerwise's objects: the network's ``gradient``/``loss``/``accuracy``
and an optimizer from ``layerwise.optim.make_optimizer`` (names case-insensitive: sgd, momentum,
nesterov, adagrad, rmsprop, adam). No math lives here.

One detail: layerwise's ``MultiLayerNet`` (and ``MultiLayerNetExtend``, the same class) computes
``loss(x, t)`` in training mode by default, where the book's computes it in evaluation mode;
the loss printed after each step is asked for with ``train_flg=False`` from those nets, so no
second dropout mask is drawn and BatchNormalization's running statistics are updated once per
step, as in the book. Other networks get ``network.loss(x, t)``, as the book calls it.
"""

from collections.abc import Mapping as _Mapping
from typing import Any as _Any

import numpy as np

from layerwise.models import MultiLayerNet as _MultiLayerNet
from layerwise.optim import make_optimizer as _make_optimizer

__all__ = ["Trainer", "np"]


class Trainer:
    """Trains ``network`` as the book's Trainer does; ``train()`` runs it, then
    ``train_loss_list`` (one loss per iteration), ``train_acc_list`` and ``test_acc_list``
    (one accuracy per epoch) hold the results. With ``verbose`` it prints the book's lines:
    ``train loss:<loss>`` per iteration, ``=== epoch:<n>, train acc:<a>, test acc:<b> ===``
    per epoch, and at the end ``=============== Final Test Accuracy ===============`` and
    ``test acc:<accuracy on the whole test set>``.
    """

    def __init__(
        self,
        network: _Any,  # any net with gradient/loss/accuracy/params, as in the book
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        epochs: int = 20,
        mini_batch_size: int = 100,
        optimizer: str = "SGD",
        optimizer_param: _Mapping[str, float] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
    ) -> None:
        self.network = network
        self.verbose = verbose
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        # The book's default, {'lr': 0.01}, without a mutable default argument.
        params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
        self.optimizer = _make_optimizer(optimizer, **params)

        self.train_size = x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0

        self.train_loss_list: list[float] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []

    def _loss(self, x: np.ndarray, t: np.ndarray) -> float:
        if isinstance(self.network, _MultiLayerNet):
            return self.network.loss(x, t, train_flg=False)  # the book's MultiLayerNet(Extend) mode
        return self.network.loss(x, t)

    def train_step(self) -> None:
        """One iteration: a mini-batch drawn with replacement, a gradient step, the loss; at
        the first iteration of each epoch, the accuracies."""
        batch_mask = np.random.choice(self.train_size, self.batch_size)  # noqa: NPY002 (the book's global state)
        x_batch, t_batch = self.x_train[batch_mask], self.t_train[batch_mask]

        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)

        loss = self._loss(x_batch, t_batch)
        self.train_loss_list.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))

        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            x_train_sample, t_train_sample = self.x_train, self.t_train
            x_test_sample, t_test_sample = self.x_test, self.t_test
            if self.evaluate_sample_num_per_epoch is not None:
                n = self.evaluate_sample_num_per_epoch
                x_train_sample, t_train_sample = self.x_train[:n], self.t_train[:n]
                x_test_sample, t_test_sample = self.x_test[:n], self.t_test[:n]
            train_acc = self.network.accuracy(x_train_sample, t_train_sample)
            test_acc = self.network.accuracy(x_test_sample, t_test_sample)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                print(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc} ===")
        self.current_iter += 1

    def train(self) -> None:
        """Run every iteration, then print the accuracy on the whole test set (with ``verbose``)."""
        for _ in range(self.max_iter):
            self.train_step()
        test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))
