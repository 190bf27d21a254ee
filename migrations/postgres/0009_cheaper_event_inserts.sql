-- Storing a batch of events costs the server less (docs/performance.md,
-- PostgreSQL): events are compressed with LZ4 instead of pglz where the
-- server can, and `event_log` no longer checks its cluster row by foreign
-- key, once per event. The same guarantee is kept by other means, below.

-- 1. LZ4. PostgreSQL compresses an event's JSON when its row would exceed
-- ~2 KB (TOAST). With the default method, pglz, compressing was the largest
-- single cost of storing a batch (a fifth of the server's CPU time); LZ4
-- compresses these events as well at a fraction of the cost. Only events
-- stored from now on are compressed with LZ4; those already stored stay as
-- they are, and both read the same.
--
-- `SET COMPRESSION` exists since PostgreSQL 14, and LZ4 only on servers
-- built with it (`--with-lz4`, as the PGDG and distribution packages are).
-- Elsewhere (PostgreSQL 12 and 13 are supported too) this does nothing and
-- events stay compressed with pglz.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE event_log ALTER COLUMN event SET COMPRESSION lz4';
    END IF;
EXCEPTION
    -- "compression method lz4 not supported": built without LZ4.
    WHEN feature_not_supported THEN
        NULL;
END
$$;

-- 2. The cluster of every event. The foreign key ran a query and locked
-- the cluster's row once per inserted event (a sixth of the server's CPU
-- time for a batch). What it guaranteed still holds:
-- - an event names a cluster that exists: the writer stores a batch for
--   one cluster, and in the same transaction updates that cluster's
--   checkpoint row, failing the batch if the row is not there (and
--   holding the row locked until the batch commits);
-- - a cluster with events cannot be deleted: the trigger below refuses it,
--   with the error the foreign key gave.
-- gaps and reconstructions keep their foreign keys (a few rows per gap).
ALTER TABLE event_log DROP CONSTRAINT event_log_cluster_id_fkey;

CREATE FUNCTION clusters_keep_archived() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM event_log WHERE cluster_id = OLD.id) THEN
        RAISE EXCEPTION 'update or delete on table "clusters" violates foreign key constraint on table "event_log"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "event_log".', OLD.id);
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER clusters_keep_archived BEFORE DELETE ON clusters
    FOR EACH ROW EXECUTE FUNCTION clusters_keep_archived();
