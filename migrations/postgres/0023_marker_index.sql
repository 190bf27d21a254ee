-- The Job and Deployment events the web timeline draws as markers, read
-- from an index that holds what it needs of them (src/store/lanes/
-- markers.rs): a wide window thins its version and deployment changes
-- without reading each event's row.
CREATE INDEX event_log_markers
    ON event_log (cluster_id, raft_index, position)
    INCLUDE (topic, namespace, key_ref, job_ref, event_at)
    WHERE topic IN ('Job', 'Deployment');
