//! The backfill of migration 0011 on PostgreSQL ([`crate::store::backfill`]).

use async_trait::async_trait;
use sqlx::PgPool;

use super::{STYLE, query};
use crate::store::StoreError;
use crate::store::backfill::{CHUNK_ROWS, DatedRow, Undated, UndatedRow, redated};

/// The rows to date, through the time index (`event_at IS NULL` is a range
/// of it).
const CHUNK: &str = "SELECT cluster_id, raft_index, position, received_at, \
     COALESCE(convert_to(event::text, 'UTF8'), event_zstd) AS event, dictionary_id \
     FROM event_log WHERE cluster_id = $1 AND event_at IS NULL AND raft_index > $2 \
     ORDER BY raft_index LIMIT $3";

const FRAME: &str = "SELECT cluster_id, raft_index, position, received_at, \
     COALESCE(convert_to(event::text, 'UTF8'), event_zstd) AS event, dictionary_id \
     FROM event_log WHERE cluster_id = $1 AND raft_index = $2 AND event_at IS NULL \
     ORDER BY position";

const COUNT: &str = "SELECT COUNT(*) FROM event_log WHERE cluster_id = $1 AND event_at IS NULL";

/// One statement for a whole chunk.
const UPDATE: &str = "UPDATE event_log AS e \
     SET event_at = u.event_at, time_source = u.time_source, presence = u.presence \
     FROM UNNEST($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::smallint[]) \
       AS u (cluster_id, raft_index, position, event_at, time_source, presence) \
     WHERE e.cluster_id = u.cluster_id AND e.raft_index = u.raft_index AND e.position = u.position";

/// The pool, seen as an archive with rows to date.
pub(super) struct Backfill<'a>(pub &'a PgPool);

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
        fn column<T>(rows: &[DatedRow], f: impl Fn(&DatedRow) -> T) -> Vec<T> {
            rows.iter().map(f).collect()
        }
        let mut tx = self.0.begin().await?;
        sqlx::query(UPDATE)
            .bind(column(rows, |r| r.cluster_id))
            .bind(column(rows, |r| r.raft_index))
            .bind(column(rows, |r| r.position))
            .bind(column(rows, |r| r.time.at))
            .bind(column(rows, |r| r.time.source.as_str()))
            .bind(column(rows, |r| r.presence))
            .execute(&mut *tx)
            .await?;
        for statement in redated(rows, STYLE) {
            query(statement)?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dictionaries(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, bytes FROM dictionaries WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(self.0)
                .await?,
        )
    }
}
