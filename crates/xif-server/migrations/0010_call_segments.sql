-- The integration log in segments (see `callsegments.rs`): a row for each batch of one
-- extension's entries, packed in `entries`, rather than a row for each entry, which cost a loaded
-- server a tenth of its CPU. The entries of the table `calls` are moved to segments, and the
-- table dropped, when the store opens (`SqliteStore::open`): SQL cannot pack them.
CREATE TABLE call_segments (
    -- AUTOINCREMENT: an id is never given twice, even once the sweep has removed every segment
    -- (entries' ids are the page cursor, and later entries must have greater ones).
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    extension TEXT NOT NULL COLLATE NOCASE,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    count INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    node TEXT,
    entries BLOB NOT NULL
);
-- An extension's segments, newest first; the sweep's, by their first time.
CREATE INDEX call_segments_extension ON call_segments (extension, id);
CREATE INDEX call_segments_first_at ON call_segments (first_at);
