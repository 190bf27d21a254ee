-- Migration 0027 gives SQLite's `allocation_lives_by_last` every column the
-- web timeline reads of a window's allocations, so that those rows are read
-- from the index alone. PostgreSQL keeps the narrow index: with the same
-- columns as `INCLUDE`, a week's statement on the 1.2M-event bench archive
-- went from 101-106 to 89-93 ms, but the archive under repeated ingest and
-- prune grew 24 % where it grew under 20 % before (tests/it/retention.rs):
-- every allocation event writes a new entry for its lives row, and wide
-- entries left more index pages behind between vacuums. This migration
-- only says so where a DBA will look.
COMMENT ON INDEX allocation_lives_by_last IS
    'The lives rows a timeline window reads (src/store/lanes.rs). Narrow on PostgreSQL: see migrations/postgres/0027_covering_lives_index.sql.';
