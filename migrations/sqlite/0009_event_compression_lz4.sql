-- Nothing changes in SQLite: migrations/postgres/0009 makes PostgreSQL
-- compress events with LZ4 instead of pglz, and SQLite does not compress
-- stored values at all. Kept so both folders hold the same versions.
SELECT 1;
