-- The integration log's sweep reads the (extension, at) index one extension at a time (see
-- `SqliteStore::sweep_calls`): an index on the time alone cost every entry of the log the
-- insert into a third b-tree, at the rate of calls.
DROP INDEX IF EXISTS calls_at;
