//! SQL that takes an archive back to the schema before a migration, so
//! that running `migrate` takes it through that migration as an archive of
//! the older version would be (on both backends).

/// Undoes migration 0025: `allocation_details` holds its texts again,
/// `allocation_transitions` is a placeholder the migration replaces, and
/// 0025 is recorded as not applied.
pub const BEFORE_ALLOCATION_TEXTS: &[&str] = &[
    "CREATE TABLE texts_undone AS \
       SELECT a.cluster_id, a.raft_index, a.position, g.name AS task_group, \
         n.name AS node_name, a.desired_status, a.client_status, \
         COALESCE(d.name, a.client_description) AS client_description \
       FROM allocation_details AS a \
       LEFT JOIN names AS g ON g.id = a.task_group_ref \
       LEFT JOIN names AS n ON n.id = a.node_name_ref \
       LEFT JOIN names AS d ON d.id = a.client_description_ref",
    "DROP VIEW allocation_transitions",
    "DROP TABLE allocation_details",
    "ALTER TABLE texts_undone RENAME TO allocation_details",
    "CREATE VIEW allocation_transitions AS SELECT 1 AS undone",
    "DELETE FROM _sqlx_migrations WHERE version = 25",
];
