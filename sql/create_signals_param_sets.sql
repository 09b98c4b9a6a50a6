-- Every strategy parameter set the pipeline knows: one per Dagster `param_sets` partition.
CREATE TABLE IF NOT EXISTS signals.param_sets (
    param_set   VARCHAR     NOT NULL PRIMARY KEY,  -- the partition key: "<strategy>-<params_hash>"
    strategy    VARCHAR     NOT NULL,
    params_hash VARCHAR     NOT NULL,
    params      JSON        NOT NULL,
    source      VARCHAR     NOT NULL               -- 'default', 'config', 'stored' (e.g. a promoted sweep)
);
