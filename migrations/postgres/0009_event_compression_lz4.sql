-- Events are compressed with LZ4 instead of pglz where the server can.
--
-- PostgreSQL compresses an event's JSON when its row would exceed ~2 KB
-- (TOAST). With the default method, pglz, compressing was the largest
-- single cost of storing a batch (a fifth of the server's CPU time);
-- LZ4 compresses as well on these events at a fraction of the cost
-- (docs/performance.md, PostgreSQL). Only events stored from now on are
-- compressed with LZ4; those already stored stay as they are, and both
-- read the same.
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
