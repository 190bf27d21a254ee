//! Packing older events into blocks on SQLite ([`Pack`]): events read in
//! stream order, each block written with its events marked in a
//! transaction that takes the write lock from its start. The marked rows
//! are moved to the end of the table rather than shrunk in place: the
//! pages they leave are emptied whole, and go back to the file system
//! (`incremental_vacuum`), where rows shrunk in place would leave every
//! old page two-thirds empty, a space new events never reuse.

use async_trait::async_trait;
use sqlx::Connection;

use super::{EVENT, STYLE, SqliteStore, query_as, query_scalar};
use crate::store::StoreError;
use crate::store::dictionaries::Source;
use crate::store::pack::{self, NewBlock, Pack};
use crate::store::records::EventRecord;

#[async_trait]
impl Pack for SqliteStore {
    fn source(&self) -> &dyn Source {
        self
    }

    async fn first_index_at(&self, cluster_id: i64, at: i64) -> Result<Option<i64>, StoreError> {
        let statement = pack::first_index_at(cluster_id, at, STYLE);
        Ok(query_scalar(statement)?.fetch_optional(&self.pool).await?)
    }

    async fn newest_block(&self, cluster_id: i64) -> Result<Option<i64>, StoreError> {
        let statement = pack::newest_block(cluster_id, STYLE);
        Ok(query_scalar(statement)?.fetch_one(&self.pool).await?)
    }

    async fn unpacked(
        &self,
        cluster_id: i64,
        after: (i64, i32),
        below: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let statement = pack::unpacked(cluster_id, after, below, STYLE, EVENT);
        Ok(query_as(statement)?.fetch_all(&self.pool).await?)
    }

    async fn store_block(&self, cluster_id: i64, block: &NewBlock) -> Result<u64, StoreError> {
        let keys = serde_json::to_string(&block.keys).unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO event_blocks (cluster_id, first_index, last_index, events, bytes) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(cluster_id)
        .bind(block.first_index)
        .bind(block.last_index)
        .bind(i64::try_from(block.keys.len()).unwrap_or(i64::MAX))
        .bind(&block.bytes)
        .fetch_one(&mut *tx)
        .await?;
        let marked = move_rows(&mut tx, cluster_id, id, &keys).await?;
        if marked == 0 {
            // Pruned or packed meanwhile: no block without events.
            tx.rollback().await?;
            return Ok(0);
        }
        tx.commit().await?;
        Ok(marked)
    }
}

/// Moves the unpacked rows of `keys` (a JSON array of `[raft_index, topic,
/// namespace, key]`, the events' identities) to the end of `event_log`,
/// marked as packed into block `block`, by way of a table of the
/// connection's own; returns how many.
async fn move_rows(
    tx: &mut sqlx::SqliteConnection,
    cluster_id: i64,
    block: i64,
    keys: &str,
) -> Result<u64, StoreError> {
    let chosen = "cluster_id = ? AND block_id IS NULL \
                  AND (raft_index, topic, namespace, key_ref) IN \
                  (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                     json_extract(value, '$[2]'), \
                     (SELECT id FROM names WHERE name = json_extract(value, '$[3]')) \
                   FROM json_each(?))";
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS packing AS SELECT * FROM main.event_log WHERE 0")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM temp.packing")
        .execute(&mut *tx)
        .await?;
    let copy = format!("INSERT INTO temp.packing SELECT * FROM main.event_log WHERE {chosen}");
    sqlx::query(sqlx::AssertSqlSafe(copy))
        .bind(cluster_id)
        .bind(keys)
        .execute(&mut *tx)
        .await?;
    let delete = format!("DELETE FROM main.event_log WHERE {chosen}");
    sqlx::query(sqlx::AssertSqlSafe(delete))
        .bind(cluster_id)
        .bind(keys)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE temp.packing SET event = '', dictionary_id = NULL, block_id = ?")
        .bind(block)
        .execute(&mut *tx)
        .await?;
    let moved = sqlx::query(
        "INSERT INTO main.event_log SELECT * FROM temp.packing ORDER BY raft_index, position",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM temp.packing")
        .execute(&mut *tx)
        .await?;
    Ok(moved)
}
