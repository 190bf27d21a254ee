-- Compact IDs: every object ID the archive stores (an event's key, the job,
-- node, evaluation and deployment it references) is kept once, in `names`,
-- and events refer to it by integer. Events move to `event_log`, and
-- `events` becomes a view with exactly the columns it had, so every query
-- written against it keeps working. docs/schema.md documents both.
--
-- Why (docs/performance.md): the lookup indexes of 0003 were keyed by text
-- IDs, random UUIDs for allocations, evaluations and deployments, so each
-- event inserted into them at a random place and every commit rewrote about
-- one index page per event and index. Keyed by integers handed out in order
-- of first appearance, the objects that are active now have the newest
-- numbers, so their index entries land in the last pages of each index; the
-- indexes are also a third of their size. Only `names` itself still takes a
-- random insert, once per object instead of once per event.
--
-- Existing archives are copied over in this migration (it needs free disk
-- space for a second copy of the events while it runs). The same change as
-- migrations/sqlite/0007.

-- The reporting views of 0004 read `events`; they are created again below,
-- reading `event_log`.
DROP VIEW allocation_transitions;
DROP VIEW task_events;
DROP VIEW job_versions;
DROP VIEW deployment_outcomes;
DROP VIEW node_status_changes;

-- Every ID the archive refers to, once. Entries are only ever added. IDs
-- compare bytewise ("C"), as in SQLite: the index then serves prefix ranges
-- (`query alloc 3f2a`), and both backends sort IDs alike.
CREATE TABLE names (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT   COLLATE "C" NOT NULL UNIQUE
);

-- Fixed-width columns first: PostgreSQL aligns each to its width.
CREATE TABLE event_log (
    cluster_id     BIGINT  NOT NULL REFERENCES clusters (id),
    raft_index     BIGINT  NOT NULL,
    key_ref        BIGINT  NOT NULL, -- names.id of the event's Key
    job_ref        BIGINT,           -- names.id of the job it concerns
    node_ref       BIGINT,           -- … of the node
    eval_ref       BIGINT,           -- … of the evaluation
    deployment_ref BIGINT,           -- … of the deployment
    received_at    BIGINT  NOT NULL, -- Unix milliseconds when the frame arrived
    position       INTEGER NOT NULL, -- the event's place within its frame
    topic          TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    namespace      TEXT    NOT NULL, -- '' for cluster-wide objects (Node, ACL…)
    -- `json`, not `jsonb`: it keeps the exact text Nomad sent (key order,
    -- spacing), so replay is byte-identical; ->, ->> and json_* work on it.
    event          JSON    NOT NULL
);

INSERT INTO names (name)
SELECT key FROM events
UNION SELECT job_id FROM events WHERE job_id IS NOT NULL
UNION SELECT node_id FROM events WHERE node_id IS NOT NULL
UNION SELECT eval_id FROM events WHERE eval_id IS NOT NULL
UNION SELECT deployment_id FROM events WHERE deployment_id IS NOT NULL;

INSERT INTO event_log (cluster_id, raft_index, position, topic, type, namespace, key_ref,
                       job_ref, node_ref, eval_ref, deployment_ref, received_at, event)
SELECT e.cluster_id, e.raft_index, e.position, e.topic, e.type, e.namespace, k.id,
       j.id, n.id, v.id, d.id, e.received_at, e.event
FROM events AS e
JOIN names AS k ON k.name = e.key
LEFT JOIN names AS j ON j.name = e.job_id
LEFT JOIN names AS n ON n.name = e.node_id
LEFT JOIN names AS v ON v.name = e.eval_id
LEFT JOIN names AS d ON d.name = e.deployment_id
ORDER BY e.cluster_id, e.raft_index, e.position;

DROP TABLE events;

-- The identity (one event per object per raft entry) and stream order as
-- before; the lookups of 0003 on integer references, which now come first:
-- `names` is shared by all clusters, so an ID leads to its events directly
-- (a report that does not name the cluster included).
CREATE UNIQUE INDEX event_log_identity ON event_log (cluster_id, raft_index, topic, namespace, key_ref);
CREATE INDEX event_log_stream_order ON event_log (cluster_id, raft_index, position);
CREATE INDEX event_log_by_key ON event_log (key_ref, cluster_id, topic, raft_index);
CREATE INDEX event_log_by_job ON event_log (job_ref, cluster_id, raft_index) WHERE job_ref IS NOT NULL;
CREATE INDEX event_log_by_node ON event_log (node_ref, cluster_id, raft_index) WHERE node_ref IS NOT NULL;
CREATE INDEX event_log_by_eval ON event_log (eval_ref, cluster_id, raft_index) WHERE eval_ref IS NOT NULL;
CREATE INDEX event_log_by_deployment ON event_log (deployment_ref, cluster_id, raft_index) WHERE deployment_ref IS NOT NULL;

-- The events as they were: the same columns, IDs as text. A filter on an ID
-- column (`WHERE job_id = 'web'`) finds the name, then the events through
-- the lookup indexes. (LEFT JOINs throughout, so the joins a query does not
-- use are left out of its plan.)
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
    e.event
FROM event_log AS e
LEFT JOIN names AS k ON k.id = e.key_ref
LEFT JOIN names AS j ON j.id = e.job_ref
LEFT JOIN names AS n ON n.id = e.node_ref
LEFT JOIN names AS v ON v.id = e.eval_ref
LEFT JOIN names AS d ON d.id = e.deployment_ref;

-- The reporting views of 0004, unchanged but for reading IDs from `names`.

-- One row per allocation event that changed its desired or client status,
-- including the first event of each allocation (its placement).
CREATE VIEW allocation_transitions AS
WITH allocation_events AS (
    SELECT
        c.name AS cluster,
        e.raft_index,
        e.position,
        e.received_at,
        e.namespace,
        -- An allocation event's alloc_id is its key, which is indexed.
        k.name AS alloc_id,
        j.name AS job_id,
        e.event->'Payload'->'Allocation'->>'TaskGroup' AS task_group,
        n.name AS node_id,
        e.event->'Payload'->'Allocation'->>'NodeName' AS node_name,
        e.event->'Payload'->'Allocation'->>'DesiredStatus' AS desired_status,
        e.event->'Payload'->'Allocation'->>'ClientStatus' AS client_status,
        e.event->'Payload'->'Allocation'->>'ClientDescription' AS client_description
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
    to_timestamp(received_at / 1000.0) AS received_time,
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
    client_description
FROM with_previous
WHERE previous_index IS NULL
   OR desired_status IS DISTINCT FROM previous_desired_status
   OR client_status IS DISTINCT FROM previous_client_status;

-- One row per task event. Every AllocationUpdated is a full snapshot that
-- repeats each task's last 10 events, so an event is kept once, from the
-- snapshot where it first appeared; (allocation, task, Time, Type) names it.
CREATE VIEW task_events AS
WITH snapshot_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        j.name AS job_id,
        -- An allocation event's alloc_id is its key, which is indexed.
        k.name AS alloc_id,
        task_state.key AS task,
        task_event->>'Type' AS event_type,
        (task_event->>'Time')::bigint AS time_ns,
        (task_event->>'ExitCode')::bigint AS exit_code,
        -- Nomad marks an OOM kill in Details (drivers that detect it); the
        -- message is the fallback for events that only say so in words.
        (coalesce(task_event->'Details'->>'oom_killed' = 'true', false)
         OR coalesce(task_event->>'Message', '') LIKE '%OOM Killed%'
         OR coalesce(task_event->>'DisplayMessage', '') LIKE '%OOM Killed%'
        ) AS oom_killed,
        task_event->>'DisplayMessage' AS message,
        e.raft_index,
        e.position
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS k ON k.id = e.key_ref
    LEFT JOIN names AS j ON j.id = e.job_ref
    -- json_each and json_array_elements raise an error on a JSON null
    -- (TaskStates or Events of an allocation that has none yet): hand them
    -- only objects and arrays, anything else becomes SQL NULL (no rows).
    CROSS JOIN LATERAL json_each(
        CASE WHEN json_typeof(e.event->'Payload'->'Allocation'->'TaskStates') = 'object'
             THEN e.event->'Payload'->'Allocation'->'TaskStates' END
    ) AS task_state
    CROSS JOIN LATERAL json_array_elements(
        CASE WHEN json_typeof(task_state.value->'Events') = 'array'
             THEN task_state.value->'Events' END
    ) AS element (task_event)
    WHERE e.topic = 'Allocation'
      AND json_typeof(task_event) = 'object'
),
numbered AS (
    SELECT
        *,
        row_number() OVER (
            -- The de-duplication key is (cluster, alloc_id, task, time_ns,
            -- event_type); namespace and job_id are fixed per allocation and
            -- are listed so that filters on them reach the indexes.
            PARTITION BY cluster, namespace, job_id, alloc_id, task, time_ns, event_type
            ORDER BY raft_index, position
        ) AS occurrence
    FROM snapshot_events
)
SELECT
    cluster,
    namespace,
    job_id,
    alloc_id,
    task,
    event_type,
    time_ns,
    to_timestamp(time_ns / 1000000000.0) AS event_time,
    exit_code,
    oom_killed,
    message,
    raft_index AS first_seen_index
FROM numbered
WHERE occurrence = 1;

-- One row per job version: the first Job event of each job, and each later
-- one whose Version differs from the job's previous Job event. Status-only
-- updates (pending → running) repeat the version and are left out.
CREATE VIEW job_versions AS
WITH job_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        j.name AS job_id,
        (e.event->'Payload'->'Job'->>'Version')::bigint AS version,
        e.event->'Payload'->'Job'->>'Status' AS status,
        (e.event->'Payload'->'Job'->>'Stop')::boolean AS stop,
        (e.event->'Payload'->'Job'->>'SubmitTime')::bigint AS submit_time_ns,
        e.raft_index,
        e.position,
        e.received_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS j ON j.id = e.job_ref
    WHERE e.topic = 'Job'
      -- An event without a job object says nothing about versions.
      AND e.event->'Payload'->'Job'->>'Version' IS NOT NULL
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
    to_timestamp(submit_time_ns / 1000000000.0) AS submit_time,
    raft_index,
    received_at,
    to_timestamp(received_at / 1000.0) AS received_time
FROM with_previous
WHERE previous_index IS NULL
   OR version IS DISTINCT FROM previous_version;

-- One row per deployment: its latest status, and the index range over which
-- the archive saw it.
CREATE VIEW deployment_outcomes AS
WITH deployment_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        d.name AS deployment_id,
        j.name AS job_id,
        (e.event->'Payload'->'Deployment'->>'JobVersion')::bigint AS job_version,
        e.event->'Payload'->'Deployment'->>'Status' AS status,
        e.event->'Payload'->'Deployment'->>'StatusDescription' AS status_description,
        e.raft_index,
        e.position,
        e.received_at
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
    to_timestamp(received_at / 1000.0) AS last_received_time
FROM numbered
WHERE newest_first = 1;

-- One row per Node event that changed the node's status, scheduling
-- eligibility or drain, including the node's first event (its registration).
CREATE VIEW node_status_changes AS
WITH node_events AS (
    SELECT
        c.name AS cluster,
        n.name AS node_id,
        e.event->'Payload'->'Node'->>'Name' AS node_name,
        e.event->'Payload'->'Node'->>'Status' AS status,
        e.event->'Payload'->'Node'->>'SchedulingEligibility' AS eligibility,
        (e.event->'Payload'->'Node'->>'Drain')::boolean AS drain,
        e.raft_index,
        e.position,
        e.received_at
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
    to_timestamp(received_at / 1000.0) AS received_time
FROM with_previous
WHERE previous_index IS NULL
   OR status IS DISTINCT FROM previous_status
   OR eligibility IS DISTINCT FROM previous_eligibility
   OR drain IS DISTINCT FROM previous_drain;
