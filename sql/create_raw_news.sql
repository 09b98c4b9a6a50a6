-- News and social items exactly as the feeds gave them, one row per version (a revision or a
-- deletion is a new row with the next revision number). published_at: the feed's time;
-- fetched_at: when the version was first had (our request, or the archive's time). A day's
-- partition is the versions fetched that day. Key (feed, item_id, revision).
CREATE TABLE IF NOT EXISTS raw.news (
    feed         VARCHAR     NOT NULL,
    source       VARCHAR     NOT NULL,
    item_id      VARCHAR     NOT NULL,
    revision     INTEGER     NOT NULL,
    kind         VARCHAR     NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    fetched_at   TIMESTAMPTZ NOT NULL,
    title        VARCHAR     NOT NULL,
    url          VARCHAR     NOT NULL,
    assets       VARCHAR[]   NOT NULL,
    deleted      BOOLEAN     NOT NULL,
    value        DOUBLE
);
