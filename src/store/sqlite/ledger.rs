//! The SQLite writer's dictionaries ([`Ledger`]): read and stored on the
//! writer's connection, outside the batch's transaction.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use crate::store::StoreError;
use crate::store::compress::training::Trained;
use crate::store::compress::{Ledger, StoredDictionary};

#[async_trait]
impl Ledger for SqliteConnection {
    async fn newest(&mut self, cluster_id: i64) -> Result<Vec<StoredDictionary>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT d.id, d.topic, d.ratio, d.bytes FROM dictionaries AS d \
             WHERE d.cluster_id = ?1 AND d.id = \
               (SELECT MAX(n.id) FROM dictionaries AS n WHERE n.cluster_id = ?1 AND n.topic = d.topic)",
        )
        .bind(cluster_id)
        .fetch_all(&mut *self)
        .await?)
    }

    async fn store(&mut self, cluster_id: i64, trained: &Trained) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO dictionaries (cluster_id, topic, trained_from_index, trained_to_index, \
               trained_at, ratio, bytes) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
