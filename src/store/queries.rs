//! SQL that reads and writes alike on SQLite and PostgreSQL, outside
//! reconstructions ([`super::reconstruction::sql`]): written once with
//! `{pN}` markers and built into a [`Statement`] in the backend's
//! placeholder style. What the dialects write differently (upserts, JSON,
//! aggregates, planner hints) stays in the backend folders.

use super::statement::{Bind, Placeholders, Statement};
use super::to_i64;
use crate::archive::Gap;

/// A cluster by label, as [`super::records::ClusterRecord`] maps it.
const FIND_CLUSTER: &str =
    "SELECT id, name, checkpoint, identity, address FROM clusters WHERE name = {p1}";

/// Every cluster's label, sorted.
pub const CLUSTER_NAMES: &str = "SELECT name FROM clusters ORDER BY name";

/// A cluster's gaps, oldest first, as [`super::records::GapRecord`] maps them.
const GAPS: &str = "SELECT from_index, to_index, kind, reason, detected_at FROM gaps \
     WHERE cluster_id = {p1} ORDER BY from_index, id";

/// A cluster's events per topic, as [`super::records::TopicRecord`] maps them.
const TOPIC_COUNTS: &str = "SELECT topic, COUNT(*) AS events FROM event_log \
     WHERE cluster_id = {p1} GROUP BY topic ORDER BY topic";

/// Records a gap; one recorded already is left alone.
const INSERT_GAP: &str = "INSERT INTO gaps (cluster_id, from_index, to_index, kind, reason, detected_at) \
     VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, {p6}) ON CONFLICT DO NOTHING";

/// Names compare bytewise (BINARY on SQLite, COLLATE "C" on PostgreSQL), so
/// a prefix is the index range [prefix, prefix + the highest character);
/// each name in it is checked to be a key of the topic in the cluster.
const KEYS_WITH_PREFIX: &str = "SELECT k.name FROM names AS k WHERE k.name >= {p1} AND k.name < {p2} \
     AND EXISTS (SELECT 1 FROM event_log AS e \
                 WHERE e.key_ref = k.id AND e.cluster_id = {p3} AND e.topic = {p4}) \
     ORDER BY k.name LIMIT {p5}";

/// Looks a cluster up by label.
pub fn find_cluster(name: &str, style: Placeholders) -> Statement {
    Statement::new(FIND_CLUSTER, style, vec![name.into()])
}

/// The gaps of a cluster, oldest first.
pub fn gaps(cluster_id: i64, style: Placeholders) -> Statement {
    Statement::new(GAPS, style, vec![Bind::Int(cluster_id)])
}

/// How many events of each topic a cluster holds.
pub fn topic_counts(cluster_id: i64, style: Placeholders) -> Statement {
    Statement::new(TOPIC_COUNTS, style, vec![Bind::Int(cluster_id)])
}

/// Records `gap` of a cluster.
pub fn insert_gap(cluster_id: i64, gap: &Gap, style: Placeholders) -> Statement {
    let binds = vec![
        Bind::Int(cluster_id),
        Bind::Int(to_i64(gap.from_index)),
        Bind::Int(to_i64(gap.to_index)),
        gap.kind.as_str().into(),
        gap.reason.as_str().into(),
        Bind::Int(gap.detected_at),
    ];
    Statement::new(INSERT_GAP, style, binds)
}

/// Keys of `topic` in a cluster starting with `prefix`, sorted, at most
/// `limit`.
pub fn keys_with_prefix(
    cluster_id: i64,
    topic: &str,
    prefix: &str,
    limit: u32,
    style: Placeholders,
) -> Statement {
    let upper = format!("{prefix}{}", char::MAX);
    let binds = vec![
        prefix.into(),
        Bind::Text(upper),
        Bind::Int(cluster_id),
        topic.into(),
        Bind::Int(i64::from(limit)),
    ];
    Statement::new(KEYS_WITH_PREFIX, style, binds)
}
