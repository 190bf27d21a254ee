-- Each allocation's events summed up in one row, kept by the writer in the
-- transaction of each batch (src/store/lives.rs): the web timeline reads a
-- window's allocations whose every event lies in it from here, one row
-- each, instead of grouping the window's events (seconds for a month of a
-- busy cluster). Every column is a MIN or a MAX over the allocation's
-- events, so a batch merges in whatever order history arrives. `inexact`
-- is 1 once the row may say more than the stored events do (an event
-- without Nomad's time, or events pruned): such an allocation is summed
-- from its events, as before. Existing archives are filled here.
CREATE TABLE allocation_lives (
    cluster_id     BIGINT NOT NULL,
    key_ref        BIGINT NOT NULL, -- names.id of the allocation's ID
    namespace      TEXT    NOT NULL,
    job_ref        BIGINT,
    node_ref       BIGINT,
    node_name      TEXT,
    task_group     TEXT,
    first_index    BIGINT NOT NULL, -- its first event: index, place, time
    first_position INTEGER NOT NULL,
    first_at       BIGINT NOT NULL, -- Unix ms, Nomad's time (else receipt)
    last_index     BIGINT NOT NULL,
    last_status    BIGINT NOT NULL, -- MAX(raft_index * 8 + client status number)
    live_index     BIGINT,          -- its last event with a non-terminal status
    first_terminal BIGINT,          -- its first event with a terminal status
    terminal_at    BIGINT,          -- the earliest time of those
    min_at         BIGINT,          -- the earliest and latest event_at
    max_at         BIGINT,
    inexact        BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, key_ref, namespace)
);

CREATE INDEX allocation_lives_by_last ON allocation_lives (cluster_id, last_index, first_index);

INSERT INTO allocation_lives
SELECT g.cluster_id, g.key_ref, g.namespace, g.job_ref, g.node_ref, g.node_name, g.task_group,
       g.first_index, f.position, COALESCE(f.event_at, f.received_at),
       g.last_index, g.last_status, g.live_index, g.first_terminal, g.terminal_at,
       g.min_at, g.max_at, g.inexact
FROM (SELECT e.cluster_id, e.key_ref, e.namespace,
             MIN(e.job_ref) AS job_ref, MIN(e.node_ref) AS node_ref,
             MIN(d.node_name) AS node_name, MIN(d.task_group) AS task_group,
             MIN(e.raft_index) AS first_index, MAX(e.raft_index) AS last_index,
             MAX(e.raft_index * 8 + CASE d.client_status WHEN 'pending' THEN 1
                 WHEN 'running' THEN 2 WHEN 'complete' THEN 3 WHEN 'failed' THEN 4
                 WHEN 'lost' THEN 5 WHEN 'unknown' THEN 6 ELSE 0 END) AS last_status,
             MAX(CASE WHEN d.client_status IN ('complete', 'failed', 'lost') THEN NULL
                 ELSE e.raft_index END) AS live_index,
             MIN(CASE WHEN d.client_status IN ('complete', 'failed', 'lost')
                 THEN e.raft_index END) AS first_terminal,
             MIN(CASE WHEN d.client_status IN ('complete', 'failed', 'lost')
                 THEN COALESCE(e.event_at, e.received_at) END) AS terminal_at,
             MIN(e.event_at) AS min_at, MAX(e.event_at) AS max_at,
             MAX(CASE WHEN e.event_at IS NULL THEN 1 ELSE 0 END) AS inexact
      FROM event_log AS e
      JOIN allocation_details AS d ON d.cluster_id = e.cluster_id
        AND d.raft_index = e.raft_index AND d.position = e.position
      WHERE e.topic = 'Allocation'
      GROUP BY e.cluster_id, e.key_ref, e.namespace) AS g
JOIN event_log AS f ON f.cluster_id = g.cluster_id AND f.raft_index = g.first_index
  AND f.topic = 'Allocation' AND f.namespace = g.namespace AND f.key_ref = g.key_ref;

-- PostgreSQL plans the reads of the new rows by their statistics.
ANALYZE allocation_lives;
