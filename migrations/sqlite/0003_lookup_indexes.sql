-- Lookups by object for the query commands: an object's own events by
-- (topic, key), and the events that reference a job, allocation, node,
-- evaluation or deployment. Partial indexes: most events reference only some.
CREATE INDEX events_by_key ON events (cluster_id, topic, key, raft_index);
CREATE INDEX events_by_job ON events (cluster_id, job_id, raft_index) WHERE job_id IS NOT NULL;
CREATE INDEX events_by_alloc ON events (cluster_id, alloc_id, raft_index) WHERE alloc_id IS NOT NULL;
CREATE INDEX events_by_node ON events (cluster_id, node_id, raft_index) WHERE node_id IS NOT NULL;
CREATE INDEX events_by_eval ON events (cluster_id, eval_id, raft_index) WHERE eval_id IS NOT NULL;
CREATE INDEX events_by_deployment ON events (cluster_id, deployment_id, raft_index) WHERE deployment_id IS NOT NULL;
