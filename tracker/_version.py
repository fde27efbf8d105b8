"""The tracker's version, in a module of its own: importing it loads nothing else (pyproject.toml reads it too)."""

__version__ = "0.1.0"
