-- Module tokens (step 11): a token may act as a module, scoped to some extensions (a JSON array
-- of their names); both NULL for a user's own token.
ALTER TABLE tokens ADD COLUMN module TEXT;
ALTER TABLE tokens ADD COLUMN extensions TEXT;

-- The integration log: every call of an action and every record operation. `at` is in
-- microseconds since the epoch; `duration_us` in microseconds; `error` the API error code of a
-- failed call (NULL when it succeeded). Names compare without regard to case, by `lower(...)`.
CREATE TABLE calls (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    extension TEXT NOT NULL,
    module TEXT,
    user_name TEXT NOT NULL,
    token_id BIGINT,
    kind TEXT NOT NULL,
    operation TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    error TEXT,
    node TEXT
);
-- An extension's log, by time; the sweep of old entries, by time alone.
CREATE INDEX calls_extension_at ON calls (lower(extension), at);
CREATE INDEX calls_at ON calls (at);
