-- Evaluation events stored compressed (0016) before 0019 got no
-- `evaluation_details` row there: 0019's SQL cannot decode them. The
-- archive is marked here when it holds any; the first writer of this
-- version decodes them and fills their rows (src/store/details_fill.rs),
-- then clears the mark. Reads refuse a marked archive until then.
CREATE TABLE pending_details (
    topic TEXT PRIMARY KEY
);

INSERT INTO pending_details (topic)
SELECT 'Evaluation' WHERE EXISTS (
    SELECT 1 FROM event_log AS e
    WHERE e.topic = 'Evaluation' AND e.dictionary_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM evaluation_details AS d
                      WHERE d.cluster_id = e.cluster_id AND d.raft_index = e.raft_index
                        AND d.position = e.position)
);
