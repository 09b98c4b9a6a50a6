"""Tests of quantdag.backtest (a package, so module names cannot clash with other test folders)."""
