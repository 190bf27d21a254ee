-- Reconstructions: after a gap, the objects Nomad's list endpoints
-- (/v1/jobs, /v1/allocations, /v1/evaluations, /v1/deployments, /v1/nodes)
-- reported, kept apart from `events` so that nothing that reads events
-- (query events, the timelines, replay, serve, the reporting views) can take
-- them for events. `query state` and `query snapshot` consult them.
-- docs/schema.md documents every column.
-- The same tables and columns as migrations/sqlite, in PostgreSQL types.

-- One row per gap and topic: requested in the transaction that records the
-- gap (status `pending`), completed by the ingest process once the list is
-- read. The identity makes a second request for the same gap a no-op.
CREATE TABLE reconstructions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id   BIGINT  NOT NULL REFERENCES clusters (id),
    gap_id       BIGINT  NOT NULL REFERENCES gaps (id),
    topic        TEXT    NOT NULL, -- Job | Allocation | Evaluation | Deployment | Node
    namespace    TEXT    NOT NULL, -- the namespace listed ('*' for all)
    status       TEXT    NOT NULL, -- pending | stored | refused | failed | superseded
    raft_index   BIGINT,           -- the list's X-Nomad-Index, once stored
    objects      BIGINT  NOT NULL DEFAULT 0,
    detail       TEXT,             -- why it was refused, failed or superseded
    requested_at BIGINT  NOT NULL, -- Unix milliseconds
    recorded_at  BIGINT            -- Unix milliseconds when the list was read
);

CREATE UNIQUE INDEX reconstructions_identity ON reconstructions (gap_id, topic);
-- "The newest reconstruction of a topic at or before an index."
CREATE INDEX reconstructions_by_index ON reconstructions (cluster_id, topic, raft_index);

-- One row per object a stored reconstruction listed, exactly as Nomad sent it.
CREATE TABLE reconstructed_objects (
    reconstruction_id BIGINT  NOT NULL REFERENCES reconstructions (id),
    namespace         TEXT    NOT NULL, -- '' for nodes
    key               TEXT    NOT NULL, -- the object's ID
    job_id            TEXT,
    node_id           TEXT,
    eval_id           TEXT,
    deployment_id     TEXT,
    modify_index      BIGINT,           -- the object's ModifyIndex
    shape             TEXT    NOT NULL, -- JobListStub | Job | AllocationListStub | NodeListStub | Evaluation | Deployment
    object            JSON    NOT NULL  -- the object's JSON exactly as listed (`json`: kept as sent)
);

CREATE UNIQUE INDEX reconstructed_objects_identity ON reconstructed_objects (reconstruction_id, namespace, key);
