-- Replay and serve read a cluster's events in stream order (index, then
-- position within the frame), page by page from any index.
CREATE INDEX events_stream_order ON events (cluster_id, raft_index, position);
