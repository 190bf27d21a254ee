//! What `status` reports of a PostgreSQL archive: each cluster with the
//! extent of its events, its topics and gaps, and the database's size.

use super::{PgStore, STYLE};
use crate::archive::{Gap, Prune, StatusReport, TopicCount};
use crate::store::prune;
use crate::store::records::{GapRecord, PruneRecord, StatusRecord, TopicRecord, cluster_status};
use crate::store::{Store, StoreError, queries, to_u64};

/// Every cluster with the extent of its events (indexes, Nomad's times, the
/// receipt of the first and last event in stream order). Each aggregate in a
/// subquery of its own: PostgreSQL answers each with one index lookup, where
/// together they read every event. The count is the topics' sum.
const CLUSTERS: &str = "SELECT c.id, c.name, c.address, c.checkpoint, c.malformed_lines, \
       (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = c.id) AS first_index, \
       (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = c.id) AS last_index, \
       (SELECT MIN(event_at) FROM event_log WHERE cluster_id = c.id AND time_source = 'nomad') AS first_event_at, \
       (SELECT MAX(event_at) FROM event_log WHERE cluster_id = c.id AND time_source = 'nomad') AS last_event_at, \
       (SELECT received_at FROM event_log WHERE cluster_id = c.id \
          ORDER BY raft_index, position LIMIT 1) AS first_received_at, \
       (SELECT received_at FROM event_log WHERE cluster_id = c.id \
          ORDER BY raft_index DESC, position DESC LIMIT 1) AS last_received_at, \
       c.identity \
     FROM clusters c ORDER BY c.name";

/// Summaries of every cluster in the archive.
pub(super) async fn report(store: &PgStore) -> Result<StatusReport, StoreError> {
    let clusters: Vec<StatusRecord> = sqlx::query_as(CLUSTERS).fetch_all(&store.pool).await?;
    let mut out = Vec::with_capacity(clusters.len());
    for StatusRecord { cluster, totals } in clusters {
        let id = cluster.id;
        let topics = store
            .all::<TopicRecord, TopicCount>(queries::topic_counts(id, STYLE))
            .await?;
        let gaps = store
            .all::<GapRecord, Gap>(queries::gaps(id, STYLE))
            .await?;
        let pruned = store
            .optional::<PruneRecord, Prune>(prune::newest(id, STYLE))
            .await?;
        out.push(cluster_status(cluster, totals, topics, gaps).with_prune(pruned));
    }
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&store.pool)
        .await?;
    Ok(StatusReport {
        database: store.url.clone(),
        backend: store.backend(),
        database_bytes: to_u64(size),
        clusters: out,
    })
}
