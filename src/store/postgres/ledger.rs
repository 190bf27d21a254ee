//! The PostgreSQL writer's dictionaries ([`Ledger`]): read and stored on
//! the connection holding the writer lock, outside the batch's transaction.

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::store::StoreError;
use crate::store::compress::training::Trained;
use crate::store::compress::{Ledger, StoredDictionary};

#[async_trait]
impl Ledger for PgConnection {
    async fn newest(&mut self, cluster_id: i64) -> Result<Vec<StoredDictionary>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT ON (topic) id, topic, ratio, bytes FROM dictionaries \
             WHERE cluster_id = $1 ORDER BY topic, id DESC",
        )
        .bind(cluster_id)
        .fetch_all(&mut *self)
        .await?)
    }

    async fn store(&mut self, cluster_id: i64, trained: &Trained) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO dictionaries (cluster_id, topic, trained_from_index, trained_to_index, \
               trained_at, ratio, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(cluster_id)
        .bind(&trained.topic)
        .bind(trained.from_index)
        .bind(trained.to_index)
        .bind(trained.trained_at)
        .bind(trained.ratio)
        .bind(&trained.bytes)
        .fetch_one(&mut *self)
        .await?)
    }
}
