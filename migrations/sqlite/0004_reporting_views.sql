-- Reporting views: the questions asked after an incident ("which allocations
-- failed, where, and why", "which deployments failed", "when did node X go
-- down") as short SELECTs. docs/reporting.md documents every column and has
-- example queries. The same views, with the same columns, exist in
-- migrations/postgres.
--
-- Plain views, nothing materialised: each reads `events` through its indexed
-- columns and extracts the rest from the stored JSON when queried. Window
-- functions partition by the IDs a report filters on (cluster, namespace,
-- job, allocation…), so a filter on those columns is pushed into the view and
-- served by the lookup indexes of 0003 instead of reading the whole archive.
--
-- Times: `received_at` is Unix ms (when the frame arrived) and
-- `received_time` the same as UTC 'YYYY-MM-DD HH:MM:SS' text; times from
-- Nomad's payloads are Unix ns (`*_ns`) next to the same readable form.
-- Booleans are 0/1. Only SQLite 3.28+ syntax (window functions and named
-- windows, JSON1, `IS NOT` rather than 3.39's `IS DISTINCT FROM`): the views
-- are part of the schema, so a sqlite3 shell that could not parse one could
-- not open the archive at all.

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
        json_extract(e.event, '$.Payload.Allocation.TaskGroup') AS task_group,
        e.node_id,
        json_extract(e.event, '$.Payload.Allocation.NodeName') AS node_name,
        json_extract(e.event, '$.Payload.Allocation.DesiredStatus') AS desired_status,
        json_extract(e.event, '$.Payload.Allocation.ClientStatus') AS client_status,
        json_extract(e.event, '$.Payload.Allocation.ClientDescription') AS client_description
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
    client_description
FROM with_previous
WHERE previous_index IS NULL
   OR desired_status IS NOT previous_desired_status
   OR client_status IS NOT previous_client_status;

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
        json_extract(task_event.value, '$.Type') AS event_type,
        json_extract(task_event.value, '$.Time') AS time_ns,
        json_extract(task_event.value, '$.ExitCode') AS exit_code,
        -- Nomad marks an OOM kill in Details (drivers that detect it); the
        -- message is the fallback for events that only say so in words.
        (json_extract(task_event.value, '$.Details.oom_killed') IS 'true'
         OR coalesce(json_extract(task_event.value, '$.Message'), '') LIKE '%OOM Killed%'
         OR coalesce(json_extract(task_event.value, '$.DisplayMessage'), '') LIKE '%OOM Killed%'
        ) AS oom_killed,
        json_extract(task_event.value, '$.DisplayMessage') AS message,
        e.raft_index,
        e.position
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    -- json_each yields a single row for a JSON null (TaskStates or Events of
    -- an allocation that has none yet): keep objects only.
    JOIN json_each(e.event, '$.Payload.Allocation.TaskStates') AS task_state
        ON task_state.type = 'object'
    JOIN json_each(task_state.value, '$.Events') AS task_event
        ON task_event.type = 'object'
    WHERE e.topic = 'Allocation'
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
    datetime(time_ns / 1000000000, 'unixepoch') AS event_time,
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
        json_extract(e.event, '$.Payload.Job.Version') AS version,
        json_extract(e.event, '$.Payload.Job.Status') AS status,
        json_extract(e.event, '$.Payload.Job.Stop') AS stop,
        json_extract(e.event, '$.Payload.Job.SubmitTime') AS submit_time_ns,
        e.raft_index,
        e.position,
        e.received_at
    FROM events AS e
    JOIN clusters AS c ON c.id = e.cluster_id
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
    datetime(received_at / 1000, 'unixepoch') AS received_time
FROM with_previous
WHERE previous_index IS NULL
   OR version IS NOT previous_version;

-- One row per deployment: its latest status, and the index range over which
-- the archive saw it.
CREATE VIEW deployment_outcomes AS
WITH deployment_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        e.deployment_id,
        e.job_id,
        json_extract(e.event, '$.Payload.Deployment.JobVersion') AS job_version,
        json_extract(e.event, '$.Payload.Deployment.Status') AS status,
        json_extract(e.event, '$.Payload.Deployment.StatusDescription') AS status_description,
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
    datetime(received_at / 1000, 'unixepoch') AS last_received_time
FROM numbered
WHERE newest_first = 1;

-- One row per Node event that changed the node's status, scheduling
-- eligibility or drain, including the node's first event (its registration).
CREATE VIEW node_status_changes AS
WITH node_events AS (
    SELECT
        c.name AS cluster,
        e.node_id,
        json_extract(e.event, '$.Payload.Node.Name') AS node_name,
        json_extract(e.event, '$.Payload.Node.Status') AS status,
        json_extract(e.event, '$.Payload.Node.SchedulingEligibility') AS eligibility,
        json_extract(e.event, '$.Payload.Node.Drain') AS drain,
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
    datetime(received_at / 1000, 'unixepoch') AS received_time
FROM with_previous
WHERE previous_index IS NULL
   OR status IS NOT previous_status
   OR eligibility IS NOT previous_eligibility
   OR drain IS NOT previous_drain;
