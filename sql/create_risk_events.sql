-- Every trip and resume of an account's risk rules, with its reason (the backtest's too, as
-- account 'backtest:<portfolio>'); each one also went out as an alert.
CREATE TABLE IF NOT EXISTS risk.events (
    account     VARCHAR     NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,   -- the mark (candle close / cycle) that changed the state
    state       VARCHAR     NOT NULL,   -- the state it changed to
    rule        VARCHAR     NOT NULL,
    reason      VARCHAR     NOT NULL,
    equity      DOUBLE,
    PRIMARY KEY (account, ts, state, rule)
);
