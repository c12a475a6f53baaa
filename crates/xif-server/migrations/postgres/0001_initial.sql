-- The schema of the PostgreSQL metadata store: the same tables as SQLite's migrations 1 to 5,
-- in one. Names compare without regard to case, as SQLite's `COLLATE NOCASE` does: each is
-- unique and looked up by `lower(...)`, through the unique indexes below.

CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    administrator BOOLEAN NOT NULL DEFAULT FALSE,
    allow_extensions BOOLEAN NOT NULL DEFAULT FALSE,
    allow_foreign_entities BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX users_name ON users (lower(name));

CREATE TABLE tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    expires_at TEXT
);
-- A user's tokens are listed, and removed with the user.
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE extensions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    published_number BIGINT
);
CREATE UNIQUE INDEX extensions_name ON extensions (lower(name));

-- Numbers are given under a lock of the extension's row; the unique constraint makes a
-- duplicate number impossible whatever happens.
CREATE TABLE versions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    extension_id BIGINT NOT NULL REFERENCES extensions(id),
    number BIGINT NOT NULL,
    declared_version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    signed_by TEXT,
    UNIQUE (extension_id, number),
    UNIQUE (extension_id, sha256)
);

CREATE TABLE publications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    extension_id BIGINT NOT NULL REFERENCES extensions(id),
    from_number BIGINT,
    to_number BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    published_at TEXT NOT NULL
);
CREATE INDEX publications_extension ON publications (extension_id, id);

-- A lock belongs to one publication (its owner, a random id) and holds for a lease that its
-- holder renews: a holder that died frees the lock when the lease runs out.
CREATE TABLE publication_locks (
    extension TEXT NOT NULL,
    holder TEXT NOT NULL,
    since TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
CREATE UNIQUE INDEX publication_locks_extension ON publication_locks (lower(extension));

CREATE TABLE module_dependencies (
    module TEXT NOT NULL,
    extension TEXT NOT NULL,
    version BIGINT NOT NULL,
    uses TEXT NOT NULL
);
CREATE UNIQUE INDEX module_dependencies_key ON module_dependencies (lower(module), lower(extension));
-- The consumers of an extension are looked up by it.
CREATE INDEX module_dependencies_extension ON module_dependencies (lower(extension));
