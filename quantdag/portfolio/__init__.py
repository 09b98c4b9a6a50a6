"""Portfolios: several markets and strategies sharing one cash balance, held at target weights
(numba engine), with allocation, rebalancing rules, risk rules and a tear sheet."""

from quantdag.portfolio.allocate import allocate
from quantdag.portfolio.engine import PortfolioResult, run_portfolio
from quantdag.portfolio.risk import RiskRules

__all__ = ["PortfolioResult", "RiskRules", "allocate", "run_portfolio"]
