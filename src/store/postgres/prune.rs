//! Retention on PostgreSQL: each step of a prune
//! ([`crate::store::prune`]) in a transaction that first locks the
//! cluster's row (the writer's commit updates it, so a prune's step and a
//! writer's keyframe follow each other), and an explicit `VACUUM` of the
//! tables pruned at the end of a large prune, so their freed space is
//! reused by the next inserts instead of the tables growing (autovacuum
//! sees to the small ones).

use async_trait::async_trait;

use super::{PgStore, STYLE};
use crate::archive::{Cluster, Prune, PruneReport};
use crate::store::keyframe::Run;
use crate::store::prune::{self, PER_EVENT_TABLES, Step, Steps};
use crate::store::records::PruneRecord;
use crate::store::statement::{Placeholders, Statement};
use crate::store::{StoreError, to_u64};

/// The tables a prune deletes from or updates besides
/// [`PER_EVENT_TABLES`]: the events, the keyframes and the summaries kept
/// beside the events (`allocation_lives`, `event_minutes`, and
/// `marker_slots` through its triggers). Ingest updates the summaries on
/// every event, so they hold most of the dead rows a VACUUM frees.
const PRUNED: [&str; 9] = [
    "event_log",
    "event_blocks",
    "task_event_log",
    "keyframes",
    "keyframe_objects",
    "terminal_counts",
    "allocation_lives",
    "event_minutes",
    "marker_slots",
];

/// A prune that deleted at least this share of the events (by the
/// planner's estimate) vacuums the tables it deleted from at once; a
/// smaller one leaves them to autovacuum.
const VACUUM_SHARE: f32 = 0.05;

#[async_trait]
impl Steps for PgStore {
    async fn step(&self, cluster_id: i64, step: Step) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = prune::apply(&mut *tx, cluster_id, step).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn int(&self, statement: Statement) -> Result<Option<i64>, StoreError> {
        self.pool.acquire().await?.int(statement).await
    }

    async fn reclaim(&self, deleted: u64) -> Result<bool, StoreError> {
        let rows: f32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(reltuples), 0) FROM pg_class WHERE relname = 'event_log'",
        )
        .fetch_one(&self.pool)
        .await?;
        // A small prune (the background's, every few minutes) is left to
        // autovacuum: VACUUM reads every index of the tables it cleans.
        if (deleted as f32) < rows * VACUUM_SHARE {
            return Ok(true);
        }
        let tables: Vec<&str> = PRUNED.iter().chain(PER_EVENT_TABLES).copied().collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "VACUUM (ANALYZE) {}",
            tables.join(", ")
        )))
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    async fn size(&self) -> Result<u64, StoreError> {
        size(self).await
    }

    fn style(&self) -> Placeholders {
        STYLE
    }
}

/// `pg_total_relation_size` (table, indexes, TOAST) of every table in the
/// archive's schema: events, IDs, keyframes, gaps and reconstructions, and
/// whatever table a later migration adds.
pub(super) async fn size(store: &PgStore) -> Result<u64, StoreError> {
    let bytes: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(pg_total_relation_size(c.oid)) AS BIGINT) FROM pg_class AS c \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname = current_schema()",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(bytes.map_or(0, to_u64))
}

/// [`crate::store::Store::pruned`].
pub(super) async fn pruned(
    store: &PgStore,
    cluster: &Cluster,
) -> Result<Option<Prune>, StoreError> {
    store
        .optional::<PruneRecord, Prune>(prune::newest(cluster.id, STYLE))
        .await
}

/// [`crate::store::Store::prune`].
pub(super) async fn run(
    store: &PgStore,
    cluster: &Cluster,
    before: u64,
    time: Option<i64>,
) -> Result<PruneReport, StoreError> {
    let previous = pruned(store, cluster).await?;
    prune::run(store, cluster, before, time, previous.as_ref()).await
}
