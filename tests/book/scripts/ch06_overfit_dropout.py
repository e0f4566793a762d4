# In the style of the book's ch06/overfit_dropout.py (layerwise's own text): dropout in a
# seven-layer net on 300 images, trained by the book's Trainer. Fewer epochs.
# ruff: noqa: NPY002 (the book's global random state, on purpose)
import matplotlib.pyplot as plt
import numpy as np

from layerwise.book.common.multi_layer_net_extend import MultiLayerNetExtend
from layerwise.book.common.trainer import Trainer
from layerwise.book.dataset.mnist import load_mnist

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)

x_train = x_train[:300]
t_train = t_train[:300]
x_test = x_test[-2000:]  # the book: all 10,000
t_test = t_test[-2000:]

use_dropout = True
dropout_ratio = 0.15

np.random.seed(11)
network = MultiLayerNetExtend(input_size=784, hidden_size_list=[100, 100, 100, 100, 100, 100],
                              output_size=10, use_dropout=use_dropout, dropout_ration=dropout_ratio)
max_epochs = 30  # the book: 301
trainer = Trainer(network, x_train, t_train, x_test, t_test,
                  epochs=max_epochs, mini_batch_size=100,
                  optimizer="sgd", optimizer_param={"lr": 0.03}, verbose=True)
trainer.train()

train_acc_list, test_acc_list = trainer.train_acc_list, trainer.test_acc_list

markers = {"train": "o", "test": "s"}
x = np.arange(max_epochs)
plt.plot(x, train_acc_list, marker="o", label="train", markevery=10)
plt.plot(x, test_acc_list, marker="s", label="test", markevery=10)
plt.xlabel("epochs")
plt.ylabel("accuracy")
plt.ylim(0, 1.0)
plt.legend(loc="lower right")
plt.savefig("overfit_dropout.png")
