//! The backfill of migration 0011 on SQLite ([`crate::store::backfill`]).

use async_trait::async_trait;
use sqlx::{Connection, SqlitePool};

use super::{STYLE, query};
use crate::store::StoreError;
use crate::store::backfill::{CHUNK_ROWS, DatedRow, Undated, UndatedRow, redated};

/// The rows to date, through the time index (`event_at IS NULL` is a range
/// of it).
const CHUNK: &str = "SELECT cluster_id, raft_index, position, received_at, event, dictionary_id \
     FROM event_log INDEXED BY event_log_by_time \
     WHERE cluster_id = ? AND event_at IS NULL AND raft_index > ? \
     ORDER BY raft_index LIMIT ?";

const FRAME: &str = "SELECT cluster_id, raft_index, position, received_at, event, dictionary_id \
     FROM event_log WHERE cluster_id = ? AND raft_index = ? AND event_at IS NULL \
     ORDER BY position";

const COUNT: &str = "SELECT COUNT(*) FROM event_log INDEXED BY event_log_by_time \
     WHERE cluster_id = ? AND event_at IS NULL";

const UPDATE: &str = "UPDATE event_log SET event_at = ?, time_source = ?, presence = ? \
     WHERE cluster_id = ? AND raft_index = ? AND position = ?";

/// The pool, seen as an archive with rows to date.
pub(super) struct Backfill<'a>(pub &'a SqlitePool);

#[async_trait]
impl Undated for Backfill<'_> {
    async fn clusters(&self) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM clusters ORDER BY id")
            .fetch_all(self.0)
            .await?)
    }

    async fn count(&self, cluster_id: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(COUNT)
            .bind(cluster_id)
            .fetch_one(self.0)
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn chunk(&self, cluster_id: i64, after: i64) -> Result<Vec<UndatedRow>, StoreError> {
        Ok(sqlx::query_as(CHUNK)
            .bind(cluster_id)
            .bind(after)
            .bind(CHUNK_ROWS)
            .fetch_all(self.0)
            .await?)
    }

    async fn frame(&self, cluster_id: i64, index: i64) -> Result<Vec<UndatedRow>, StoreError> {
        Ok(sqlx::query_as(FRAME)
            .bind(cluster_id)
            .bind(index)
            .fetch_all(self.0)
            .await?)
    }

    async fn write(&self, rows: &[DatedRow]) -> Result<(), StoreError> {
        // The write lock from the start (see the keyframe catch-up).
        let mut conn = self.0.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for row in rows {
            sqlx::query(UPDATE)
                .bind(row.time.at)
                .bind(row.time.source.as_str())
                .bind(row.presence)
                .bind(row.cluster_id)
                .bind(row.raft_index)
                .bind(row.position)
                .execute(&mut *tx)
                .await?;
        }
        for statement in redated(rows, STYLE) {
            query(statement)?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dictionaries(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, bytes FROM dictionaries WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(ids).unwrap_or_default())
        .fetch_all(self.0)
        .await?)
    }
}
