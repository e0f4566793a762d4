"""``python -m layerwise``: the same as the ``layerwise`` command."""

from .cli import main

raise SystemExit(main())
