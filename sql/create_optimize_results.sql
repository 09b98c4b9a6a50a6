-- Every combination a sweep evaluated, with its metrics (all of them in `metrics`).
CREATE TABLE IF NOT EXISTS optimize.results (
    strategy     VARCHAR NOT NULL,
    exchange     VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    timeframe    VARCHAR NOT NULL,
    params_hash  VARCHAR NOT NULL,
    params       JSON    NOT NULL,
    objective    DOUBLE,
    final_equity DOUBLE  NOT NULL,
    n_trades     BIGINT  NOT NULL,
    total_return DOUBLE,
    sharpe       DOUBLE,
    max_drawdown DOUBLE,
    metrics      JSON    NOT NULL,
    PRIMARY KEY (strategy, exchange, symbol, timeframe, params_hash)
);
