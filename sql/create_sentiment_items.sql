-- Scored versions of raw.news, one row per version and asset of the universe it is about.
-- score in [-1, 1] (NULL for a deletion); duplicate_of: 'feed:item_id' of the first copy of a
-- near-duplicate story (NULL for an original). Partitioned like raw.news, by fetched_at's day.
CREATE TABLE IF NOT EXISTS sentiment.items (
    feed         VARCHAR     NOT NULL,
    source       VARCHAR     NOT NULL,
    item_id      VARCHAR     NOT NULL,
    revision     INTEGER     NOT NULL,
    kind         VARCHAR     NOT NULL,
    asset        VARCHAR     NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    fetched_at   TIMESTAMPTZ NOT NULL,
    title        VARCHAR     NOT NULL,
    score        DOUBLE,
    deleted      BOOLEAN     NOT NULL,
    duplicate_of VARCHAR
);
