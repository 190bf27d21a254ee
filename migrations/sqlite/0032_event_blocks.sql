-- Blocks of older events: `compact --pack-older-than` (and `ingest
-- --pack-older-than`) packs the
-- events of a stretch of the stream, in stream order, into one zstd frame
-- (content checksum on) that compresses them together: Nomad repeats
-- whole objects from one event to the next, which a frame per event
-- cannot use. docs/schema.md ("Blocks of older events") has the layout.
-- A packed event keeps its `event_log` row, its place and every other
-- column; its `event` is empty, its `dictionary_id` NULL and its
-- `block_id` names the block, which decoding finds by that id and reads
-- the event from by its raft index and position.
-- AUTOINCREMENT: an id is never handed out again after its block was
-- pruned, so a reader that cached the old block cannot take it for a new
-- one.
CREATE TABLE event_blocks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  INTEGER NOT NULL REFERENCES clusters (id),
    first_index INTEGER NOT NULL, -- the raft indexes of its first
    last_index  INTEGER NOT NULL, -- and last event
    events      INTEGER NOT NULL, -- how many events it holds
    bytes       BLOB    NOT NULL  -- the zstd frame
);

-- A prune deletes the blocks whose events are all gone, oldest first.
CREATE INDEX event_blocks_by_last ON event_blocks (cluster_id, last_index);

ALTER TABLE event_log ADD COLUMN block_id INTEGER;

-- `events` shows the JSON of plain rows only, as since 0016: a packed
-- row's `event` is NULL there too, and its `block_id` is the last column.
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
    CASE WHEN e.dictionary_id IS NULL AND e.block_id IS NULL THEN e.event END AS event,
    e.event_at,
    e.time_source,
    e.dictionary_id,
    e.block_id
FROM event_log AS e
LEFT JOIN names AS k ON k.id = e.key_ref
LEFT JOIN names AS j ON j.id = e.job_ref
LEFT JOIN names AS n ON n.id = e.node_ref
LEFT JOIN names AS v ON v.id = e.eval_ref
LEFT JOIN names AS d ON d.id = e.deployment_ref;
