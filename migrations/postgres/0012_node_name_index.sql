-- Nodes by name: `--node NAME` (snapshots, timelines) finds the nodes ever
-- called NAME through this index instead of reading the name out of every
-- Node event of the cluster, which grew with history. Partial: only Node
-- events are indexed, so other inserts pay nothing; the expression is the
-- one `node_ids_named` asks, so the planner can use the index; with the
-- node's key it answers without reading the events.
CREATE INDEX event_log_node_name
    ON event_log (cluster_id, ((event -> 'Payload' -> 'Node' ->> 'Name')), key_ref)
    WHERE topic = 'Node';
