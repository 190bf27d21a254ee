-- Compressed events: once enough events of a topic have arrived, each new
-- event of that topic is stored as a zstd frame (level 3, content checksum
-- on) compressed with a dictionary trained on that topic's events of the
-- same cluster. Such a row has `event` NULL, the frame in `event_zstd` and
-- its dictionary in `dictionary_id`; a row with `dictionary_id` NULL holds
-- the event's JSON in `event`, exactly as before. Dropping NOT NULL and
-- adding nullable columns rewrites nothing. docs/schema.md has the details.

-- One row per trained dictionary. nomad-chronicle never updates or deletes
-- one: an event names its dictionary by `id` for good, and a retrained
-- topic gets a new row. Like the events' cluster since 0009, no foreign key
-- checks each event's dictionary.
CREATE TABLE dictionaries (
    id                 BIGSERIAL PRIMARY KEY,
    cluster_id         BIGINT NOT NULL REFERENCES clusters (id),
    topic              TEXT NOT NULL,
    -- The raft indexes of the first and last event it was trained on.
    trained_from_index BIGINT NOT NULL,
    trained_to_index   BIGINT NOT NULL,
    trained_at         BIGINT NOT NULL, -- Unix ms
    -- JSON bytes over compressed bytes of the events held out of its
    -- training, compressed with it.
    ratio              DOUBLE PRECISION NOT NULL,
    -- The dictionary as zstd reads it (its zstd ID is in its header).
    bytes              BYTEA NOT NULL
);

-- The newest dictionary of each topic of a cluster, which the writer uses.
CREATE INDEX dictionaries_by_topic ON dictionaries (cluster_id, topic, id);

ALTER TABLE event_log ALTER COLUMN event DROP NOT NULL;
-- Already compressed: PostgreSQL would only try LZ4 again and give up.
ALTER TABLE event_log ADD COLUMN event_zstd BYTEA;
ALTER TABLE event_log ALTER COLUMN event_zstd SET STORAGE EXTERNAL;
ALTER TABLE event_log ADD COLUMN dictionary_id BIGINT;

-- `events` keeps its columns: `event` is NULL for a compressed row
-- (`nomad-chronicle query events --json` and `replay` decode it); its
-- dictionary is the last column.
CREATE OR REPLACE VIEW events AS
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
    e.time_source,
    e.dictionary_id
FROM event_log AS e
LEFT JOIN names AS k ON k.id = e.key_ref
LEFT JOIN names AS j ON j.id = e.job_ref
LEFT JOIN names AS n ON n.id = e.node_ref
LEFT JOIN names AS v ON v.id = e.eval_ref
LEFT JOIN names AS d ON d.id = e.deployment_ref;
