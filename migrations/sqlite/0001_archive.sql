-- The archive: clusters (one per --cluster label, with the resume checkpoint),
-- events (one row per event, its raw JSON kept whole) and gaps (stretches of
-- history the archive cannot vouch for). docs/schema.md documents every column.

CREATE TABLE clusters (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    address         TEXT,
    -- Highest raft index whose frame is fully stored; NULL while empty.
    checkpoint      INTEGER,
    malformed_lines INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL, -- Unix milliseconds
    updated_at      INTEGER NOT NULL  -- Unix milliseconds
);

CREATE TABLE events (
    cluster_id    INTEGER NOT NULL REFERENCES clusters (id),
    raft_index    INTEGER NOT NULL,
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
    received_at   INTEGER NOT NULL, -- Unix milliseconds when the frame arrived
    event         TEXT    NOT NULL  -- the event's JSON exactly as received
);

-- An event's identity: within one raft entry there is one event per object.
-- Resends after a reconnect hit this key and are skipped.
CREATE UNIQUE INDEX events_identity ON events (cluster_id, raft_index, topic, namespace, key);

CREATE TABLE gaps (
    id          INTEGER PRIMARY KEY,
    cluster_id  INTEGER NOT NULL REFERENCES clusters (id),
    from_index  INTEGER NOT NULL, -- last index stored before the gap (0: none)
    to_index    INTEGER NOT NULL, -- first index stored after the gap
    kind        TEXT    NOT NULL, -- buffer | malformed | server_behind
    reason      TEXT    NOT NULL,
    detected_at INTEGER NOT NULL  -- Unix milliseconds
);

-- The same gap found again (a re-import, a restart) is recorded once.
CREATE UNIQUE INDEX gaps_identity ON gaps (cluster_id, from_index, to_index, kind);
