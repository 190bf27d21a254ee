-- What `query allocs|deployments|evals` select by, indexed: an
-- evaluation's status and trigger, stored beside its event as the other
-- details are (0015), and each details table by status, so "which
-- allocations failed since T" reads the few rows of that status in the
-- window instead of every event of it.
--
-- One row per Evaluation event, keyed like the event; ingest fills it in
-- the same transaction as the events, from the event's JSON (NULL where
-- the payload has no such field).
CREATE TABLE evaluation_details (
    cluster_id         INTEGER NOT NULL,
    raft_index         INTEGER NOT NULL,
    position           INTEGER NOT NULL,
    status             TEXT,    -- Payload.Evaluation.Status
    triggered_by       TEXT,    -- … .TriggeredBy
    status_description TEXT,    -- … .StatusDescription
    PRIMARY KEY (cluster_id, raft_index, position)
) WITHOUT ROWID;

-- The events already archived and stored plain. An event stored compressed
-- (0016) cannot be read here and gets no row (docs/schema.md).
INSERT INTO evaluation_details
SELECT cluster_id, raft_index, position,
       json_extract(event, '$.Payload.Evaluation.Status'),
       json_extract(event, '$.Payload.Evaluation.TriggeredBy'),
       json_extract(event, '$.Payload.Evaluation.StatusDescription')
FROM event_log WHERE topic = 'Evaluation' AND dictionary_id IS NULL;

-- By status, in stream order within each: new rows land at the end of
-- their status's range.
CREATE INDEX allocation_details_by_status ON allocation_details (cluster_id, client_status, raft_index);
CREATE INDEX deployment_details_by_status ON deployment_details (cluster_id, status, raft_index);
CREATE INDEX evaluation_details_by_status ON evaluation_details (cluster_id, status, raft_index);
