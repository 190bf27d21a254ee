-- The key index of 0007 led by the topic: `(topic, key_ref, cluster_id,
-- raft_index)` instead of `(key_ref, cluster_id, topic, raft_index)`. Lookups
-- by key give the topic too, and are served as before; the events of one
-- topic (every Node event, to find a node by name) are found through it
-- rather than by reading every event of the cluster (docs/performance.md).
DROP INDEX event_log_by_key;
CREATE INDEX event_log_by_key ON event_log (topic, key_ref, cluster_id, raft_index);
