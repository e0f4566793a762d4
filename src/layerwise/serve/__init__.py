"""``layerwise serve``: a local web app to draw a digit and watch the served model classify it,
step through forward and backward on real arrays, and train a small net live.

- :mod:`~layerwise.serve.model`: the served model (a model file, or the default trained at start).
- :mod:`~layerwise.serve.explain`: one image through the model and back to its pixels.
- :mod:`~layerwise.serve.sessions`: step-through sessions over ``graph.stepper``.
- :mod:`~layerwise.serve.training`: the one training run at a time, and its live events.
- :mod:`~layerwise.serve.payloads`: request fields checked, arrays as JSON.
- :mod:`~layerwise.serve.app`: the Starlette routes, and who may call them; ``static/`` the page.
- :mod:`~layerwise.serve.server`: uvicorn on the command line's socket, stopped cleanly by Ctrl-C.
"""

from .app import create_app
from .model import ServedModel, default_model, load_served

__all__ = ["ServedModel", "create_app", "default_model", "load_served"]
