-- The key index ends with the event's position in its frame, so an object's
-- events come out of it in stream order (`ORDER BY raft_index, position`)
-- without a sort. Before, the database read every event of the object and
-- sorted them even for the first one alone: a node's first event at 10M
-- events read all 11,099 of its Node events (docs/performance.md).
DROP INDEX event_log_by_key;
CREATE INDEX event_log_by_key ON event_log (topic, key_ref, cluster_id, raft_index, position);
