# In the style of the book's ch04 scripts (layerwise's own text): numerical gradients of a
# function of two variables, gradient descent on it, and the gradient of a tiny net's loss.
# ruff: noqa: NPY002 (the book's global random state, on purpose)
import matplotlib.pyplot as plt
import numpy as np

from layerwise.book.common.functions import cross_entropy_error, softmax
from layerwise.book.common.gradient import numerical_gradient, numerical_gradient_2d


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def gradient_descent(f, init_x, lr=0.01, step_num=100):
    x = init_x
    history = []
    for _ in range(step_num):
        history.append(x.copy())
        grad = numerical_gradient(f, x)
        x -= lr * grad
    return x, np.array(history)


print("grad at (3, 4):", numerical_gradient(function_2, np.array([3.0, 4.0])))
print("grad at (0, 2):", numerical_gradient(function_2, np.array([0.0, 2.0])))

x, x_history = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
print("descent from (-3, 4):", x)
x_big, _ = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=10.0, step_num=100)
print("lr=10:", x_big)
x_small, _ = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=1e-10, step_num=100)
print("lr=1e-10:", x_small)

# Gradient arrows of f at a grid of points: one point per row, as numerical_gradient_2d takes them.
x0 = np.arange(-2, 2.5, 0.5)
x1 = np.arange(-2, 2.5, 0.5)
X, Y = np.meshgrid(x0, x1)
points = np.array([X.flatten(), Y.flatten()]).T.copy()
grad = numerical_gradient_2d(function_2, points).T
print("grid gradient shape:", grad.shape)
plt.figure()
plt.quiver(X.flatten(), Y.flatten(), -grad[0], -grad[1], angles="xy")
plt.plot(x_history[:, 0], x_history[:, 1], "o")
plt.xlabel("x0")
plt.ylabel("x1")
plt.savefig("gradient_2d.png")


class simpleNet:
    def __init__(self):
        self.W = np.random.randn(2, 3)

    def predict(self, x):
        return np.dot(x, self.W)

    def loss(self, x, t):
        z = self.predict(x)
        y = softmax(z)
        return cross_entropy_error(y, t)


np.random.seed(0)
net = simpleNet()
x = np.array([0.6, 0.9])
t = np.array([0, 0, 1])
f = lambda w: net.loss(x, t)  # noqa: E731 (the book's style)
dW = numerical_gradient(f, net.W)
print("loss:", net.loss(x, t))
print("dW:", dW)
print("dW row sums:", dW.sum(axis=1))
