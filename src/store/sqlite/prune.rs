//! Retention on SQLite: each step of a prune ([`crate::store::prune`]) in a
//! transaction that takes the write lock at its start (`BEGIN IMMEDIATE`,
//! waiting for a writer's commit as long as the busy timeout), and the
//! freed pages given back to the file system by `PRAGMA incremental_vacuum`
//! a few at a time, on archives created with `auto_vacuum = INCREMENTAL`.

use async_trait::async_trait;
use sqlx::Connection;

use super::{STYLE, SqliteStore};
use crate::archive::{Cluster, Prune, PruneReport};
use crate::store::keyframe::Run;
use crate::store::prune::{self, Step, Steps};
use crate::store::records::PruneRecord;
use crate::store::statement::{Placeholders, Statement};
use crate::store::{StoreError, to_u64};

/// Pages given back per `incremental_vacuum` (4 MiB of 16 KiB pages): each
/// is a short write of its own.
const PAGES_PER_VACUUM: i64 = 256;

/// `PRAGMA auto_vacuum` of an archive that gives space back on request.
const INCREMENTAL: i64 = 2;

#[async_trait]
impl Steps for SqliteStore {
    async fn step(&self, cluster_id: i64, step: Step) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let n = prune::apply(&mut *tx, cluster_id, step).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn int(&self, statement: Statement) -> Result<Option<i64>, StoreError> {
        self.pool.acquire().await?.int(statement).await
    }

    async fn reclaim(&self, _deleted: u64) -> Result<bool, StoreError> {
        give_back_free_pages(&self.pool, self.in_memory).await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        size(self).await
    }

    fn style(&self) -> Placeholders {
        STYLE
    }
}

/// Gives the archive's free pages back to the file system, a few at a time,
/// if it was created with `auto_vacuum = INCREMENTAL`; whether it can
/// (also when the file shrinks by itself: `auto_vacuum = FULL`).
pub(super) async fn give_back_free_pages(
    pool: &sqlx::SqlitePool,
    in_memory: bool,
) -> Result<bool, StoreError> {
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(pool)
        .await?;
    if mode != INCREMENTAL {
        return Ok(mode == 1);
    }
    loop {
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(pool)
            .await?;
        if free == 0 {
            break;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA incremental_vacuum({PAGES_PER_VACUUM})"
        )))
        .execute(pool)
        .await?;
        tokio::task::yield_now().await;
    }
    if !in_memory {
        // The file shrinks when the WAL is copied back; PASSIVE waits for
        // no reader.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(pool)
            .await?;
    }
    Ok(true)
}

/// The pages in use (free pages left out) times the page size.
pub(super) async fn size(store: &SqliteStore) -> Result<u64, StoreError> {
    let bytes: i64 = sqlx::query_scalar(
        "SELECT (page_count - freelist_count) * page_size \
         FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(to_u64(bytes))
}

/// [`crate::store::Store::pruned`].
pub(super) async fn pruned(
    store: &SqliteStore,
    cluster: &Cluster,
) -> Result<Option<Prune>, StoreError> {
    store
        .optional::<PruneRecord, Prune>(prune::newest(cluster.id, STYLE))
        .await
}

/// [`crate::store::Store::prune`].
pub(super) async fn run(
    store: &SqliteStore,
    cluster: &Cluster,
    before: u64,
    time: Option<i64>,
) -> Result<PruneReport, StoreError> {
    let previous = pruned(store, cluster).await?;
    prune::run(store, cluster, before, time, previous.as_ref()).await
}
