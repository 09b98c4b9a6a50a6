-- One order manager trades an account at a time: the holder of its lease (taken on start, renewed
-- every cycle and order, released on exit; an expired lease, or one whose holder process is dead on
-- this host, is taken over).
CREATE TABLE IF NOT EXISTS paper.leases (
    account     VARCHAR     PRIMARY KEY,  -- broker name, as in paper.orders.broker
    holder      VARCHAR     NOT NULL,     -- host:pid:uuid of the order manager
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
