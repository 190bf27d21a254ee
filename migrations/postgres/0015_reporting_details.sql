-- What the reporting views read, kept beside the events instead of read out
-- of their JSON: the views and `--node NAME` no longer parse the stored
-- events, so the events can be stored in any form (compressed) and a
-- report over the whole archive reads a few small columns per event.
--
-- One row per event of the topic, keyed like the event (cluster, raft
-- index, position in its frame), with the payload fields the view reads,
-- exactly as `json_extract` read them before (NULL where the payload has
-- none). ingest fills them in the same transaction as the events, from the
-- events' JSON, with the same expressions; this migration fills them for the
-- events already archived (once; it reads every event of the four topics).
CREATE TABLE allocation_details (
    cluster_id         BIGINT NOT NULL,
    raft_index         BIGINT NOT NULL,
    position           INTEGER NOT NULL,
    task_group         TEXT,    -- Payload.Allocation.TaskGroup
    node_name          TEXT,    -- … .NodeName
    desired_status     TEXT,    -- … .DesiredStatus
    client_status      TEXT,    -- … .ClientStatus
    client_description TEXT,    -- … .ClientDescription
    PRIMARY KEY (cluster_id, raft_index, position)
);

CREATE TABLE job_details (
    cluster_id     BIGINT NOT NULL,
    raft_index     BIGINT NOT NULL,
    position       INTEGER NOT NULL,
    version        BIGINT, -- Payload.Job.Version
    status         TEXT,    -- … .Status
    stop           BOOLEAN, -- … .Stop
    submit_time_ns BIGINT, -- … .SubmitTime (Unix ns)
    PRIMARY KEY (cluster_id, raft_index, position)
);

CREATE TABLE deployment_details (
    cluster_id         BIGINT NOT NULL,
    raft_index         BIGINT NOT NULL,
    position           INTEGER NOT NULL,
    job_version        BIGINT, -- Payload.Deployment.JobVersion
    status             TEXT,    -- … .Status
    status_description TEXT,    -- … .StatusDescription
    PRIMARY KEY (cluster_id, raft_index, position)
);

CREATE TABLE node_details (
    cluster_id  BIGINT NOT NULL,
    raft_index  BIGINT NOT NULL,
    position    INTEGER NOT NULL,
    key_ref     BIGINT NOT NULL, -- names.id of the node's ID (the event's key)
    node_name   TEXT,    -- Payload.Node.Name
    status      TEXT,    -- … .Status
    eligibility TEXT,    -- … .SchedulingEligibility
    drain       BOOLEAN, -- … .Drain
    PRIMARY KEY (cluster_id, raft_index, position)
);

-- `--node NAME`: the nodes ever called NAME, with their keys, from the index
-- alone. It replaces 0012's index on the events' JSON.
CREATE INDEX node_details_by_name ON node_details (cluster_id, node_name, key_ref);
DROP INDEX event_log_node_name;

-- Task events, once each: every allocation update repeats each task's last
-- ten events, and the archive keeps an event from the update that first
-- carried it (the lowest raft index, then position), as `task_events` did
-- by numbering them. (allocation, task, Time, Type) names an event.
CREATE TABLE task_event_log (
    alloc_ref           BIGINT NOT NULL, -- names.id of the allocation's ID
    cluster_id          BIGINT NOT NULL,
    task                TEXT    NOT NULL,
    time_ns             BIGINT NOT NULL, -- the task event's Time (Unix ns)
    event_type          TEXT    NOT NULL, -- … Type
    namespace           TEXT    NOT NULL, -- the allocation's
    job_ref             BIGINT,          -- names.id of the allocation's job
    exit_code           BIGINT,          -- … ExitCode
    oom_killed          BOOLEAN NOT NULL, -- Details.oom_killed, or "OOM Killed" in a message
    message             TEXT,             -- … DisplayMessage
    first_seen_index    BIGINT NOT NULL, -- the allocation event that first carried it
    first_seen_position INTEGER NOT NULL,
    PRIMARY KEY (alloc_ref, cluster_id, task, time_ns, event_type)
);
CREATE INDEX task_event_log_by_job ON task_event_log (job_ref, cluster_id) WHERE job_ref IS NOT NULL;

-- The events already archived. The expressions are the views' of 0011.
INSERT INTO allocation_details
SELECT cluster_id, raft_index, position,
       event->'Payload'->'Allocation'->>'TaskGroup',
       event->'Payload'->'Allocation'->>'NodeName',
       event->'Payload'->'Allocation'->>'DesiredStatus',
       event->'Payload'->'Allocation'->>'ClientStatus',
       event->'Payload'->'Allocation'->>'ClientDescription'
FROM event_log WHERE topic = 'Allocation';

INSERT INTO job_details
SELECT cluster_id, raft_index, position,
       (event->'Payload'->'Job'->>'Version')::bigint,
       event->'Payload'->'Job'->>'Status',
       (event->'Payload'->'Job'->>'Stop')::boolean,
       (event->'Payload'->'Job'->>'SubmitTime')::bigint
FROM event_log WHERE topic = 'Job';

INSERT INTO deployment_details
SELECT cluster_id, raft_index, position,
       (event->'Payload'->'Deployment'->>'JobVersion')::bigint,
       event->'Payload'->'Deployment'->>'Status',
       event->'Payload'->'Deployment'->>'StatusDescription'
FROM event_log WHERE topic = 'Deployment';

INSERT INTO node_details
SELECT cluster_id, raft_index, position, key_ref,
       event->'Payload'->'Node'->>'Name',
       event->'Payload'->'Node'->>'Status',
       event->'Payload'->'Node'->>'SchedulingEligibility',
       (event->'Payload'->'Node'->>'Drain')::boolean
FROM event_log WHERE topic = 'Node';

-- Each task event from the allocation event that first carried it.
INSERT INTO task_event_log
SELECT DISTINCT ON (e.key_ref, e.cluster_id, task_state.key,
                    (task_event->>'Time')::bigint, task_event->>'Type')
       e.key_ref, e.cluster_id, task_state.key,
       (task_event->>'Time')::bigint,
       task_event->>'Type',
       e.namespace, e.job_ref,
       (task_event->>'ExitCode')::bigint,
       (coalesce(task_event->'Details'->>'oom_killed' = 'true', false)
        OR coalesce(task_event->>'Message', '') LIKE '%OOM Killed%'
        OR coalesce(task_event->>'DisplayMessage', '') LIKE '%OOM Killed%'),
       task_event->>'DisplayMessage',
       e.raft_index, e.position
FROM event_log AS e
-- json_each and json_array_elements raise an error on a JSON null: hand
-- them only objects and arrays.
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
  AND task_event->>'Time' IS NOT NULL
  AND task_event->>'Type' IS NOT NULL
ORDER BY e.key_ref, e.cluster_id, task_state.key, (task_event->>'Time')::bigint,
         task_event->>'Type', e.raft_index, e.position;

-- The views read the columns above; same names and columns as before.
CREATE OR REPLACE VIEW task_events AS
SELECT
    c.name AS cluster,
    t.namespace,
    j.name AS job_id,
    k.name AS alloc_id,
    t.task,
    t.event_type,
    t.time_ns,
    to_timestamp(t.time_ns / 1000000000.0) AS event_time,
    t.exit_code,
    t.oom_killed,
    t.message,
    t.first_seen_index
FROM task_event_log AS t
JOIN clusters AS c ON c.id = t.cluster_id
JOIN names AS k ON k.id = t.alloc_ref
LEFT JOIN names AS j ON j.id = t.job_ref;

CREATE OR REPLACE VIEW allocation_transitions AS
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
        a.task_group,
        n.name AS node_id,
        a.node_name,
        a.desired_status,
        a.client_status,
        a.client_description
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS k ON k.id = e.key_ref
    LEFT JOIN names AS j ON j.id = e.job_ref
    LEFT JOIN names AS n ON n.id = e.node_ref
    LEFT JOIN allocation_details AS a
        ON a.cluster_id = e.cluster_id AND a.raft_index = e.raft_index AND a.position = e.position
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
    client_description,
    event_at,
    to_timestamp(event_at / 1000.0) AS event_time
FROM with_previous
WHERE previous_index IS NULL
   OR desired_status IS DISTINCT FROM previous_desired_status
   OR client_status IS DISTINCT FROM previous_client_status;

CREATE OR REPLACE VIEW job_versions AS
WITH job_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        j.name AS job_id,
        x.version,
        x.status,
        x.stop,
        x.submit_time_ns,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS j ON j.id = e.job_ref
    LEFT JOIN job_details AS x
        ON x.cluster_id = e.cluster_id AND x.raft_index = e.raft_index AND x.position = e.position
    WHERE e.topic = 'Job'
      -- An event without a job object says nothing about versions.
      AND x.version IS NOT NULL
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
    to_timestamp(received_at / 1000.0) AS received_time,
    event_at,
    to_timestamp(event_at / 1000.0) AS event_time
FROM with_previous
WHERE previous_index IS NULL
   OR version IS DISTINCT FROM previous_version;

CREATE OR REPLACE VIEW deployment_outcomes AS
WITH deployment_events AS (
    SELECT
        c.name AS cluster,
        e.namespace,
        d.name AS deployment_id,
        j.name AS job_id,
        x.job_version,
        x.status,
        x.status_description,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS d ON d.id = e.deployment_ref
    LEFT JOIN names AS j ON j.id = e.job_ref
    LEFT JOIN deployment_details AS x
        ON x.cluster_id = e.cluster_id AND x.raft_index = e.raft_index AND x.position = e.position
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
    to_timestamp(received_at / 1000.0) AS last_received_time,
    event_at AS last_event_at,
    to_timestamp(event_at / 1000.0) AS last_event_time
FROM numbered
WHERE newest_first = 1;

CREATE OR REPLACE VIEW node_status_changes AS
WITH node_events AS (
    SELECT
        c.name AS cluster,
        n.name AS node_id,
        x.node_name,
        x.status,
        x.eligibility,
        x.drain,
        e.raft_index,
        e.position,
        e.received_at,
        e.event_at
    FROM event_log AS e
    JOIN clusters AS c ON c.id = e.cluster_id
    JOIN names AS n ON n.id = e.node_ref
    LEFT JOIN node_details AS x
        ON x.cluster_id = e.cluster_id AND x.raft_index = e.raft_index AND x.position = e.position
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
    to_timestamp(received_at / 1000.0) AS received_time,
    event_at,
    to_timestamp(event_at / 1000.0) AS event_time
FROM with_previous
WHERE previous_index IS NULL
   OR status IS DISTINCT FROM previous_status
   OR eligibility IS DISTINCT FROM previous_eligibility
   OR drain IS DISTINCT FROM previous_drain;
