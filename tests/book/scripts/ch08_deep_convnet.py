# In the style of the book's ch08 scripts (layerwise's own text): DeepConvNet with the book's
# trained weights, deep_convnet_params.pkl, on part of the MNIST test set, in float64 and with
# the weights rounded to float16.
import numpy as np

from layerwise.book.ch08.deep_convnet import DeepConvNet
from layerwise.book.dataset.mnist import load_mnist

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)

sampled = 1000  # the book: 10000
x_test = x_test[:sampled]
t_test = t_test[:sampled]

network = DeepConvNet()
network.load_params("deep_convnet_params.pkl")

print("calculate accuracy (float64) ... ")
print(network.accuracy(x_test, t_test))

x_test = x_test.astype(np.float16)
for param in network.params.values():
    param[...] = param.astype(np.float16)

print("calculate accuracy (float16) ... ")
print(network.accuracy(x_test, t_test))

y = network.predict(x_test[:100], train_flg=False)
print("misclassified in the first 100:", int(np.sum(np.argmax(y, axis=1) != t_test[:100])))
