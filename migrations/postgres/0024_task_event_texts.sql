-- Task events refer to their task's name, their type and their message in
-- `names`, as events refer to IDs: a long history repeats a few dozen task
-- names, a handful of types and some thousands of messages over millions of
-- task events (docs/performance.md, "Texts kept once in `names`"). A
-- message over 512 bytes stays in the row: `names`' index takes entries of
-- at most 2,704 bytes (src/store/detail_texts.rs). The view `task_events`
-- keeps its names, columns and collation.
INSERT INTO names (name)
SELECT task FROM task_event_log
UNION SELECT event_type FROM task_event_log
UNION SELECT message FROM task_event_log
    WHERE message IS NOT NULL AND octet_length(message) <= 512
ORDER BY 1
ON CONFLICT DO NOTHING;

CREATE TABLE task_event_texts (
    alloc_ref           BIGINT  NOT NULL, -- names.id of the allocation's ID
    cluster_id          BIGINT  NOT NULL,
    task_ref            BIGINT  NOT NULL, -- names.id of the task's name
    time_ns             BIGINT  NOT NULL, -- the task event's Time (Unix ns)
    type_ref            BIGINT  NOT NULL, -- names.id of its Type
    job_ref             BIGINT,           -- names.id of the allocation's job
    exit_code           BIGINT,           -- … ExitCode
    message_ref         BIGINT,           -- names.id of its DisplayMessage
    first_seen_index    BIGINT  NOT NULL, -- the allocation event that first carried it
    first_seen_position INTEGER NOT NULL,
    oom_killed          BOOLEAN NOT NULL, -- Details.oom_killed, or "OOM Killed" in a message
    namespace           TEXT    NOT NULL, -- the allocation's
    message             TEXT,             -- the message itself, when over 512 bytes
    PRIMARY KEY (alloc_ref, cluster_id, task_ref, time_ns, type_ref)
);

INSERT INTO task_event_texts
SELECT t.alloc_ref, t.cluster_id, task_name.id, t.time_ns, type_name.id, t.job_ref,
       t.exit_code, message_text.id, t.first_seen_index, t.first_seen_position, t.oom_killed,
       t.namespace, CASE WHEN octet_length(t.message) > 512 THEN t.message END
FROM task_event_log AS t
JOIN names AS task_name ON task_name.name = t.task COLLATE "C"
JOIN names AS type_name ON type_name.name = t.event_type COLLATE "C"
LEFT JOIN names AS message_text ON message_text.name = t.message COLLATE "C"
    AND octet_length(t.message) <= 512
ORDER BY t.alloc_ref, t.cluster_id;

DROP VIEW task_events;
DROP TABLE task_event_log;
ALTER TABLE task_event_texts RENAME TO task_event_log;
ALTER TABLE task_event_log RENAME CONSTRAINT task_event_texts_pkey TO task_event_log_pkey;
CREATE INDEX task_event_log_by_job ON task_event_log (job_ref, cluster_id) WHERE job_ref IS NOT NULL;
ANALYZE task_event_log;
ANALYZE names;

CREATE VIEW task_events AS
SELECT
    c.name AS cluster,
    t.namespace,
    j.name AS job_id,
    k.name AS alloc_id,
    task_name.name COLLATE "default" AS task,
    type_name.name COLLATE "default" AS event_type,
    t.time_ns,
    to_timestamp(t.time_ns / 1000000000.0) AS event_time,
    t.exit_code,
    t.oom_killed,
    COALESCE(message_text.name COLLATE "default", t.message) AS message,
    t.first_seen_index
FROM task_event_log AS t
JOIN clusters AS c ON c.id = t.cluster_id
JOIN names AS k ON k.id = t.alloc_ref
JOIN names AS task_name ON task_name.id = t.task_ref
JOIN names AS type_name ON type_name.id = t.type_ref
LEFT JOIN names AS j ON j.id = t.job_ref
LEFT JOIN names AS message_text ON message_text.id = t.message_ref;
