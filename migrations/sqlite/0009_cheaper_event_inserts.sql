-- Nothing changes in SQLite; kept so both folders hold the same versions.
-- migrations/postgres/0009 makes PostgreSQL compress events with LZ4
-- instead of pglz (SQLite does not compress stored values) and replaces
-- event_log's per-event foreign key check to clusters there. SQLite's
-- foreign key (DEFERRABLE INITIALLY DEFERRED, 0007) is left as it is.
SELECT 1;
