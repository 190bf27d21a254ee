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
-- so no writer changes. Existing archives are filled here.
CREATE TABLE marker_slots (
    cluster_id    INTEGER NOT NULL,
    slot          INTEGER NOT NULL, -- event_at >> 22
    lane_ref      INTEGER NOT NULL,
    topic         TEXT    NOT NULL,
    namespace     TEXT    NOT NULL,
    changes       INTEGER NOT NULL, -- at least 1: a slot without is deleted
    least_index   INTEGER NOT NULL,
    most_index    INTEGER NOT NULL,
    last_at       INTEGER NOT NULL, -- the last change's event_at,
    last_index    INTEGER NOT NULL, -- raft_index
    last_position INTEGER NOT NULL, -- and position
    PRIMARY KEY (cluster_id, slot, lane_ref, topic, namespace)
) WITHOUT ROWID;

INSERT INTO marker_slots
SELECT cluster_id, event_at >> 22, lane_ref, topic, namespace, COUNT(*), MIN(raft_index),
       MAX(raft_index), 0, 0, 0
FROM marker_changes
GROUP BY cluster_id, event_at >> 22, lane_ref, topic, namespace;

UPDATE marker_slots SET (last_at, last_index, last_position) = (
    SELECT m.event_at, m.raft_index, m.position
    FROM marker_changes AS m INDEXED BY marker_changes_by_time
    WHERE m.cluster_id = marker_slots.cluster_id
      AND m.event_at >= marker_slots.slot << 22 AND m.event_at < (marker_slots.slot + 1) << 22
      AND m.topic = marker_slots.topic AND m.namespace = marker_slots.namespace
      AND m.lane_ref = marker_slots.lane_ref
    ORDER BY m.event_at DESC, m.raft_index DESC, m.position DESC LIMIT 1);

CREATE TRIGGER marker_slots_insert AFTER INSERT ON marker_changes BEGIN
    INSERT INTO marker_slots
    VALUES (NEW.cluster_id, NEW.event_at >> 22, NEW.lane_ref, NEW.topic, NEW.namespace, 1,
            NEW.raft_index, NEW.raft_index, NEW.event_at, NEW.raft_index, NEW.position)
    ON CONFLICT (cluster_id, slot, lane_ref, topic, namespace) DO UPDATE SET
        changes = changes + 1,
        least_index = MIN(least_index, excluded.least_index),
        most_index = MAX(most_index, excluded.most_index),
        last_at = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                            > (last_at, last_index, last_position)
                       THEN excluded.last_at ELSE last_at END,
        last_index = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                               > (last_at, last_index, last_position)
                          THEN excluded.last_index ELSE last_index END,
        last_position = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                                  > (last_at, last_index, last_position)
                             THEN excluded.last_position ELSE last_position END;
END;

CREATE TRIGGER marker_slots_delete AFTER DELETE ON marker_changes BEGIN
    UPDATE marker_slots SET changes = changes - 1
    WHERE cluster_id = OLD.cluster_id AND slot = OLD.event_at >> 22
      AND lane_ref = OLD.lane_ref AND topic = OLD.topic AND namespace = OLD.namespace;
    DELETE FROM marker_slots
    WHERE cluster_id = OLD.cluster_id AND slot = OLD.event_at >> 22
      AND lane_ref = OLD.lane_ref AND topic = OLD.topic AND namespace = OLD.namespace
      AND changes = 0;
    UPDATE marker_slots SET (last_at, last_index, last_position) = (
        SELECT m.event_at, m.raft_index, m.position
        FROM marker_changes AS m INDEXED BY marker_changes_by_time
        WHERE m.cluster_id = OLD.cluster_id
          AND m.event_at >= (OLD.event_at >> 22) << 22
          AND m.event_at < ((OLD.event_at >> 22) + 1) << 22
          AND m.topic = OLD.topic AND m.namespace = OLD.namespace
          AND m.lane_ref = OLD.lane_ref
        ORDER BY m.event_at DESC, m.raft_index DESC, m.position DESC LIMIT 1)
    WHERE cluster_id = OLD.cluster_id AND slot = OLD.event_at >> 22
      AND lane_ref = OLD.lane_ref AND topic = OLD.topic AND namespace = OLD.namespace
      AND last_index = OLD.raft_index AND last_position = OLD.position;
END;

-- A change re-dated (or otherwise changed) leaves its old slot and joins
-- its new one: the two triggers above, in one.
CREATE TRIGGER marker_slots_update AFTER UPDATE ON marker_changes BEGIN
    UPDATE marker_slots SET changes = changes - 1
    WHERE cluster_id = OLD.cluster_id AND slot = OLD.event_at >> 22
      AND lane_ref = OLD.lane_ref AND topic = OLD.topic AND namespace = OLD.namespace;
    DELETE FROM marker_slots
    WHERE cluster_id = OLD.cluster_id AND slot = OLD.event_at >> 22
      AND lane_ref = OLD.lane_ref AND topic = OLD.topic AND namespace = OLD.namespace
      AND changes = 0;
    UPDATE marker_slots SET (last_at, last_index, last_position) = (
        SELECT m.event_at, m.raft_index, m.position
        FROM marker_changes AS m INDEXED BY marker_changes_by_time
        WHERE m.cluster_id = OLD.cluster_id
          AND m.event_at >= (OLD.event_at >> 22) << 22
          AND m.event_at < ((OLD.event_at >> 22) + 1) << 22
          AND m.topic = OLD.topic AND m.namespace = OLD.namespace
          AND m.lane_ref = OLD.lane_ref
        ORDER BY m.event_at DESC, m.raft_index DESC, m.position DESC LIMIT 1)
    WHERE cluster_id = OLD.cluster_id AND slot = OLD.event_at >> 22
      AND lane_ref = OLD.lane_ref AND topic = OLD.topic AND namespace = OLD.namespace
      AND last_index = OLD.raft_index AND last_position = OLD.position;
    INSERT INTO marker_slots
    VALUES (NEW.cluster_id, NEW.event_at >> 22, NEW.lane_ref, NEW.topic, NEW.namespace, 1,
            NEW.raft_index, NEW.raft_index, NEW.event_at, NEW.raft_index, NEW.position)
    ON CONFLICT (cluster_id, slot, lane_ref, topic, namespace) DO UPDATE SET
        changes = changes + 1,
        least_index = MIN(least_index, excluded.least_index),
        most_index = MAX(most_index, excluded.most_index),
        last_at = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                            > (last_at, last_index, last_position)
                       THEN excluded.last_at ELSE last_at END,
        last_index = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                               > (last_at, last_index, last_position)
                          THEN excluded.last_index ELSE last_index END,
        last_position = CASE WHEN (excluded.last_at, excluded.last_index, excluded.last_position)
                                  > (last_at, last_index, last_position)
                             THEN excluded.last_position ELSE last_position END;
END;
