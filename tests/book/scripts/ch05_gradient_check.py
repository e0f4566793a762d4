# In the style of the book's ch05/gradient_check.py (layerwise's own text): backpropagation
# against numerical gradients on three MNIST images.
import numpy as np

from layerwise.book.ch05.two_layer_net import TwoLayerNet
from layerwise.book.dataset.mnist import load_mnist

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

# A fixed draw of the weights (the book draws anew each run). About one random draw in four
# puts a hidden unit's input within h = 1e-4 of ReLU's kink for one of the images; the central
# difference of a weight feeding it then straddles the kink, and the script prints ~1e-7 for
# W1 instead of round-off. Seed 0 has no unit that close.
np.random.seed(0)  # noqa: NPY002 -- the book's TwoLayerNet draws from the global generator

network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)

x_batch = x_train[:3]
t_batch = t_train[:3]

grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)

for key in grad_numerical.keys():
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + str(diff))
