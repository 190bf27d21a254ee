-- How many allocations of each job and node were terminal, at each keyframe
-- where that number changed, so that `query snapshot --job J` or `--node N`
-- counts the terminal allocations it leaves out from the newest row at or
-- before its keyframe and the allocations changed since, not from every
-- allocation the job or node ever had (which grew with history: 0.2-2.6 s
-- at 1M events). A keyframe writes rows only for the jobs and nodes whose
-- count its events changed: rows are never copied forward.
CREATE TABLE terminal_counts (
    cluster_id BIGINT  NOT NULL REFERENCES clusters (id),
    ref_column TEXT    NOT NULL, -- job_ref | node_ref: how allocations reference it
    ref        BIGINT  NOT NULL, -- names.id of the job's or node's ID
    raft_index BIGINT  NOT NULL, -- the keyframe's index
    terminal   BIGINT  NOT NULL, -- its allocations terminal at that index
    PRIMARY KEY (cluster_id, ref_column, ref, raft_index)
);

-- Keyframes are derived data: those built before this table are dropped,
-- and opening the archive builds them again, with their counts.
DELETE FROM keyframe_objects;
DELETE FROM keyframes;
