-- The marker changes (0028) summed up per lane and slot of 2^22 ms (about
-- 70 minutes, counted from the Unix epoch): how many a lane's job or its
-- deployments had in it, and the last of them (by time, then stream
-- order). A window whose time buckets are a slot or longer takes the
-- slots that lie wholly inside it from here, and reads only the changes
-- of the slots at its ends (src/store/lanes/markers.rs): the whole
-- history of the 1M-event bench archive groups 17,000 slots instead of
-- 102,000 changes. `least_index` and `most_index` bound the raft indexes
-- of the slot's changes (no change lies outside them; deleting one does
-- not narrow them), so a window whose stretch of the stream might leave
-- one out reads that slot's changes too.
--
-- Kept by the triggers below, in the transaction of every statement that
-- changes `marker_changes` (the writer's judging, a prune, a re-dating),
-- so no writer changes. They run once a statement, over the rows it
-- changed (row by row, a prune of 26,000 changes took 2.7 s, and a
-- transaction changing one slot thousands of times left each of its
-- lookups walking as many dead versions of the slot's row). Existing
-- archives are filled here.
CREATE TABLE marker_slots (
    cluster_id    BIGINT  NOT NULL,
    slot          BIGINT  NOT NULL, -- event_at >> 22
    lane_ref      BIGINT  NOT NULL,
    topic         TEXT    NOT NULL,
    namespace     TEXT    NOT NULL,
    changes       BIGINT  NOT NULL, -- at least 1: a slot without is deleted
    least_index   BIGINT  NOT NULL,
    most_index    BIGINT  NOT NULL,
    last_at       BIGINT  NOT NULL, -- the last change's event_at,
    last_index    BIGINT  NOT NULL, -- raft_index
    last_position INTEGER NOT NULL, -- and position
    PRIMARY KEY (cluster_id, slot, lane_ref, topic, namespace)
);

INSERT INTO marker_slots
SELECT DISTINCT ON (cluster_id, event_at >> 22, lane_ref, topic, namespace)
       cluster_id, event_at >> 22, lane_ref, topic, namespace,
       COUNT(*) OVER w, MIN(raft_index) OVER w, MAX(raft_index) OVER w,
       event_at, raft_index, position
FROM marker_changes
WINDOW w AS (PARTITION BY cluster_id, event_at >> 22, lane_ref, topic, namespace)
ORDER BY cluster_id, event_at >> 22, lane_ref, topic, namespace,
         event_at DESC, raft_index DESC, position DESC;

CREATE FUNCTION marker_slots_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE marker_slots AS s SET changes = s.changes - o.changes
        FROM (SELECT cluster_id, event_at >> 22 AS slot, lane_ref, topic, namespace,
                     COUNT(*) AS changes
              FROM old_rows GROUP BY 1, 2, 3, 4, 5) AS o
        WHERE s.cluster_id = o.cluster_id AND s.slot = o.slot AND s.lane_ref = o.lane_ref
          AND s.topic = o.topic AND s.namespace = o.namespace;
        DELETE FROM marker_slots AS s USING old_rows AS o
        WHERE s.cluster_id = o.cluster_id AND s.slot = o.event_at >> 22
          AND s.lane_ref = o.lane_ref AND s.topic = o.topic AND s.namespace = o.namespace
          AND s.changes <= 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO marker_slots AS s
        SELECT DISTINCT ON (cluster_id, event_at >> 22, lane_ref, topic, namespace)
               cluster_id, event_at >> 22, lane_ref, topic, namespace,
               COUNT(*) OVER w, MIN(raft_index) OVER w, MAX(raft_index) OVER w,
               event_at, raft_index, position
        FROM new_rows
        WINDOW w AS (PARTITION BY cluster_id, event_at >> 22, lane_ref, topic, namespace)
        ORDER BY cluster_id, event_at >> 22, lane_ref, topic, namespace,
                 event_at DESC, raft_index DESC, position DESC
        ON CONFLICT (cluster_id, slot, lane_ref, topic, namespace) DO UPDATE SET
            changes = s.changes + excluded.changes,
            least_index = LEAST(s.least_index, excluded.least_index),
            most_index = GREATEST(s.most_index, excluded.most_index),
            last_at = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                 > (s.last_at, s.last_index, s.last_position)
                 THEN excluded.last_at ELSE s.last_at END,
            last_index = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                 > (s.last_at, s.last_index, s.last_position)
                 THEN excluded.last_index ELSE s.last_index END,
            last_position = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                 > (s.last_at, s.last_index, s.last_position)
                 THEN excluded.last_position ELSE s.last_position END;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        -- The last change of each slot that lost its last, from what the
        -- table holds after the statement (the insert above compared a
        -- moved row's new place against the old place of those moved).
        UPDATE marker_slots AS s
        SET last_at = m.event_at, last_index = m.raft_index, last_position = m.position
        FROM old_rows AS o
        CROSS JOIN LATERAL (
            SELECT m.event_at, m.raft_index, m.position
            FROM marker_changes AS m
            WHERE m.cluster_id = o.cluster_id
              AND m.event_at >= (o.event_at >> 22) << 22
              AND m.event_at < ((o.event_at >> 22) + 1) << 22
              AND m.topic = o.topic AND m.namespace = o.namespace AND m.lane_ref = o.lane_ref
            ORDER BY m.event_at DESC, m.raft_index DESC, m.position DESC LIMIT 1) AS m
        WHERE s.cluster_id = o.cluster_id AND s.slot = o.event_at >> 22
          AND s.lane_ref = o.lane_ref AND s.topic = o.topic AND s.namespace = o.namespace
          AND s.last_index = o.raft_index AND s.last_position = o.position;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER marker_slots_inserted AFTER INSERT ON marker_changes
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marker_slots_keep();
CREATE TRIGGER marker_slots_deleted AFTER DELETE ON marker_changes
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marker_slots_keep();
CREATE TRIGGER marker_slots_updated AFTER UPDATE ON marker_changes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marker_slots_keep();
