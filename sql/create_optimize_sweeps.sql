-- The latest sweep of a strategy on a market: search, objective, the best parameters, and how
-- likely that best is to be luck (deflated Sharpe ratio, probability of backtest overfitting).
CREATE TABLE IF NOT EXISTS optimize.sweeps (
    strategy        VARCHAR     NOT NULL,
    exchange        VARCHAR     NOT NULL,
    symbol          VARCHAR     NOT NULL,
    timeframe       VARCHAR     NOT NULL,
    search          VARCHAR     NOT NULL,
    objective       VARCHAR     NOT NULL,
    min_trades      BIGINT      NOT NULL,
    n_evaluated     BIGINT      NOT NULL,
    best_param_set  VARCHAR     NOT NULL,  -- a `param_sets` partition key, ready to promote
    best_params     JSON        NOT NULL,
    best_objective  DOUBLE,
    best_metrics    JSON        NOT NULL,
    dsr             DOUBLE,
    pbo             DOUBLE,
    search_space    JSON        NOT NULL,
    settings        JSON        NOT NULL,
    data_start      TIMESTAMPTZ NOT NULL,
    data_end        TIMESTAMPTZ NOT NULL,
    mlflow_run_id   VARCHAR,
    dagster_run_id  VARCHAR,
    PRIMARY KEY (strategy, exchange, symbol, timeframe)
);
