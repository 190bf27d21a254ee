-- Compressed events: once enough events of a topic have arrived, each new
-- event of that topic is stored as a zstd frame (level 3, content checksum
-- on) compressed with a dictionary trained on that topic's events of the
-- same cluster. `event_log.event` then holds the frame as a BLOB (SQLite's
-- NOT NULL accepts one, so the multi-GB table needs no rebuild) and
-- `event_log.dictionary_id` names the dictionary; NULL means the row is the
-- event's JSON as text, exactly as before. docs/schema.md has the details.

-- One row per trained dictionary. nomad-chronicle never updates or deletes
-- one: an event names its dictionary by `id` for good, and a retrained
-- topic gets a new row.
CREATE TABLE dictionaries (
    id                 INTEGER PRIMARY KEY,
    cluster_id         INTEGER NOT NULL REFERENCES clusters (id),
    topic              TEXT NOT NULL,
    -- The raft indexes of the first and last event it was trained on.
    trained_from_index INTEGER NOT NULL,
    trained_to_index   INTEGER NOT NULL,
    trained_at         INTEGER NOT NULL, -- Unix ms
    -- JSON bytes over compressed bytes of the events held out of its
    -- training, compressed with it.
    ratio              REAL NOT NULL,
    -- The dictionary as zstd reads it (its zstd ID is in its header).
    bytes              BLOB NOT NULL
);

-- The newest dictionary of each topic of a cluster, which the writer uses.
CREATE INDEX dictionaries_by_topic ON dictionaries (cluster_id, topic, id);

ALTER TABLE event_log ADD COLUMN dictionary_id INTEGER;

-- `events` shows the JSON of plain rows only: a compressed row's `event` is
-- NULL there (`nomad-chronicle query events --json` and `replay` decode
-- it), and its `dictionary_id` is the last column.
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
    CASE WHEN e.dictionary_id IS NULL THEN e.event END AS event,
    e.event_at,
    e.time_source,
    e.dictionary_id
FROM event_log AS e
LEFT JOIN names AS k ON k.id = e.key_ref
LEFT JOIN names AS j ON j.id = e.job_ref
LEFT JOIN names AS n ON n.id = e.node_ref
LEFT JOIN names AS v ON v.id = e.eval_ref
LEFT JOIN names AS d ON d.id = e.deployment_ref;
