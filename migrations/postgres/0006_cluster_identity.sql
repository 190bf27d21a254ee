-- The identity of the Nomad cluster whose history a label holds (its region
-- and its servers' node IDs, as JSON text), written in the same transaction
-- as the checkpoint. Ingest compares it with the agent it connects to, so a
-- different cluster answering at the same address is refused instead of
-- mixed in. NULL until ingest could read it. The same logical change as
-- migrations/sqlite/0006; docs/schema.md has the details.

ALTER TABLE clusters ADD COLUMN identity TEXT;
