-- Per keyframe, how many allocations of each job and node it holds were
-- terminal then, so that `query snapshot --job J` or `--node N` counts the
-- terminal allocations it leaves out from the keyframe and the events after
-- it, not from every allocation the job or node ever had (which grew with
-- history: 0.2-2.6 s at 1M events). A job or node gets its row in the first
-- keyframe that holds it, counted from its history once; each later keyframe
-- carries it forward. Keyframes built before this migration have no rows,
-- and a snapshot from one of them counts from history as before.
CREATE TABLE keyframe_terminal (
    keyframe_id INTEGER NOT NULL REFERENCES keyframes (id),
    ref_column  TEXT    NOT NULL, -- job_ref | node_ref
    ref         INTEGER NOT NULL, -- names.id of the job's or node's ID
    terminal    INTEGER NOT NULL, -- its allocations terminal at the keyframe
    PRIMARY KEY (keyframe_id, ref_column, ref)
) WITHOUT ROWID;
