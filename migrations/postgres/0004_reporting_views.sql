-- Reporting views: the questions asked after an incident ("which allocations
-- failed, where, and why", "which deployments failed", "when did node X go
-- down") as short SELECTs. docs/reporting.md documents every column and has
-- example queries. The same views, with the same columns, as
-- migrations/sqlite.
--
-- Plain views, nothing materialised: each reads `events` through its indexed
-- columns and extracts the rest from the stored JSON when queried. Window
-- functions partition by the IDs a report filters on (cluster, namespace,
-- job, allocation…), so a filter on those columns is pushed into the view and
-- served by the lookup indexes of 0003 instead of reading the whole archive.
--
-- Times: `received_at` is Unix ms (when the frame arrived) and
-- `received_time` the same as a timestamptz; times from Nomad's payloads are
-- Unix ns (`*_ns`, bigint: ns do not fit a double exactly) next to the same
-- as a timestamptz. Flags are booleans. `event` is `json` (not jsonb), so
-- fields are read with -> and ->> and cast from text.

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
        e.key AS alloc_id,
        e.job_id,
        e.event->'Payload'->'Allocation'->>'TaskGroup' AS task_group,
        e.node_id,
        e.event->'Payload'->'Allocation'->>'NodeName' AS node_name,
        e.event->'Payload'->'Allocation'->>'DesiredStatus' AS desired_status,
        e.event->'Payload'->'Allocation'->>'ClientStatus' AS client_status,
        e.event->'Payload'->'Allocation'->>'ClientDescription' AS client_description
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
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
    -- well changes nothing but lets `WHERE job_id = …` use events_by_job.
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
        e.job_id,
        -- An allocation event's alloc_id is its key, which is indexed.
        e.key AS alloc_id,
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
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
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
        e.job_id,
        (e.event->'Payload'->'Job'->>'Version')::bigint AS version,
        e.event->'Payload'->'Job'->>'Status' AS status,
        (e.event->'Payload'->'Job'->>'Stop')::boolean AS stop,
        (e.event->'Payload'->'Job'->>'SubmitTime')::bigint AS submit_time_ns,
        e.raft_index,
        e.position,
        e.received_at
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
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
        e.deployment_id,
        e.job_id,
        (e.event->'Payload'->'Deployment'->>'JobVersion')::bigint AS job_version,
        e.event->'Payload'->'Deployment'->>'Status' AS status,
        e.event->'Payload'->'Deployment'->>'StatusDescription' AS status_description,
        e.raft_index,
        e.position,
        e.received_at
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
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
        e.node_id,
        e.event->'Payload'->'Node'->>'Name' AS node_name,
        e.event->'Payload'->'Node'->>'Status' AS status,
        e.event->'Payload'->'Node'->>'SchedulingEligibility' AS eligibility,
        (e.event->'Payload'->'Node'->>'Drain')::boolean AS drain,
        e.raft_index,
        e.position,
        e.received_at
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
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
