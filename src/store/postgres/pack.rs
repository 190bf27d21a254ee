//! Packing older events into blocks on PostgreSQL ([`Pack`]): events read
//! in stream order, each block written with its events marked in one
//! transaction.

use async_trait::async_trait;

use super::{EVENT, PgStore, STYLE, query_as, query_scalar};
use crate::store::StoreError;
use crate::store::dictionaries::Source;
use crate::store::pack::{self, NewBlock, Pack};
use crate::store::records::EventRecord;

#[async_trait]
impl Pack for PgStore {
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
        let indexes: Vec<i64> = block.keys.iter().map(|k| k.0).collect();
        let topics: Vec<&str> = block.keys.iter().map(|k| k.1.as_str()).collect();
        let namespaces: Vec<&str> = block.keys.iter().map(|k| k.2.as_str()).collect();
        let keys: Vec<&str> = block.keys.iter().map(|k| k.3.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO event_blocks (cluster_id, first_index, last_index, events, bytes) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(cluster_id)
        .bind(block.first_index)
        .bind(block.last_index)
        .bind(i32::try_from(block.keys.len()).unwrap_or(i32::MAX))
        .bind(&block.bytes)
        .fetch_one(&mut *tx)
        .await?;
        let marked = sqlx::query(
            "UPDATE event_log AS e SET event = NULL, event_zstd = NULL, dictionary_id = NULL, \
               block_id = $1 \
             FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS u (i, t, n, k) \
             JOIN names AS kn ON kn.name = u.k \
             WHERE e.cluster_id = $2 AND e.raft_index = u.i AND e.topic = u.t \
               AND e.namespace = u.n AND e.key_ref = kn.id AND e.block_id IS NULL",
        )
        .bind(id)
        .bind(cluster_id)
        .bind(indexes)
        .bind(topics)
        .bind(namespaces)
        .bind(keys)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked == 0 {
            // Pruned or packed meanwhile: no block without events.
            tx.rollback().await?;
            return Ok(0);
        }
        tx.commit().await?;
        Ok(marked)
    }
}
