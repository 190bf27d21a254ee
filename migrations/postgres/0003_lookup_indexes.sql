-- Lookups by object for the query commands: an object's own events by
-- (topic, key), and the events that reference a job, node, evaluation or
-- deployment. Partial indexes: most events reference only some. There is no
-- index on alloc_id: only Allocation events carry it, and there it equals
-- the key, so events_by_key serves it (an index of its own cost 30 % of the
-- ingest rate; docs/performance.md).
CREATE INDEX events_by_key ON events (cluster_id, topic, key, raft_index);
CREATE INDEX events_by_job ON events (cluster_id, job_id, raft_index) WHERE job_id IS NOT NULL;
CREATE INDEX events_by_node ON events (cluster_id, node_id, raft_index) WHERE node_id IS NOT NULL;
CREATE INDEX events_by_eval ON events (cluster_id, eval_id, raft_index) WHERE eval_id IS NOT NULL;
CREATE INDEX events_by_deployment ON events (cluster_id, deployment_id, raft_index) WHERE deployment_id IS NOT NULL;
