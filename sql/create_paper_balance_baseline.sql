-- What an account held that its fill ledger does not explain (deposits, holdings from before the
-- order manager), per asset: venue balance minus the ledger's flows at the first reconcile that saw
-- the balances. Every later reconcile expects venue total = baseline + ledger flows (within a
-- tolerance); a mismatch is alerted and halts risk-adding orders.
CREATE TABLE IF NOT EXISTS paper.balance_baseline (
    broker  VARCHAR     NOT NULL,
    asset   VARCHAR     NOT NULL,
    qty     DOUBLE      NOT NULL,
    ts      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (broker, asset)
);
