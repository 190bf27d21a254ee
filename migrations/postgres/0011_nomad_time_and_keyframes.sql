-- Nomad's own clock, and keyframes of the live objects.
--
-- `event_at` is the time Nomad gave the event (Unix ms): its payload's
-- ModifyTime, SubmitTime of a new job version, or a node's newest status or
-- event time; an event without one takes the newest time of its frame (one
-- raft entry is one moment), and a frame with none the receipt time, which
-- `time_source` then says ('nomad' | 'received'). `presence` is what the
-- event says of its object for snapshots: 0 present, 1 terminal (an
-- allocation whose client status is complete, failed or lost), 2 removed (a
-- deregistered node, a purged job); NULL for other topics. Rows archived
-- before this migration are filled in by nomad-chronicle when it first opens
-- the archive (it reads each event's payload), in small transactions.
ALTER TABLE event_log ADD COLUMN event_at BIGINT;
ALTER TABLE event_log ADD COLUMN time_source TEXT;
ALTER TABLE event_log ADD COLUMN presence SMALLINT;

-- Time windows (`--since/--until`, `--at TIME`) by Nomad's clock instead of
-- the receipt time.
DROP INDEX event_log_by_received;
CREATE INDEX event_log_by_time ON event_log (cluster_id, event_at, raft_index);

-- A keyframe: every object present (presence 0) at a raft index, by the
-- event that last described it. `query snapshot` starts from the newest
-- keyframe at or before the moment asked and reads only the events after
-- it, so its cost follows the objects alive then, not the history before.
CREATE TABLE keyframes (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id           BIGINT  NOT NULL REFERENCES clusters (id),
    raft_index           BIGINT  NOT NULL, -- the state after every event up to this index
    objects              BIGINT  NOT NULL, -- rows in keyframe_objects
    terminal_allocations BIGINT  NOT NULL, -- allocations terminal at this index (not listed)
    built_at             BIGINT  NOT NULL  -- Unix milliseconds
);
CREATE UNIQUE INDEX keyframes_identity ON keyframes (cluster_id, raft_index);

CREATE TABLE keyframe_objects (
    keyframe_id BIGINT  NOT NULL REFERENCES keyframes (id),
    topic       TEXT    NOT NULL, -- Node | Job | Allocation
    namespace   TEXT    NOT NULL,
    key_ref     BIGINT  NOT NULL, -- names.id of the object's ID
    raft_index  BIGINT  NOT NULL, -- the index of the event that last described it
    PRIMARY KEY (keyframe_id, topic, namespace, key_ref)
);

-- `events` gains the event's time by Nomad's clock and its source, as
-- its last columns, so queries written against it keep working.
CREATE OR REPLACE VIEW events AS
SELECT
    e.cluster_id,
    e.raft_index,
    e.position,
    e.topic,
    e.type,
    k.name AS key,
    e.namespace,
    j.name AS job_id,
    CASE WHEN e.topic = 'Allocation' THEN k.name END AS alloc_id,
    n.name AS node_id,
    v.name AS eval_id,
    d.name AS deployment_id,
    e.received_at,
    e.event,
    e.event_at,
    e.time_source
FROM event_log AS e
LEFT JOIN names AS k ON k.id = e.key_ref
LEFT JOIN names AS j ON j.id = e.job_ref
LEFT JOIN names AS n ON n.id = e.node_ref
LEFT JOIN names AS v ON v.id = e.eval_ref
LEFT JOIN names AS d ON d.id = e.deployment_ref;
