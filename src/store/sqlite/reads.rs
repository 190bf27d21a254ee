//! What [`Store`] answers on SQLite: clusters, events, pages and lookups.
//! The writer's lease and the status report are built in their own files.

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::{EVENT, STYLE, SqliteStore, keyframe, lease, prune, query_as, query_scalar, status};
use crate::archive::{
    ArchivedEvent, Cluster, Gap, PageQuery, Prune, PruneReport, StatusReport, now_millis,
};
use crate::store::dictionaries;
use crate::store::filter::select_events;
use crate::store::records::{ClusterRecord, EventRecord, GapRecord, SpanRecord};
use crate::store::{
    Lease, Moment, MomentObject, MomentQuery, Reconstructions, Rows, Store, StoreError, minutes,
    queries,
};

/// The lowest and highest index of a cluster, from the first index kept by
/// its newest prune (the events kept before it are for snapshots only). A subquery each: SQLite
/// answers a lone MIN or MAX with one index lookup, and both in one query by
/// reading the cluster's entries.
const SPAN: &str = "SELECT (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = ?1 \
          AND raft_index >= (SELECT COALESCE(MAX(before_index), 0) FROM prunes WHERE cluster_id = ?1)) AS first, \
       (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = ?1) AS last";

/// The earliest and latest time of a cluster's dated events, a lookup at
/// each end of the index by time.
const DATED_TIMES: &str = "SELECT \
       (SELECT MIN(event_at) FROM event_log INDEXED BY event_log_by_time \
        WHERE cluster_id = ?1) AS first, \
       (SELECT MAX(event_at) FROM event_log INDEXED BY event_log_by_time \
        WHERE cluster_id = ?1) AS last";

/// The lowest and highest index of a cluster's dated events, walking the
/// stream order from each end to the first one dated: the span of a
/// window that holds all their times, without reading the index by time
/// through (0.7 s at 10M events).
const DATED_SPAN: &str = "SELECT \
       (SELECT raft_index FROM event_log INDEXED BY event_log_stream_order \
        WHERE cluster_id = ?1 AND event_at IS NOT NULL ORDER BY raft_index LIMIT 1) AS first, \
       (SELECT raft_index FROM event_log INDEXED BY event_log_stream_order \
        WHERE cluster_id = ?1 AND event_at IS NOT NULL ORDER BY raft_index DESC LIMIT 1) AS last";

/// IDs of the nodes once called a name, from the index of their names
/// (migration 0015), which holds each node's key.
const NODE_IDS_NAMED: &str = "SELECT DISTINCT k.name FROM node_details AS d \
     JOIN names AS k ON k.id = d.key_ref \
     WHERE d.cluster_id = ? AND d.node_name = ? ORDER BY k.name LIMIT 20";

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn open_cluster(&self, name: &str, address: Option<&str>) -> Result<Cluster, StoreError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO clusters (name, address, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET address = COALESCE(excluded.address, clusters.address)",
        )
        .bind(name)
        .bind(address)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.find_cluster(name)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
    }

    async fn fill_gaps(
        &self,
        cluster: &Cluster,
        covered: &[(u64, u64)],
    ) -> Result<u64, StoreError> {
        use sqlx::Connection;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut changed = 0;
        for range in covered {
            changed += crate::store::fills::fill(&mut *tx, cluster.id, *range).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn find_cluster(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        self.optional::<ClusterRecord, _>(queries::find_cluster(name, STYLE))
            .await
    }

    async fn lease(
        &self,
        _cluster: &str,
        _shutdown: &CancellationToken,
    ) -> Result<Option<Box<dyn Lease>>, StoreError> {
        Ok(Some(lease::lease(self).await?))
    }

    async fn status(&self) -> Result<StatusReport, StoreError> {
        status::report(self).await
    }

    async fn page(
        &self,
        cluster: &Cluster,
        q: &PageQuery,
    ) -> Result<Vec<ArchivedEvent>, StoreError> {
        let select = select_events(cluster.id, q, STYLE, EVENT);
        let records: Vec<EventRecord> = query_as(select)?.fetch_all(&self.pool).await?;
        dictionaries::decode_all(self, cluster, records).await
    }

    async fn moment(
        &self,
        cluster: &Cluster,
        query: &MomentQuery,
    ) -> Result<Option<Moment>, StoreError> {
        keyframe::moment(self, cluster, query).await
    }

    fn moment_objects<'a>(
        &'a self,
        cluster: &'a Cluster,
        moment: &'a Moment,
        rows: Rows,
    ) -> BoxStream<'a, Result<MomentObject, StoreError>> {
        keyframe::objects(self, cluster, moment, rows)
    }

    async fn terminal_left_out(
        &self,
        cluster: &Cluster,
        moment: &Moment,
    ) -> Result<u64, StoreError> {
        keyframe::left_out(self, cluster, moment).await
    }

    async fn build_keyframes(
        &self,
        cluster: &Cluster,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        keyframe::build(self, cluster, progress).await
    }

    async fn gaps(&self, cluster: &Cluster) -> Result<Vec<Gap>, StoreError> {
        let mut gaps = self
            .all::<GapRecord, _>(queries::gaps(cluster.id, STYLE))
            .await?;
        if let Some(pruned) = prune::pruned(self, cluster).await? {
            gaps.insert(0, pruned.gap());
        }
        Ok(gaps)
    }

    async fn pruned(&self, cluster: &Cluster) -> Result<Option<Prune>, StoreError> {
        prune::pruned(self, cluster).await
    }

    async fn prune(
        &self,
        cluster: &Cluster,
        before: u64,
        time: Option<i64>,
    ) -> Result<PruneReport, StoreError> {
        prune::run(self, cluster, before, time).await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        prune::size(self).await
    }

    async fn span(&self, cluster: &Cluster) -> Result<Option<(u64, u64)>, StoreError> {
        let span: SpanRecord = sqlx::query_as(SPAN)
            .bind(cluster.id)
            .fetch_one(&self.pool)
            .await?;
        Ok(span.range())
    }

    async fn time_span(
        &self,
        cluster: &Cluster,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let dated: SpanRecord = sqlx::query_as(DATED_TIMES)
            .bind(cluster.id)
            .fetch_one(&self.pool)
            .await?;
        let span: SpanRecord = if dated.within(since, until) {
            sqlx::query_as(DATED_SPAN).bind(cluster.id)
        } else {
            let (since, until) = (since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
            query_as(minutes::span(cluster.id, since, until, STYLE))?
        }
        .fetch_one(&self.pool)
        .await?;
        Ok(span.range())
    }

    async fn node_ids_named(
        &self,
        cluster: &Cluster,
        name: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(NODE_IDS_NAMED)
            .bind(cluster.id)
            .bind(name)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn keys_with_prefix(
        &self,
        cluster: &Cluster,
        topic: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let select = queries::keys_with_prefix(cluster.id, topic, prefix, limit, STYLE);
        Ok(query_scalar(select)?.fetch_all(&self.pool).await?)
    }

    async fn cluster_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(queries::CLUSTER_NAMES)
            .fetch_all(&self.pool)
            .await?)
    }

    fn compactor(&self) -> &dyn crate::store::compact::Compact {
        self
    }

    fn packer(&self) -> &dyn crate::store::pack::Pack {
        self
    }

    fn set_compression(&self, settings: crate::store::compress::Settings) {
        *self.compression.lock().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    fn reconstructions(&self) -> &dyn Reconstructions {
        self
    }

    fn lane_rows<'a>(
        &'a self,
        cluster: &'a Cluster,
        window: &'a crate::store::LaneWindow,
    ) -> BoxStream<'a, Result<crate::store::LaneRow, StoreError>> {
        super::lanes::lane_rows(self, cluster, window)
    }

    fn lists(&self) -> &dyn crate::store::lists::Lists {
        self
    }

    async fn close(&self) {
        if let Some(blocks) = self.blocks_pool.get() {
            blocks.close().await;
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DbUrl;

    #[tokio::test]
    async fn a_stored_value_of_another_type_is_an_error_naming_its_column_not_a_panic() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = DbUrl::SqliteFile(dir.path().join("archive.db"));
        let store = SqliteStore::open(&url, crate::store::Access::Create)
            .await
            .expect("open");
        let cluster = store.open_cluster("c", None).await.expect("cluster");
        // SQLite keeps text in an INTEGER column when it is no number.
        for sql in [
            "INSERT INTO names (name) VALUES ('web')",
            "INSERT INTO event_log (cluster_id, raft_index, position, topic, type, namespace, \
             key_ref, received_at, event) \
             SELECT c.id, 7, 0, 'Job', 'JobRegistered', 'default', n.id, 'yesterday', '{}' \
             FROM clusters AS c, names AS n",
        ] {
            sqlx::query(sql).execute(&store.pool).await.expect(sql);
        }
        let read = store.events(&cluster, 0, 10).await;
        assert!(
            matches!(
                &read,
                Err(StoreError::Query(sqlx::Error::ColumnDecode { index, .. }))
                    if index.contains("received_at")
            ),
            "{read:?}"
        );
        let message = read.expect_err("an error").to_string();
        assert!(
            message.starts_with(
                "the archive holds a value nomad-chronicle did not write in column \"received_at\""
            ) && message.ends_with("restore it from a copy"),
            "{message}"
        );
        Store::close(&store).await;
    }
}
