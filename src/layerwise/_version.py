"""The version of layerwise, in a module of its own so any module can import it at the top
(``layerwise/__init__.py`` imports the subpackages before it could define it)."""

__version__ = "0.1.0"
