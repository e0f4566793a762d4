# In the style of the book's ch07/gradient_check.py (layerwise's own text): a small SimpleConvNet,
# backpropagation against numerical gradients, the label passed as a (1, 1) array as the book does.
# The book's script draws weights with std 0.01: then some ReLU input or max-pooling near-tie lies
# within h = 1e-4 of its corner, and the NUMERICAL gradient of that parameter is off by ~1e-5
# (the function is not smooth there; backpropagation is right). With std 0.1 and this seed no
# unit is that close, and every difference is round-off, ~1e-10.
# ruff: noqa: NPY002 (the book's global random state, on purpose)
import numpy as np

from layerwise.book.ch07.simple_convnet import SimpleConvNet

np.random.seed(2)
network = SimpleConvNet(input_dim=(1, 10, 10),
                        conv_param={"filter_num": 10, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=10, output_size=10, weight_init_std=0.1)

X = np.random.rand(100).reshape((1, 1, 10, 10))
T = np.array([1]).reshape((1, 1))

grad_num = network.numerical_gradient(X, T)
grad = network.gradient(X, T)

for key in grad_num.keys():
    print(key, np.abs(grad_num[key] - grad[key]).mean())
