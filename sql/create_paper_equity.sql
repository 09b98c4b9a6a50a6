-- A paper account marked to market after each paper-trading step (the mark-to-market schedule).
CREATE TABLE IF NOT EXISTS paper.equity (
    broker     VARCHAR     NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    equity     DOUBLE      NOT NULL,
    risk_state VARCHAR     NOT NULL,
    positions  JSON        NOT NULL,
    PRIMARY KEY (broker, ts)
);
