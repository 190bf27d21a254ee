-- Task events refer to their task's name, their type and their message in
-- `names`, as events refer to IDs: a long history repeats a few dozen task
-- names, a handful of types and some thousands of messages over millions of
-- task events, and the texts were over half of each row and of its job
-- index (docs/performance.md, "Texts kept once in `names`"). A message
-- over 512 bytes stays in the row (src/store/detail_texts.rs). The view
-- `task_events` keeps its names and columns.
INSERT OR IGNORE INTO names (name)
SELECT task FROM task_event_log
UNION SELECT event_type FROM task_event_log
UNION SELECT message FROM task_event_log
    WHERE message IS NOT NULL AND length(CAST(message AS BLOB)) <= 512;

CREATE TABLE task_event_texts (
    alloc_ref           INTEGER NOT NULL, -- names.id of the allocation's ID
    cluster_id          INTEGER NOT NULL,
    task_ref            INTEGER NOT NULL, -- names.id of the task's name
    time_ns             INTEGER NOT NULL, -- the task event's Time (Unix ns)
    type_ref            INTEGER NOT NULL, -- names.id of its Type
    namespace           TEXT    NOT NULL, -- the allocation's
    job_ref             INTEGER,          -- names.id of the allocation's job
    exit_code           INTEGER,          -- … ExitCode
    oom_killed          INTEGER NOT NULL, -- Details.oom_killed, or "OOM Killed" in a message (0/1)
    message_ref         INTEGER,          -- names.id of its DisplayMessage
    message             TEXT,             -- … or the message itself, when over 512 bytes
    first_seen_index    INTEGER NOT NULL, -- the allocation event that first carried it
    first_seen_position INTEGER NOT NULL,
    PRIMARY KEY (alloc_ref, cluster_id, task_ref, time_ns, type_ref)
) WITHOUT ROWID;

INSERT INTO task_event_texts
SELECT t.alloc_ref, t.cluster_id, task_name.id, t.time_ns, type_name.id, t.namespace, t.job_ref,
       t.exit_code, t.oom_killed, message_text.id,
       CASE WHEN length(CAST(t.message AS BLOB)) > 512 THEN t.message END,
       t.first_seen_index, t.first_seen_position
FROM task_event_log AS t
JOIN names AS task_name ON task_name.name = t.task
JOIN names AS type_name ON type_name.name = t.event_type
LEFT JOIN names AS message_text ON message_text.name = t.message
    AND length(CAST(t.message AS BLOB)) <= 512;

DROP VIEW task_events;
DROP TABLE task_event_log;
ALTER TABLE task_event_texts RENAME TO task_event_log;
CREATE INDEX task_event_log_by_job ON task_event_log (job_ref, cluster_id) WHERE job_ref IS NOT NULL;

CREATE VIEW task_events AS
SELECT
    c.name AS cluster,
    t.namespace,
    j.name AS job_id,
    k.name AS alloc_id,
    task_name.name AS task,
    type_name.name AS event_type,
    t.time_ns,
    datetime(t.time_ns / 1000000000, 'unixepoch') AS event_time,
    t.exit_code,
    t.oom_killed,
    COALESCE(message_text.name, t.message) AS message,
    t.first_seen_index
FROM task_event_log AS t
JOIN clusters AS c ON c.id = t.cluster_id
JOIN names AS k ON k.id = t.alloc_ref
JOIN names AS task_name ON task_name.id = t.task_ref
JOIN names AS type_name ON type_name.id = t.type_ref
LEFT JOIN names AS j ON j.id = t.job_ref
LEFT JOIN names AS message_text ON message_text.id = t.message_ref;
