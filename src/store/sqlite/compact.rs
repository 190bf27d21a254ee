//! `compact` on SQLite ([`Compact`]): plain events read in stream order,
//! re-encoded ones written back by their identity, and `VACUUM` on request
//! (else the pages emptied whole, as packing leaves them, go back to the
//! file system).

use std::sync::Arc;

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::compact::{CHUNK_ROWS, Compact, PlainRow, Rewritten};
use crate::store::compress::training::{Samples, Trained};
use crate::store::compress::{Ledger, StoredDictionary};

#[async_trait]
impl Compact for SqliteStore {
    async fn plain_counts(&self, cluster_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT topic, COUNT(*) FROM event_log \
             WHERE cluster_id = ? AND dictionary_id IS NULL AND block_id IS NULL GROUP BY topic ORDER BY topic",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn samples(
        &self,
        cluster_id: i64,
        topic: &str,
        limit: i64,
    ) -> Result<Samples, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT raft_index, event FROM event_log INDEXED BY event_log_stream_order \
             WHERE cluster_id = ? AND topic = ? AND dictionary_id IS NULL AND block_id IS NULL \
             ORDER BY raft_index DESC, position DESC LIMIT ?",
        )
        .bind(cluster_id)
        .bind(topic)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|(index, raw)| (index, Arc::from(raw)))
            .collect())
    }

    async fn plain_rows(
        &self,
        cluster_id: i64,
        after: (i64, i32),
    ) -> Result<Vec<PlainRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT raft_index, position, topic, namespace, key_ref, event \
             FROM event_log INDEXED BY event_log_stream_order \
             WHERE cluster_id = ? AND (raft_index, position) > (?, ?) AND dictionary_id IS NULL AND block_id IS NULL \
             ORDER BY raft_index, position LIMIT ?",
        )
        .bind(cluster_id)
        .bind(after.0)
        .bind(after.1)
        .bind(CHUNK_ROWS)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn rewrite(&self, cluster_id: i64, rows: &[Rewritten]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for row in rows {
            sqlx::query(
                "UPDATE event_log SET event = ?, dictionary_id = ? \
                 WHERE cluster_id = ? AND raft_index = ? AND topic = ? AND namespace = ? \
                 AND key_ref = ? AND dictionary_id IS NULL AND block_id IS NULL",
            )
            .bind(&row.bytes)
            .bind(row.dictionary_id)
            .bind(cluster_id)
            .bind(row.raft_index)
            .bind(&row.topic)
            .bind(&row.namespace)
            .bind(row.key_ref)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dictionaries(&self, cluster_id: i64) -> Result<Vec<StoredDictionary>, StoreError> {
        self.pool.acquire().await?.newest(cluster_id).await
    }

    async fn store_dictionary(
        &self,
        cluster_id: i64,
        trained: &Trained,
    ) -> Result<i64, StoreError> {
        self.pool.acquire().await?.store(cluster_id, trained).await
    }

    async fn reclaim(&self, vacuum: bool) -> Result<(), StoreError> {
        if vacuum {
            sqlx::query("VACUUM").execute(&self.pool).await?;
        } else {
            super::prune::give_back_free_pages(&self.pool, self.in_memory).await?;
        }
        Ok(())
    }
}
