"""quantdag engine: pure Python (no Dagster imports), usable from a notebook or a script."""

__version__ = "0.1.0"
