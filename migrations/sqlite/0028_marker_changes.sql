-- The Job and Deployment events that change what the web timeline draws on
-- a job's lane, judged once by the writer in each batch's transaction
-- (src/store/marker_changes.rs): a Job event whose version differs from
-- the job's previous event with one, a Deployment event whose status
-- differs from the deployment's previous event, and each object's first.
-- A wide window groups its changes by lane and time bucket from
-- `marker_changes_by_time` alone (src/store/lanes/markers.rs) instead of
-- comparing each of its events with the one before, which took a week of
-- a busy cluster a quarter of a second. It replaces `event_log_markers`
-- (0023), which only that comparison read. Existing archives are filled
-- here.
CREATE TABLE marker_changes (
    cluster_id INTEGER NOT NULL,
    raft_index INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    event_at   INTEGER NOT NULL, -- Unix ms, Nomad's time (else receipt)
    topic      TEXT    NOT NULL, -- 'Job' or 'Deployment'
    namespace  TEXT    NOT NULL,
    lane_ref   INTEGER NOT NULL, -- names.id of the job whose lane it is on
    key_ref    INTEGER NOT NULL, -- names.id of the job's or deployment's ID
    version    INTEGER,          -- the job's Version, the deployment's JobVersion
    status     TEXT,             -- the deployment's Status ('' without one)
    PRIMARY KEY (cluster_id, raft_index, position)
) WITHOUT ROWID;

CREATE INDEX marker_changes_by_time
    ON marker_changes (cluster_id, event_at, topic, namespace, lane_ref);

INSERT INTO marker_changes
SELECT cluster_id, raft_index, position, event_at, topic, namespace, lane_ref, key_ref,
       version, status
FROM (SELECT e.cluster_id, e.raft_index, e.position,
             COALESCE(e.event_at, e.received_at) AS event_at, e.topic, e.namespace,
             e.key_ref AS lane_ref, e.key_ref, d.version, NULL AS status,
             CASE WHEN LAG(d.version) OVER (PARTITION BY e.cluster_id, e.namespace, e.key_ref
                                            ORDER BY e.raft_index, e.position) = d.version
                  THEN 0 ELSE 1 END AS changed
      FROM event_log AS e
      JOIN job_details AS d ON d.cluster_id = e.cluster_id AND d.raft_index = e.raft_index
        AND d.position = e.position
      WHERE e.topic = 'Job' AND d.version IS NOT NULL
      UNION ALL
      SELECT e.cluster_id, e.raft_index, e.position,
             COALESCE(e.event_at, e.received_at), e.topic, e.namespace, e.job_ref, e.key_ref,
             d.job_version, COALESCE(d.status, ''),
             CASE WHEN LAG(COALESCE(d.status, '')) OVER (PARTITION BY e.cluster_id, e.key_ref
                                                         ORDER BY e.raft_index, e.position)
                       = COALESCE(d.status, '')
                  THEN 0 ELSE 1 END
      FROM event_log AS e
      LEFT JOIN deployment_details AS d ON d.cluster_id = e.cluster_id
        AND d.raft_index = e.raft_index AND d.position = e.position
      WHERE e.topic = 'Deployment') AS u
WHERE changed = 1 AND lane_ref IS NOT NULL;

DROP INDEX event_log_markers;
