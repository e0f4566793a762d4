# In the style of the book's ch07/train_convnet.py (layerwise's own text): SimpleConvNet trained
# by the book's Trainer with Adam, its parameters saved and read back. Less data, fewer epochs.
# ruff: noqa: NPY002 (the book's global random state, on purpose)
import matplotlib.pyplot as plt
import numpy as np

from layerwise.book.ch07.simple_convnet import SimpleConvNet
from layerwise.book.common.trainer import Trainer
from layerwise.book.dataset.mnist import load_mnist

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
print("x_train:", x_train.shape, x_train.dtype)

x_train, t_train = x_train[:1000], t_train[:1000]  # the book: all 60,000
x_test, t_test = x_test[-1000:], t_test[-1000:]

max_epochs = 4  # the book: 20

np.random.seed(17)
network = SimpleConvNet(input_dim=(1, 28, 28),
                        conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                        hidden_size=100, output_size=10, weight_init_std=0.01)

trainer = Trainer(network, x_train, t_train, x_test, t_test,
                  epochs=max_epochs, mini_batch_size=100,
                  optimizer="Adam", optimizer_param={"lr": 0.001},
                  evaluate_sample_num_per_epoch=500)
trainer.train()

network.save_params("params.pkl")
print("Saved Network Parameters!")

network2 = SimpleConvNet(input_dim=(1, 28, 28),
                         conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                         hidden_size=100, output_size=10, weight_init_std=0.01)
print("fresh net test acc:" + str(network2.accuracy(x_test, t_test)))
network2.load_params("params.pkl")
print("loaded net test acc:" + str(network2.accuracy(x_test, t_test)))
print("same as trained:", network2.accuracy(x_test, t_test) == network.accuracy(x_test, t_test))

markers = {"train": "o", "test": "s"}
x = np.arange(max_epochs)
plt.plot(x, trainer.train_acc_list, marker="o", label="train", markevery=2)
plt.plot(x, trainer.test_acc_list, marker="s", label="test", markevery=2)
plt.xlabel("epochs")
plt.ylabel("accuracy")
plt.ylim(0, 1.0)
plt.legend(loc="lower right")
plt.savefig("train_convnet.png")
