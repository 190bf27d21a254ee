//! Reconstructions on SQLite: the statements of
//! [`crate::store::reconstruction`] with `?` placeholders, objects inserted
//! row by row through one prepared statement inside the transaction that
//! completes the reconstruction.

use async_trait::async_trait;
use sqlx::{Sqlite, Transaction};

use super::{STYLE, SqliteStore, query, query_scalar};
use crate::archive::{
    Batch, ClosedPart, Cluster, PartSummary, PendingPart, ReconstructedObject, Reconstruction,
    RefColumn, StoredPart, now_millis,
};
use crate::store::reconstruction::sql;
use crate::store::records::{ObjectRecord, PendingRecord, ReconstructionRecord, SummaryRecord};
use crate::store::{Reconstructions, StoreError, to_i64};

/// Requests the reconstructions a batch's gaps call for, in its transaction.
pub(super) async fn request(
    tx: &mut Transaction<'_, Sqlite>,
    cluster: &Cluster,
    batch: &Batch,
) -> Result<(), StoreError> {
    for statement in sql::requests(cluster.id, batch, now_millis(), STYLE) {
        query(statement)?.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts the objects of `part`, in the transaction that completes it.
async fn insert_objects(
    tx: &mut Transaction<'_, Sqlite>,
    part: &StoredPart,
) -> Result<(), StoreError> {
    for o in &part.objects {
        sqlx::query(
            "INSERT INTO reconstructed_objects (reconstruction_id, namespace, key, job_id, \
             node_id, eval_id, deployment_id, modify_index, shape, object) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(part.id)
        .bind(o.namespace.as_str())
        .bind(o.key.as_str())
        .bind(o.job_id.as_deref())
        .bind(o.node_id.as_deref())
        .bind(o.eval_id.as_deref())
        .bind(o.deployment_id.as_deref())
        .bind(o.modify_index.map(to_i64))
        .bind(o.shape)
        .bind(o.raw.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Reconstructions for SqliteStore {
    async fn pending(&self, cluster: &Cluster) -> Result<Vec<PendingPart>, StoreError> {
        self.all::<PendingRecord, _>(sql::pending(cluster.id, STYLE))
            .await
    }

    async fn store(&self, part: &StoredPart) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let completed = query(sql::complete(part, STYLE))?.execute(&mut *tx).await?;
        if completed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_objects(&mut tx, part).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn close(&self, parts: &[ClosedPart]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for part in parts {
            query(sql::close(part, now_millis(), STYLE))?
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn at(
        &self,
        cluster: &Cluster,
        topic: &str,
        to_index: Option<u64>,
        until: Option<i64>,
    ) -> Result<Option<Reconstruction>, StoreError> {
        let select = sql::at(cluster.id, topic, to_index.map(to_i64), until, STYLE);
        self.optional::<ReconstructionRecord, _>(select).await
    }

    async fn objects(
        &self,
        reconstruction: &Reconstruction,
        key: Option<&str>,
        refs: &[(RefColumn, String)],
    ) -> Result<Vec<ReconstructedObject>, StoreError> {
        let (id, topic) = (reconstruction.id, &reconstruction.topic);
        let select = sql::objects(id, topic, key, refs, STYLE, "object");
        self.all::<ObjectRecord, _>(select).await
    }

    async fn summary(&self, cluster: &str) -> Result<Vec<PartSummary>, StoreError> {
        self.all::<SummaryRecord, _>(sql::summary(cluster, STYLE))
            .await
    }

    async fn keys_with_prefix(
        &self,
        cluster: &Cluster,
        topic: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let select = sql::keys_with_prefix(cluster.id, topic, prefix, limit, STYLE);
        Ok(query_scalar(select)?.fetch_all(&self.pool).await?)
    }
}
