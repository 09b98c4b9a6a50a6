"""Tests of quantdag.strategies (a package, so module names cannot clash with other test folders)."""
