-- Tokens expire. Tokens made before this migration expire 30 days after it (the default
-- lifetime of a login), so that no token lives forever unnoticed.
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
UPDATE tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+30 days') WHERE revoked_at IS NULL;
