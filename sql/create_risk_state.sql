-- The risk rules' state of each account (a paper account, a portfolio's paper account), so a
-- restart resumes where it stopped: a halted account stays halted until its resume policy or a
-- human (quantdag.portfolio.risk_store.resume) lets it go.
CREATE TABLE IF NOT EXISTS risk.state (
    account     VARCHAR     NOT NULL PRIMARY KEY,
    state       VARCHAR     NOT NULL,   -- active | reducing | halted
    rule        VARCHAR,                -- the rule behind the last change
    reason      VARCHAR,
    peak        DOUBLE      NOT NULL,   -- equity peak (open P&L included) the drawdown is measured from
    day         BIGINT      NOT NULL,   -- UTC day (days since 1970-01-01) of day_start
    day_start   DOUBLE      NOT NULL,   -- equity when that day's first mark came in
    halted_at   DOUBLE      NOT NULL,   -- marks seen when it halted (-1: never)
    marks       DOUBLE      NOT NULL,   -- equity marks seen (one per closed candle / cycle)
    equity      DOUBLE      NOT NULL,   -- the last mark
    updated_at  TIMESTAMPTZ NOT NULL
);
