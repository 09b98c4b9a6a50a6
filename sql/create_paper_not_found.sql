-- "Order not found" answers for an in-flight order (sent, never acknowledged): a venue may not show
-- a new order for tens of seconds, so it is declared lost only after several answers spread over a
-- window. Kept per order so the count survives restarts.
CREATE TABLE IF NOT EXISTS paper.not_found (
    broker          VARCHAR     NOT NULL,
    client_order_id VARCHAR     NOT NULL,
    answers         INTEGER     NOT NULL,
    first_at        TIMESTAMPTZ NOT NULL,
    last_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (broker, client_order_id)
);
