-- Retention: each prune of a cluster's history is recorded, so that every
-- answer reaching before the cut can say that history there was pruned
-- rather than never happened. A prune deletes the cluster's events before
-- `before_index`, except the latest event of each object present then,
-- which the keyframe at `before_index - 1` lists and later snapshots need
-- (docs/schema.md, "Retention").
CREATE TABLE prunes (
    id           INTEGER PRIMARY KEY,
    cluster_id   INTEGER NOT NULL REFERENCES clusters (id),
    before_index INTEGER NOT NULL, -- the first index kept: history before it is pruned
    before_time  INTEGER,          -- the cut by Nomad's clock (Unix ms), when known
    started_at   INTEGER NOT NULL, -- Unix milliseconds
    finished_at  INTEGER,          -- NULL while (or if) the prune did not finish
    events       INTEGER NOT NULL DEFAULT 0 -- events deleted
);
CREATE INDEX prunes_by_cluster ON prunes (cluster_id, before_index);
