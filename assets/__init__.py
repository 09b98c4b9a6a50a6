"""Dagster assets, one module per pipeline stage; the logic they call lives in ``quantdag``."""
