//! Filling `evaluation_details` for compressed Evaluation events on SQLite
//! ([`crate::store::details_fill`]).

use async_trait::async_trait;
use sqlx::{Connection, SqlitePool};

use crate::store::StoreError;
use crate::store::backfill::Undated;
use crate::store::details_fill::{
    CHUNK_ROWS, CLEAR, COUNT, EvaluationEvent, EvaluationRow, MARKED, Unfilled, WITHOUT_ROW,
};

/// The pool, seen as an archive with evaluations to list.
pub(super) struct Fill<'a>(pub &'a SqlitePool);

#[async_trait]
impl Unfilled for Fill<'_> {
    async fn marked(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(MARKED).fetch_one(self.0).await?)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(COUNT).fetch_one(self.0).await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn chunk(&self, after: (i64, i64, i32)) -> Result<Vec<EvaluationEvent>, StoreError> {
        // In stream order through its index: every event is looked at once
        // over the whole fill.
        let sql = format!(
            "SELECT e.cluster_id, c.name AS cluster, k.name AS key, e.raft_index, e.position, \
               e.event, e.dictionary_id \
             FROM event_log AS e INDEXED BY event_log_stream_order \
             JOIN clusters AS c ON c.id = e.cluster_id JOIN names AS k ON k.id = e.key_ref \
             WHERE (e.cluster_id, e.raft_index, e.position) > (?, ?, ?) \
               AND e.topic = 'Evaluation' AND e.dictionary_id IS NOT NULL AND {WITHOUT_ROW} \
             ORDER BY e.cluster_id, e.raft_index, e.position LIMIT ?"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(after.0)
            .bind(after.1)
            .bind(after.2)
            .bind(CHUNK_ROWS)
            .fetch_all(self.0)
            .await?)
    }

    async fn write(&self, rows: &[EvaluationRow]) -> Result<(), StoreError> {
        let mut conn = self.0.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for row in rows {
            sqlx::query(
                "INSERT OR IGNORE INTO evaluation_details (cluster_id, raft_index, position, \
                   status, triggered_by, status_description) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(row.cluster_id)
            .bind(row.raft_index)
            .bind(row.position)
            .bind(&row.details.status)
            .bind(&row.details.triggered_by)
            .bind(&row.details.status_description)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        sqlx::query(CLEAR).execute(self.0).await?;
        Ok(())
    }

    async fn dictionaries(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        super::backfill::Backfill(self.0).dictionaries(ids).await
    }
}
