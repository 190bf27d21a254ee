//! What [`Store`] answers on PostgreSQL: clusters, events, pages and
//! lookups. The writer's lease and the status report are built in their own
//! files.

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::{EVENT, PgStore, STYLE, keyframe, lease, prune, query_as, query_scalar, status};
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

/// Adds a cluster or updates its address, returning its row.
const UPSERT_CLUSTER: &str = "INSERT INTO clusters (name, address, created_at, updated_at) \
     VALUES ($1, $2, $3, $3) \
     ON CONFLICT (name) DO UPDATE SET address = COALESCE(EXCLUDED.address, clusters.address) \
     RETURNING id, name, checkpoint, identity, address";

/// The lowest and highest index of a cluster, from the first index kept by
/// its newest prune (the events kept before it are for snapshots only).
const SPAN: &str = "SELECT (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = $1 \
          AND raft_index >= (SELECT COALESCE(MAX(before_index), 0) FROM prunes WHERE cluster_id = $1)) AS first, \
       (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = $1) AS last";

/// The earliest and latest time of a cluster's dated events, a lookup at
/// each end of the index by time.
const DATED_TIMES: &str = "SELECT \
       (SELECT MIN(event_at) FROM event_log WHERE cluster_id = $1) AS first, \
       (SELECT MAX(event_at) FROM event_log WHERE cluster_id = $1) AS last";

/// The lowest and highest index of a cluster's dated events, walking the
/// stream order from each end to the first one dated: the span of a
/// window that holds all their times, without reading the index by time
/// through.
const DATED_SPAN: &str = "SELECT \
       (SELECT raft_index FROM event_log \
        WHERE cluster_id = $1 AND event_at IS NOT NULL ORDER BY raft_index LIMIT 1) AS first, \
       (SELECT raft_index FROM event_log \
        WHERE cluster_id = $1 AND event_at IS NOT NULL ORDER BY raft_index DESC LIMIT 1) AS last";

/// IDs of the nodes once called a name, from the index of their names
/// (migration 0015), which holds each node's key.
const NODE_IDS_NAMED: &str = "SELECT DISTINCT k.name FROM node_details AS d \
     JOIN names AS k ON k.id = d.key_ref \
     WHERE d.cluster_id = $1 AND d.node_name = $2 ORDER BY k.name LIMIT 20";

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn open_cluster(&self, name: &str, address: Option<&str>) -> Result<Cluster, StoreError> {
        let row: ClusterRecord = sqlx::query_as(UPSERT_CLUSTER)
            .bind(name)
            .bind(address)
            .bind(now_millis())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.into())
    }

    async fn fill_gaps(
        &self,
        cluster: &Cluster,
        covered: &[(u64, u64)],
    ) -> Result<u64, StoreError> {
        use sqlx::Connection;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
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
        cluster: &str,
        shutdown: &CancellationToken,
    ) -> Result<Option<Box<dyn Lease>>, StoreError> {
        lease::acquire(self, cluster, shutdown).await
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
        let statements = crate::store::lanes::statements(cluster.id, window, STYLE);
        crate::store::ahead::chain_started(
            statements
                .into_iter()
                .map(|statement| super::lists::stream(self, statement)),
        )
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
