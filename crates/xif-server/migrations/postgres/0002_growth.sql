-- Growth: every list is read a page at a time by an index, and nothing on the paths of listing
-- and publishing counts or scans an extension's versions (as SQLite's migration 6).
-- How many versions each extension has, kept by the insertion of a version (under the lock of
-- the extension's row; versions are never removed), so that listing extensions does not count
-- them.
ALTER TABLE extensions ADD COLUMN version_count BIGINT NOT NULL DEFAULT 0;
UPDATE extensions SET version_count = (SELECT count(*) FROM versions v WHERE v.extension_id = extensions.id);
-- Pages of the extensions and of the users, in the order of their lower-case names byte by
-- byte (as SQLite's NOCASE for these ASCII names), read from the cursor on.
CREATE INDEX extensions_name_order ON extensions ((lower(name) COLLATE "C"));
CREATE INDEX users_name_order ON users ((lower(name) COLLATE "C"));
-- The modules that use an extension, in the order they are answered in.
DROP INDEX module_dependencies_extension;
CREATE INDEX module_dependencies_extension ON module_dependencies (lower(extension), (lower(module) COLLATE "C"));
