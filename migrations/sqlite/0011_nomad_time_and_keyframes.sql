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
ALTER TABLE event_log ADD COLUMN event_at INTEGER;
ALTER TABLE event_log ADD COLUMN time_source TEXT;
ALTER TABLE event_log ADD COLUMN presence INTEGER;

-- Time windows (`--since/--until`, `--at TIME`) by Nomad's clock instead of
-- the receipt time.
DROP INDEX event_log_by_received;
CREATE INDEX event_log_by_time ON event_log (cluster_id, event_at, raft_index);

-- A keyframe: every object present (presence 0) at a raft index, by the
-- event that last described it. `query snapshot` starts from the newest
-- keyframe at or before the moment asked and reads only the events after
-- it, so its cost follows the objects alive then, not the history before.
CREATE TABLE keyframes (
    id                   INTEGER PRIMARY KEY,
    cluster_id           INTEGER NOT NULL REFERENCES clusters (id),
    raft_index           INTEGER NOT NULL, -- the state after every event up to this index
    objects              INTEGER NOT NULL, -- rows in keyframe_objects
    terminal_allocations INTEGER NOT NULL, -- allocations terminal at this index (not listed)
    built_at             INTEGER NOT NULL  -- Unix milliseconds
);
CREATE UNIQUE INDEX keyframes_identity ON keyframes (cluster_id, raft_index);

CREATE TABLE keyframe_objects (
    keyframe_id INTEGER NOT NULL REFERENCES keyframes (id),
    topic       TEXT    NOT NULL, -- Node | Job | Allocation
    namespace   TEXT    NOT NULL,
    key_ref     INTEGER NOT NULL, -- names.id of the object's ID
    raft_index  INTEGER NOT NULL, -- the index of the event that last described it
    PRIMARY KEY (keyframe_id, topic, namespace, key_ref)
) WITHOUT ROWID;

-- `events` gains the event's time by Nomad's clock and its source, as
-- its last columns, so queries written against it keep working.
DROP VIEW events;
CREATE VIEW events AS
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

-- The reporting views of 0007 gain the time of each row by Nomad's clock
-- (`event_at`, Unix ms, and the same as readable time), as their last
-- columns: reports written against them keep working.
DROP VIEW allocation_transitions;
CREATE VIEW allocation_transitions AS
WITH allocation_events AS (
    SELECT
        c.name AS cluster,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at,
        e.namespace,
        -- An allocation event's alloc_id is its key, which is indexed.
        k.name AS alloc_id,
        j.name AS job_id,
        json_extract(e.event, '$.Payload.Allocation.TaskGroup') AS task_group,
        n.name AS node_id,
        json_extract(e.event, '$.Payload.Allocation.NodeName') AS node_name,
        json_extract(e.event, '$.Payload.Allocation.DesiredStatus') AS desired_status,
        json_extract(e.event, '$.Payload.Allocation.ClientStatus') AS client_status,
        json_extract(e.event, '$.Payload.Allocation.ClientDescription') AS client_description
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS k ON k.id = e.key_ref
    LEFT JOIN names AS j ON j.id = e.job_ref
    LEFT JOIN names AS n ON n.id = e.node_ref
    WHERE e.topic = 'Allocation'
),
with_previous AS (
    SELECT
        *,
        -- NULL for the allocation's first event, which always counts.
        lag(raft_index) OVER allocation AS previous_index,
        lag(desired_status) OVER allocation AS previous_desired_status,
        lag(client_status) OVER allocation AS previous_client_status
    FROM allocation_events
    -- An allocation never changes namespace or job: partitioning by them as
    -- well changes nothing but lets `WHERE job_id = …` use event_log_by_job.
    WINDOW allocation AS (
        PARTITION BY cluster, namespace, job_id, alloc_id
        ORDER BY raft_index, position
    )
)
SELECT
    cluster,
    raft_index,
    received_at,
    datetime(received_at / 1000, 'unixepoch') AS received_time,
    namespace,
    alloc_id,
    job_id,
    task_group,
    node_id,
    node_name,
    desired_status,
    client_status,
    previous_desired_status,
    previous_client_status,
    client_description,
    event_at,
    datetime(event_at / 1000, 'unixepoch') AS event_time
FROM with_previous
WHERE previous_index IS NULL
   OR desired_status IS NOT previous_desired_status
   OR client_status IS NOT previous_client_status;

DROP VIEW job_versions;
CREATE VIEW job_versions AS
WITH job_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        j.name AS job_id,
        json_extract(e.event, '$.Payload.Job.Version') AS version,
        json_extract(e.event, '$.Payload.Job.Status') AS status,
        json_extract(e.event, '$.Payload.Job.Stop') AS stop,
        json_extract(e.event, '$.Payload.Job.SubmitTime') AS submit_time_ns,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS j ON j.id = e.job_ref
    WHERE e.topic = 'Job'
      -- An event without a job object says nothing about versions.
      AND json_extract(e.event, '$.Payload.Job.Version') IS NOT NULL
),
with_previous AS (
    SELECT
        *,
        lag(raft_index) OVER job AS previous_index,
        lag(version) OVER job AS previous_version
    FROM job_events
    WINDOW job AS (PARTITION BY cluster, namespace, job_id ORDER BY raft_index, position)
)
SELECT
    cluster,
    namespace,
    job_id,
    version,
    status,
    stop,
    submit_time_ns,
    datetime(submit_time_ns / 1000000000, 'unixepoch') AS submit_time,
    raft_index,
    received_at,
    datetime(received_at / 1000, 'unixepoch') AS received_time,
    event_at,
    datetime(event_at / 1000, 'unixepoch') AS event_time
FROM with_previous
WHERE previous_index IS NULL
   OR version IS NOT previous_version;

DROP VIEW deployment_outcomes;
CREATE VIEW deployment_outcomes AS
WITH deployment_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        d.name AS deployment_id,
        j.name AS job_id,
        json_extract(e.event, '$.Payload.Deployment.JobVersion') AS job_version,
        json_extract(e.event, '$.Payload.Deployment.Status') AS status,
        json_extract(e.event, '$.Payload.Deployment.StatusDescription') AS status_description,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS d ON d.id = e.deployment_ref
    LEFT JOIN names AS j ON j.id = e.job_ref
    WHERE e.topic = 'Deployment'
),
numbered AS (
    SELECT
        *,
        min(raft_index) OVER deployment AS first_index,
        row_number() OVER (deployment ORDER BY raft_index DESC, position DESC) AS newest_first
    FROM deployment_events
    -- job_id is fixed per deployment; listed so `WHERE job_id = …` is pushed down.
    WINDOW deployment AS (PARTITION BY cluster, namespace, job_id, deployment_id)
)
SELECT
    cluster,
    namespace,
    deployment_id,
    job_id,
    job_version,
    status,
    status_description,
    first_index,
    raft_index AS last_index,
    received_at AS last_received_at,
    datetime(received_at / 1000, 'unixepoch') AS last_received_time,
    event_at AS last_event_at,
    datetime(event_at / 1000, 'unixepoch') AS last_event_time
FROM numbered
WHERE newest_first = 1;

DROP VIEW node_status_changes;
CREATE VIEW node_status_changes AS
WITH node_events AS (
    SELECT
        c.name AS cluster,
        n.name AS node_id,
        json_extract(e.event, '$.Payload.Node.Name') AS node_name,
        json_extract(e.event, '$.Payload.Node.Status') AS status,
        json_extract(e.event, '$.Payload.Node.SchedulingEligibility') AS eligibility,
        json_extract(e.event, '$.Payload.Node.Drain') AS drain,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS n ON n.id = e.node_ref
    WHERE e.topic = 'Node'
),
with_previous AS (
    SELECT
        *,
        lag(raft_index) OVER node AS previous_index,
        lag(status) OVER node AS previous_status,
        lag(eligibility) OVER node AS previous_eligibility,
        lag(drain) OVER node AS previous_drain
    FROM node_events
    WINDOW node AS (PARTITION BY cluster, node_id ORDER BY raft_index, position)
)
SELECT
    cluster,
    node_id,
    node_name,
    status,
    eligibility,
    drain,
    previous_status,
    previous_eligibility,
    previous_drain,
    raft_index,
    received_at,
    datetime(received_at / 1000, 'unixepoch') AS received_time,
    event_at,
    datetime(event_at / 1000, 'unixepoch') AS event_time
FROM with_previous
WHERE previous_index IS NULL
   OR status IS NOT previous_status
   OR eligibility IS NOT previous_eligibility
   OR drain IS NOT previous_drain;
