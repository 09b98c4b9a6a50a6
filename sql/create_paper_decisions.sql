-- The last decision (candle close) each paper account has acted on. As in the backtest, an
-- account trades a market only when a newer decision changed its target (or a risk rule or a
-- resume says so); between decisions it keeps its units.
CREATE TABLE IF NOT EXISTS paper.decisions (
    broker       VARCHAR     NOT NULL PRIMARY KEY,
    decision_ts  TIMESTAMPTZ NOT NULL,
    acted_at     TIMESTAMPTZ NOT NULL
);
