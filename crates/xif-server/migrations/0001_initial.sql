CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    administrator INTEGER NOT NULL DEFAULT 0,
    allow_extensions INTEGER NOT NULL DEFAULT 0,
    allow_foreign_entities INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE extensions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    published_number INTEGER
);

CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    extension_id INTEGER NOT NULL REFERENCES extensions(id),
    number INTEGER NOT NULL,
    declared_version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    UNIQUE (extension_id, number),
    UNIQUE (extension_id, sha256)
);

CREATE TABLE publications (
    id INTEGER PRIMARY KEY,
    extension_id INTEGER NOT NULL REFERENCES extensions(id),
    from_number INTEGER,
    to_number INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT NOT NULL
);

CREATE TABLE publication_locks (
    extension TEXT PRIMARY KEY COLLATE NOCASE,
    holder TEXT NOT NULL,
    since TEXT NOT NULL
);
