-- Blocks of older events: `compact --pack-older-than` (and `ingest
-- --pack-older-than`) packs the
-- events of a stretch of the stream, in stream order, into one zstd frame
-- (content checksum on) that compresses them together: Nomad repeats
-- whole objects from one event to the next, which a frame per event
-- cannot use. docs/schema.md ("Blocks of older events") has the layout.
-- A packed event keeps its `event_log` row, its place and every other
-- column; its `event` and `event_zstd` are NULL, its `dictionary_id` NULL
-- and its `block_id` names the block, which decoding finds by that id and
-- reads the event from by its raft index and position.
CREATE TABLE event_blocks (
    id          BIGSERIAL PRIMARY KEY,
    cluster_id  BIGINT NOT NULL REFERENCES clusters (id),
    first_index BIGINT NOT NULL, -- the raft indexes of its first
    last_index  BIGINT NOT NULL, -- and last event
    events      INTEGER NOT NULL, -- how many events it holds
    bytes       BYTEA  NOT NULL  -- the zstd frame
);

-- A zstd frame does not compress again: stored out of line as it is.
ALTER TABLE event_blocks ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- A prune deletes the blocks whose events are all gone, oldest first.
CREATE INDEX event_blocks_by_last ON event_blocks (cluster_id, last_index);

ALTER TABLE event_log ADD COLUMN block_id BIGINT;

-- `events` gains `block_id` as its last column; a packed row's `event` is
-- NULL there, as a compressed row's is.
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
    e.dictionary_id,
    e.block_id
FROM event_log AS e
LEFT JOIN names AS k ON k.id = e.key_ref
LEFT JOIN names AS j ON j.id = e.job_ref
LEFT JOIN names AS n ON n.id = e.node_ref
LEFT JOIN names AS v ON v.id = e.eval_ref
LEFT JOIN names AS d ON d.id = e.deployment_ref;
