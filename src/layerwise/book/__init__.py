"""The book's module tree, pointing into layerwise.

"Deep Learning from Scratch" (Koki Saito; code at github.com/oreilly-japan/deep-learning-from-scratch)
imports its own modules after ``sys.path.append(os.pardir)``: ``from common.layers import *``,
``from dataset.mnist import load_mnist``, ``from two_layer_net import TwoLayerNet``. Here the same
modules live under ``layerwise.book``, so a chapter script runs on layerwise by changing only its
import lines::

    from layerwise.book.dataset.mnist import load_mnist              # was: from dataset.mnist import ...
    from layerwise.book.common.trainer import Trainer                # was: from common.trainer import ...
    from layerwise.book.ch05.two_layer_net import TwoLayerNet        # was: from two_layer_net import ...

(and ``sys.path.append(os.pardir)`` goes). Every name is layerwise's own implementation, imported
here, or the smallest adapter on top of it where the book's signature or default differs (the
book's ``Trainer``, ``Dropout``, ``Pooling``, ``BatchNormalization``, the optimizers' Python-number
parameters, ``im2col``'s argument names). Nothing here computes a second copy of the math.

The name -> home table and every deliberate difference from the book: ``docs/book.md``.
"""
