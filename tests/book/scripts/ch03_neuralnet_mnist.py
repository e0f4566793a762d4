# In the style of the book's ch03/neuralnet_mnist.py (layerwise's own text): a 784-50-100-10
# sigmoid network with the book's trained weights, sample_weight.pkl, run forward by hand.
import numpy as np

from layerwise.book.common.functions import sigmoid, softmax
from layerwise.book.common.multi_layer_net import MultiLayerNet
from layerwise.book.dataset.mnist import load_mnist


def get_data():
    _, (x_test, t_test) = load_mnist(normalize=True, flatten=True, one_hot_label=False)
    return x_test, t_test


def init_network():
    # The book unpickles the file itself; a net of the same shape reads it safely instead
    # (layerwise's restricted unpickler) and hands back the book's dict of arrays.
    net = MultiLayerNet(input_size=784, hidden_size_list=[50, 100], output_size=10, activation="sigmoid")
    net.load_params("sample_weight.pkl")
    return dict(net.params)


def predict(network, x):
    W1, W2, W3 = network["W1"], network["W2"], network["W3"]
    b1, b2, b3 = network["b1"], network["b2"], network["b3"]
    a1 = np.dot(x, W1) + b1
    z1 = sigmoid(a1)
    a2 = np.dot(z1, W2) + b2
    z2 = sigmoid(a2)
    a3 = np.dot(z2, W3) + b3
    return softmax(a3)


x, t = get_data()
network = init_network()
print("x:", x.shape, x.dtype, "t:", t.shape, t.dtype)

batch_size = 100
accuracy_cnt = 0
for i in range(0, len(x), batch_size):
    y_batch = predict(network, x[i:i + batch_size])
    p = np.argmax(y_batch, axis=1)
    accuracy_cnt += np.sum(p == t[i:i + batch_size])

print("Accuracy:" + str(float(accuracy_cnt) / len(x)))
