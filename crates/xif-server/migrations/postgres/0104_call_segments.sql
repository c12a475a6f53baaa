-- The integration log in segments (see `callsegments.rs`): a row for each batch of one
-- extension's entries, packed in `entries`, rather than a row for each entry, which cost a loaded
-- server a tenth of its CPU. The entries of the table `calls` are moved to segments when the
-- store opens and at each sweep (`PgStore`): SQL cannot pack them, and servers of the version
-- before may still write there during a rolling upgrade of a farm.
CREATE TABLE call_segments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    extension TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    count INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    node TEXT,
    entries BYTEA NOT NULL
);
-- An extension's segments, newest first; the sweep's, by their first time.
CREATE INDEX call_segments_extension ON call_segments (lower(extension), id);
CREATE INDEX call_segments_first_at ON call_segments (first_at);
