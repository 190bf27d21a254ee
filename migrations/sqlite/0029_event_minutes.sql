-- The stretch of the stream each minute of the events' time holds: for
-- each cluster and minute (Unix ms divided by 60,000, rounded down) with
-- dated events, the lowest and highest raft index among them. A time
-- window's stretch of the stream (`Store::time_span`) is read from the
-- whole minutes inside it and from the index by time only at its two ends
-- (src/store/minutes.rs), rather than by reading the index by time through
-- every event of the window (a week of a busy cluster: 300,000 entries).
-- The writer keeps it in each batch's transaction, a prune recomputes the
-- minutes it takes events from, the dating backfill adds the events it
-- dates. Existing archives are filled here.
CREATE TABLE event_minutes (
    cluster_id  INTEGER NOT NULL,
    minute      INTEGER NOT NULL, -- event_at / 60000, rounded down
    first_index INTEGER NOT NULL, -- the lowest raft index dated in it
    last_index  INTEGER NOT NULL, -- the highest
    PRIMARY KEY (cluster_id, minute)
) WITHOUT ROWID;

INSERT INTO event_minutes (cluster_id, minute, first_index, last_index)
SELECT cluster_id, (event_at - ((event_at % 60000) + 60000) % 60000) / 60000,
       MIN(raft_index), MAX(raft_index)
FROM event_log INDEXED BY event_log_by_time
WHERE event_at IS NOT NULL
GROUP BY 1, 2;
