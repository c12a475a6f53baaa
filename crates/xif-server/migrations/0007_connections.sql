-- Database connections of the server (step 11) and the mapping of each extension's logical
-- databases onto them. Names are compared regardless of case: `key` columns hold them in lower
-- case, the others as given. The URL is stored only encrypted (`sealed`: base64 of the nonce and
-- the ChaCha20-Poly1305 ciphertext); `redacted` is what is shown.
CREATE TABLE database_connections (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    sealed TEXT NOT NULL,
    redacted TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE database_mappings (
    extension_key TEXT NOT NULL,
    logical_key TEXT NOT NULL,
    extension TEXT NOT NULL,
    logical TEXT NOT NULL,
    connection_key TEXT NOT NULL REFERENCES database_connections(key),
    mapped_by TEXT NOT NULL,
    mapped_at TEXT NOT NULL,
    PRIMARY KEY (extension_key, logical_key)
);
CREATE INDEX database_mappings_by_connection ON database_mappings (connection_key);
