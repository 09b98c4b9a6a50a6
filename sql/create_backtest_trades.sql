-- Every trade of a backtest; the position still open at the end is marked to market, is_open.
CREATE TABLE IF NOT EXISTS backtest.trades (
    strategy     VARCHAR     NOT NULL,
    params_hash  VARCHAR     NOT NULL,
    exchange     VARCHAR     NOT NULL,
    symbol       VARCHAR     NOT NULL,
    timeframe    VARCHAR     NOT NULL,
    trade_id     BIGINT      NOT NULL,
    side         VARCHAR     NOT NULL,
    entry_ts     TIMESTAMPTZ NOT NULL,
    exit_ts      TIMESTAMPTZ NOT NULL,
    size         DOUBLE      NOT NULL,
    entry_price  DOUBLE      NOT NULL,
    exit_price   DOUBLE      NOT NULL,
    fees         DOUBLE      NOT NULL,
    slippage     DOUBLE      NOT NULL,
    pnl          DOUBLE      NOT NULL,
    trade_return DOUBLE      NOT NULL,
    exit_reason  VARCHAR     NOT NULL,
    is_open      BOOLEAN     NOT NULL,
    PRIMARY KEY (strategy, params_hash, exchange, symbol, timeframe, trade_id)
);
