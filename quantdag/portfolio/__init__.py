"""Portfolios: several markets sharing one cash balance, held at target weights (numba engine)."""

from quantdag.portfolio.engine import PortfolioResult, run_portfolio

__all__ = ["PortfolioResult", "run_portfolio"]
