//! Reconstructions on SQLite: the SQL of [`crate::store::reconstruction`]
//! with `?` placeholders, objects inserted row by row through one prepared
//! statement inside the transaction that completes the reconstruction.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};

use super::SqliteStore;
use crate::archive::RefColumn;
use crate::archive::reconstruction::{TOPICS, endpoint};
use crate::archive::{
    Batch, ClosedPart, Cluster, Gap, GapKind, PartStatus, PartSummary, PendingPart,
    ReconstructedObject, Reconstruction, StoredPart, now_millis,
};
use crate::store::filter::{Bind, Placeholders, SelectSql};
use crate::store::reconstruction::sql;
use crate::store::{Reconstructions, StoreError, to_i64, to_u64};

const STYLE: Placeholders = Placeholders::Question;

/// Requests the reconstructions a batch's gaps call for, in its transaction.
pub(super) async fn request(
    tx: &mut Transaction<'_, Sqlite>,
    cluster: &Cluster,
    batch: &Batch,
) -> Result<(), StoreError> {
    let Some(scope) = &batch.reconcile else {
        return Ok(());
    };
    let now = now_millis();
    for gap in batch.gaps.iter().filter(|g| g.kind.is_reconciled()) {
        for topic in scope.topics.iter().filter(|t| TOPICS.contains(&t.as_str())) {
            sqlx::query(AssertSqlSafe(sql::placeholders(sql::REQUEST, STYLE)))
                .bind(cluster.id)
                .bind(topic.as_str())
                .bind(scope.namespace.as_str())
                .bind(now)
                .bind(cluster.id)
                .bind(to_i64(gap.from_index))
                .bind(to_i64(gap.to_index))
                .bind(gap.kind.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

fn gap_at(row: &sqlx::sqlite::SqliteRow, first: usize) -> Gap {
    Gap {
        from_index: to_u64(row.get(first)),
        to_index: to_u64(row.get(first + 1)),
        kind: GapKind::parse(row.get::<&str, _>(first + 2)).unwrap_or(GapKind::Buffer),
        reason: row.get(first + 3),
        detected_at: row.get(first + 4),
    }
}

fn bound<'q>(
    select: SelectSql,
) -> sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments> {
    let mut query = sqlx::query(AssertSqlSafe(select.sql));
    for bind in select.binds {
        query = match bind {
            Bind::Int(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
        };
    }
    query
}

#[async_trait]
impl Reconstructions for SqliteStore {
    async fn pending(&self, cluster: &Cluster) -> Result<Vec<PendingPart>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(sql::placeholders(sql::PENDING, STYLE)))
            .bind(cluster.id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| PendingPart {
                id: r.get(0),
                topic: r.get(1),
                namespace: r.get(2),
                gap: gap_at(r, 3),
            })
            .collect())
    }

    async fn store(&self, part: &StoredPart) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let completed = sqlx::query(AssertSqlSafe(sql::placeholders(sql::COMPLETE, STYLE)))
            .bind(to_i64(part.index))
            .bind(i64::try_from(part.objects.len()).unwrap_or(i64::MAX))
            .bind(part.recorded_at)
            .bind(part.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if completed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
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
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn close(&self, parts: &[ClosedPart]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for part in parts {
            sqlx::query(AssertSqlSafe(sql::placeholders(sql::CLOSE, STYLE)))
                .bind(part.status.as_str())
                .bind(part.detail.as_str())
                .bind(now_millis())
                .bind(part.id)
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
        let row = bound(select).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| {
            let topic: String = r.get(2);
            Reconstruction {
                id: r.get(0),
                index: to_u64(r.get(1)),
                endpoint: endpoint(&topic).to_owned(),
                topic,
                namespace: r.get(3),
                recorded_at: r.get::<Option<i64>, _>(4).unwrap_or_default(),
                gap: gap_at(&r, 5),
            }
        }))
    }

    async fn objects(
        &self,
        reconstruction: &Reconstruction,
        key: Option<&str>,
        refs: &[(RefColumn, String)],
    ) -> Result<Vec<ReconstructedObject>, StoreError> {
        let select = sql::objects(
            reconstruction.id,
            &reconstruction.topic,
            key,
            refs,
            STYLE,
            "object",
        );
        let rows = bound(select).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| ReconstructedObject {
                namespace: r.get(0),
                key: r.get(1),
                modify_index: r.get::<Option<i64>, _>(2).map(to_u64),
                shape: r.get(3),
                raw: r.get(4),
            })
            .collect())
    }

    async fn summary(&self, cluster: &str) -> Result<Vec<PartSummary>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(sql::placeholders(sql::SUMMARY, STYLE)))
            .bind(cluster)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| PartSummary {
                gap_from_index: to_u64(r.get(0)),
                gap_to_index: to_u64(r.get(1)),
                topic: r.get(2),
                status: PartStatus::parse(r.get::<&str, _>(3)).unwrap_or(PartStatus::Failed),
                index: r.get::<Option<i64>, _>(4).map(to_u64),
                objects: to_u64(r.get(5)),
                detail: r.get(6),
            })
            .collect())
    }

    async fn keys_with_prefix(
        &self,
        cluster: &Cluster,
        topic: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(AssertSqlSafe(sql::placeholders(
            sql::KEYS_WITH_PREFIX,
            STYLE,
        )))
        .bind(cluster.id)
        .bind(topic)
        .bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
