-- The archive: clusters (one per --cluster label, with the resume checkpoint),
-- events (one row per event, its JSON kept exactly as received) and gaps
-- (stretches of history the archive cannot vouch for). The same logical
-- schema as migrations/sqlite; docs/schema.md documents every column.

CREATE TABLE clusters (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT   NOT NULL UNIQUE,
    address         TEXT,
    -- Highest raft index whose frame is fully stored; NULL while empty.
    checkpoint      BIGINT,
    malformed_lines BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL, -- Unix milliseconds
    updated_at      BIGINT NOT NULL  -- Unix milliseconds
);

CREATE TABLE events (
    cluster_id    BIGINT  NOT NULL REFERENCES clusters (id),
    raft_index    BIGINT  NOT NULL,
    position      INTEGER NOT NULL, -- the event's place within its frame
    topic         TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    namespace     TEXT    NOT NULL, -- '' for cluster-wide objects (Node, ACL…)
    job_id        TEXT,
    alloc_id      TEXT,
    node_id       TEXT,
    eval_id       TEXT,
    deployment_id TEXT,
    received_at   BIGINT  NOT NULL, -- Unix milliseconds when the frame arrived
    -- `json`, not `jsonb`: it keeps the exact text Nomad sent (key order,
    -- spacing), so replay is byte-identical; ->, ->> and json_* work on it.
    event         JSON    NOT NULL
);

-- An event's identity: within one raft entry there is one event per object.
-- Resends after a reconnect hit this key and are skipped.
CREATE UNIQUE INDEX events_identity ON events (cluster_id, raft_index, topic, namespace, key);

CREATE TABLE gaps (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id  BIGINT NOT NULL REFERENCES clusters (id),
    from_index  BIGINT NOT NULL, -- last index stored before the gap (0: none)
    to_index    BIGINT NOT NULL, -- first index stored after the gap
    kind        TEXT   NOT NULL, -- buffer | malformed | server_behind
    reason      TEXT   NOT NULL,
    detected_at BIGINT NOT NULL  -- Unix milliseconds
);

-- The same gap found again (a re-import, a restart) is recorded once.
CREATE UNIQUE INDEX gaps_identity ON gaps (cluster_id, from_index, to_index, kind);
