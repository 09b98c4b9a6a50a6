-- One row per portfolio (its latest backtest): settings, metrics and the MLflow run that holds them.
CREATE TABLE IF NOT EXISTS portfolio.runs (
    portfolio      VARCHAR     NOT NULL PRIMARY KEY,
    run_at         TIMESTAMPTZ NOT NULL,
    first_ts       TIMESTAMPTZ,
    last_ts        TIMESTAMPTZ,
    final_equity   DOUBLE      NOT NULL,
    total_return   DOUBLE      NOT NULL,
    sharpe         DOUBLE,
    max_drawdown   DOUBLE,
    turnover       DOUBLE,
    n_trades       BIGINT      NOT NULL,
    settings       JSON        NOT NULL,
    metrics        JSON        NOT NULL,
    mlflow_run_id  VARCHAR
);
