"""Every fast path of layerwise, apart from the layers that call them.

A layer reads like the book; where it needs speed it calls one function from here, in one
visible line. Each kernel's docstring names the plain NumPy expression it equals and the
measured reason it exists, and ``tests/kernels/`` checks each against that expression.
"""
