-- Allocation events' task group, node name and client description are
-- referred to in `names`, as task events' texts are (0024): a few dozen
-- task groups, the nodes' names and a handful of descriptions over every
-- allocation event, which as text were 39 of each row's 49 bytes of text
-- (docs/performance.md, "Texts kept once in `names`"). The
-- statuses stay text: they are compared in many statements and are short.
-- A description over 512 bytes stays in the row: `names`' index takes
-- entries of at most 2,704 bytes (src/store/detail_texts.rs).
-- The view `allocation_transitions` keeps its names, columns and collation.
INSERT INTO names (name)
SELECT task_group FROM allocation_details WHERE task_group IS NOT NULL
UNION SELECT node_name FROM allocation_details WHERE node_name IS NOT NULL
UNION SELECT client_description FROM allocation_details
    WHERE client_description IS NOT NULL AND octet_length(client_description) <= 512
ORDER BY 1
ON CONFLICT DO NOTHING;

CREATE TABLE allocation_texts (
    cluster_id             BIGINT  NOT NULL,
    raft_index             BIGINT  NOT NULL,
    task_group_ref         BIGINT, -- names.id of Payload.Allocation.TaskGroup
    node_name_ref          BIGINT, -- … of .NodeName
    client_description_ref BIGINT, -- … of .ClientDescription
    position               INTEGER NOT NULL,
    desired_status         TEXT,   -- .DesiredStatus
    client_status          TEXT,   -- .ClientStatus
    client_description     TEXT,   -- .ClientDescription itself, when over 512 bytes
    PRIMARY KEY (cluster_id, raft_index, position)
);

INSERT INTO allocation_texts (cluster_id, raft_index, position, task_group_ref, node_name_ref,
                              desired_status, client_status, client_description_ref,
                              client_description)
SELECT a.cluster_id, a.raft_index, a.position, task_group.id, node_name.id,
       a.desired_status, a.client_status, client_description.id,
       CASE WHEN octet_length(a.client_description) > 512 THEN a.client_description END
FROM allocation_details AS a
LEFT JOIN names AS task_group ON task_group.name = a.task_group COLLATE "C"
LEFT JOIN names AS node_name ON node_name.name = a.node_name COLLATE "C"
LEFT JOIN names AS client_description
    ON client_description.name = a.client_description COLLATE "C"
    AND octet_length(a.client_description) <= 512
ORDER BY a.cluster_id, a.raft_index, a.position;

DROP VIEW allocation_transitions;
DROP TABLE allocation_details;
ALTER TABLE allocation_texts RENAME TO allocation_details;
ALTER TABLE allocation_details RENAME CONSTRAINT allocation_texts_pkey TO allocation_details_pkey;
CREATE INDEX allocation_details_by_status ON allocation_details (cluster_id, client_status, raft_index);
ANALYZE allocation_details;
ANALYZE names;

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
        a.task_group_ref,
        n.name AS node_id,
        a.node_name_ref,
        a.desired_status,
        a.client_status,
        a.client_description_ref,
        a.client_description AS long_description
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
    task_group.name COLLATE "default" AS task_group,
    node_id,
    node_name.name COLLATE "default" AS node_name,
    desired_status,
    client_status,
    previous_desired_status,
    previous_client_status,
    COALESCE(client_description.name COLLATE "default", long_description) AS client_description,
    event_at,
    to_timestamp(event_at / 1000.0) AS event_time
FROM with_previous
-- The texts are read for the transitions only, not for every event.
LEFT JOIN names AS task_group ON task_group.id = task_group_ref
LEFT JOIN names AS node_name ON node_name.id = node_name_ref
LEFT JOIN names AS client_description ON client_description.id = client_description_ref
WHERE previous_index IS NULL
   OR desired_status IS DISTINCT FROM previous_desired_status
   OR client_status IS DISTINCT FROM previous_client_status;
