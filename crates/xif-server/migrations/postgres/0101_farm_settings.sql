-- Settings of the farm every node must share, recorded by the first node that starts: the
-- archive store (`archive_store`: `s3://BUCKET@ENDPOINT`, or a directory on one host), which a
-- node with another store is refused, since the others could not fetch its archives.
CREATE TABLE farm_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
