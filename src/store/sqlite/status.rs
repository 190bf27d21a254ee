//! What `status` reports of an SQLite archive: each cluster with the extent
//! of its events, its topics and gaps, and the file's size.

use super::{STYLE, SqliteStore};
use crate::archive::{Gap, Prune, StatusReport, TopicCount};
use crate::store::prune;
use crate::store::records::{
    GapRecord, PruneRecord, StatusClusterRecord, TopicRecord, TotalsRecord, cluster_status,
};
use crate::store::{Store, StoreError, queries, to_u64};

/// The extent of one cluster's events: indexes, Nomad's times, and the
/// receipt of the first and last event in stream order. One aggregate per
/// subquery: SQLite answers each with one index lookup, where together they
/// read every event.
const TOTALS: &str = "SELECT \
       (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = ?1) AS first_index, \
       (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = ?1) AS last_index, \
       (SELECT MIN(event_at) FROM event_log WHERE cluster_id = ?1 AND time_source = 'nomad') AS first_event_at, \
       (SELECT MAX(event_at) FROM event_log WHERE cluster_id = ?1 AND time_source = 'nomad') AS last_event_at, \
       (SELECT received_at FROM event_log WHERE cluster_id = ?1 \
          ORDER BY raft_index, position LIMIT 1) AS first_received_at, \
       (SELECT received_at FROM event_log WHERE cluster_id = ?1 \
          ORDER BY raft_index DESC, position DESC LIMIT 1) AS last_received_at";

/// Summaries of every cluster in the archive.
pub(super) async fn report(store: &SqliteStore) -> Result<StatusReport, StoreError> {
    let clusters: Vec<StatusClusterRecord> = sqlx::query_as(
        "SELECT id, name, address, checkpoint, malformed_lines, identity FROM clusters ORDER BY name",
    )
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(clusters.len());
    for cluster in clusters {
        let id = cluster.id;
        let totals: TotalsRecord = sqlx::query_as(TOTALS)
            .bind(id)
            .fetch_one(&store.pool)
            .await?;
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
    let size: i64 = sqlx::query_scalar(
        "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(StatusReport {
        database: store.url.clone(),
        backend: store.backend(),
        database_bytes: to_u64(size),
        clusters: out,
    })
}
