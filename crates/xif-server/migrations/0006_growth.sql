-- Growth: every list is read a page at a time by an index, and nothing on the paths of listing
-- and publishing counts or scans an extension's versions.
-- How many versions each extension has, kept by the insertion of a version (versions are never
-- removed), so that listing extensions does not count them.
ALTER TABLE extensions ADD COLUMN version_count INTEGER NOT NULL DEFAULT 0;
UPDATE extensions SET version_count = (SELECT count(*) FROM versions v WHERE v.extension_id = extensions.id);
-- An extension's publications in order, a page at a time.
CREATE INDEX publications_by_extension ON publications (extension_id, id);
-- The modules that use an extension, read at each of its publications.
CREATE INDEX module_dependencies_by_extension ON module_dependencies (extension, module);
-- A user's tokens.
CREATE INDEX tokens_by_user ON tokens (user_id, id);
