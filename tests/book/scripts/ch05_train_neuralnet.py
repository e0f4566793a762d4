# In the style of the book's ch05/train_neuralnet.py (layerwise's own text): mini-batch SGD
# with backpropagation, accuracy printed once per epoch. Fewer iterations than the book.
# ruff: noqa: NPY002 (the book's global random state, on purpose)
import numpy as np

from layerwise.book.ch05.two_layer_net import TwoLayerNet
from layerwise.book.dataset.mnist import load_mnist

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

np.random.seed(5)
network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)

iters_num = 800  # the book: 10000
train_size = x_train.shape[0]
batch_size = 100
learning_rate = 0.1

train_loss_list = []
train_acc_list = []
test_acc_list = []

iter_per_epoch = max(train_size / batch_size, 1)

for i in range(iters_num):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch = x_train[batch_mask]
    t_batch = t_train[batch_mask]

    grad = network.gradient(x_batch, t_batch)

    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= learning_rate * grad[key]

    loss = network.loss(x_batch, t_batch)
    train_loss_list.append(loss)

    if i % iter_per_epoch == 0:
        train_acc = network.accuracy(x_train, t_train)
        test_acc = network.accuracy(x_test, t_test)
        train_acc_list.append(train_acc)
        test_acc_list.append(test_acc)
        print(train_acc, test_acc)

print("first loss:", train_loss_list[0], "last loss:", train_loss_list[-1])
