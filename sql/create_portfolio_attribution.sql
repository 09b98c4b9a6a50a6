-- P&L of the portfolio backtest by strategy x market x cost: trading_pnl at mid (open) prices,
-- fees and slippage as costs, net_pnl = trading_pnl - fees - slippage. Sums to the total P&L.
CREATE TABLE IF NOT EXISTS portfolio.attribution (
    portfolio    VARCHAR NOT NULL,
    strategy     VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    trading_pnl  DOUBLE  NOT NULL,
    fees         DOUBLE  NOT NULL,
    slippage     DOUBLE  NOT NULL,
    net_pnl      DOUBLE  NOT NULL,
    PRIMARY KEY (portfolio, strategy, symbol)
);
