"""What leaves the pipeline for people: MLflow runs of backtests and sweeps, and alerts."""

from quantdag.tracking.alerts import WEBHOOK_ENV, send_alert
from quantdag.tracking.mlflow_runs import log_backtest, log_sweep

__all__ = ["WEBHOOK_ENV", "log_backtest", "log_sweep", "send_alert"]
