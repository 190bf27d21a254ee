-- Events by the time they were received, per cluster, with their raft
-- index: `query events --since / --until` finds the window's first and last
-- raft index here and reads just the events between them, and `status`
-- finds the first and last receipt with two lookups, where both read every
-- event of the cluster before (docs/performance.md). Frames are received in
-- order, so new entries land at the end of the index.
CREATE INDEX event_log_by_received ON event_log (cluster_id, received_at, raft_index);
