-- The farm: each node registers itself and beats every second (live while its heartbeat is
-- recent), and reports the version of each extension it runs, or the version whose deploy
-- failed there and the failure's public message.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE node_extensions (
    node_id TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    extension TEXT NOT NULL,
    running BIGINT,
    failed_version BIGINT,
    failure TEXT,
    PRIMARY KEY (node_id, extension)
);

-- Login attempts per key (an address or a user name) and minute, counted by every node.
CREATE TABLE login_attempts (
    key TEXT NOT NULL,
    minute BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    PRIMARY KEY (key, minute)
);
