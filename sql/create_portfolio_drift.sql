-- Paper vs backtest of a portfolio over the paper period: per market the position (units) and the
-- traded quantity, and the account's P&L, each with the backtest's value and a status
-- ('ok' | 'diverged' beyond the tolerance | 'pending' while the backtest has not reached ts).
CREATE TABLE IF NOT EXISTS portfolio.drift (
    portfolio   VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,   -- the backtest candle compared with (the paper's last decision)
    kind        VARCHAR     NOT NULL,   -- position | traded | pnl
    symbol      VARCHAR     NOT NULL,   -- '*' for the account's P&L
    paper       DOUBLE      NOT NULL,
    backtest    DOUBLE,
    difference  DOUBLE,                 -- relative to the account's equity (position, traded) or capital (pnl)
    tolerance   DOUBLE      NOT NULL,
    status      VARCHAR     NOT NULL,
    PRIMARY KEY (portfolio, kind, symbol)
);
