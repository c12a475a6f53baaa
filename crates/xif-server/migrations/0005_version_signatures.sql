-- The key that signed a version's archive (its minisign key id), when the server required
-- signatures from trusted keys at its upload; NULL for an unsigned upload.
ALTER TABLE versions ADD COLUMN signed_by TEXT;
