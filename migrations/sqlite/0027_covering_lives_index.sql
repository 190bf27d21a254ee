-- The index the web timeline reads a window's allocations by
-- (`allocation_lives_by_last`, migration 0022) holds every column it reads
-- of them, so that the tens of thousands of lives rows a wide window reads
-- are not each looked up again in the table (src/store/lanes.rs; a week of
-- the 1M-event bench archive: the statement 140 -> 100 ms in the sqlite3
-- shell). The table's key (cluster_id, key_ref, namespace) is in every
-- index entry already.
DROP INDEX allocation_lives_by_last;
CREATE INDEX allocation_lives_by_last ON allocation_lives (
    cluster_id, last_index, first_index,
    inexact, min_at, max_at, first_at, last_status, live_index, first_terminal, terminal_at,
    first_position, job_ref, node_ref, node_name, task_group
);
