//! `compact` on PostgreSQL ([`Compact`]): plain events read in stream
//! order, re-encoded ones written back by their identity with one UPDATE per
//! chunk, and a plain `VACUUM event_log` at the end; with `--vacuum`, the
//! archive's indexes rebuilt first ([`rebuild_indexes`]).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, PgPool};

use super::PgStore;
use crate::store::StoreError;
use crate::store::compact::{CHUNK_ROWS, Compact, PlainRow, Rewritten};
use crate::store::compress::training::{Samples, Trained};
use crate::store::compress::{Ledger, StoredDictionary};
use crate::store::prune::PER_EVENT_TABLES;

#[async_trait]
impl Compact for PgStore {
    async fn plain_counts(&self, cluster_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT topic, COUNT(*) FROM event_log \
             WHERE cluster_id = $1 AND dictionary_id IS NULL AND block_id IS NULL GROUP BY topic ORDER BY topic",
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
            "SELECT raft_index, event::text FROM event_log \
             WHERE cluster_id = $1 AND topic = $2 AND dictionary_id IS NULL AND block_id IS NULL \
             ORDER BY raft_index DESC, position DESC LIMIT $3",
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
            "SELECT raft_index, position, topic, namespace, key_ref, event::text AS event \
             FROM event_log \
             WHERE cluster_id = $1 AND (raft_index, position) > ($2, $3) AND dictionary_id IS NULL AND block_id IS NULL \
             ORDER BY raft_index, position LIMIT $4",
        )
        .bind(cluster_id)
        .bind(after.0)
        .bind(after.1)
        .bind(CHUNK_ROWS)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn rewrite(&self, cluster_id: i64, rows: &[Rewritten]) -> Result<(), StoreError> {
        fn column<'a, T>(rows: &'a [Rewritten], f: impl Fn(&'a Rewritten) -> T) -> Vec<T> {
            rows.iter().map(f).collect()
        }
        sqlx::query(
            "UPDATE event_log AS e SET event = NULL, event_zstd = u.z, dictionary_id = u.d \
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bytea[], \
               $7::bigint[]) AS u (i, t, n, k, z, d) \
             WHERE e.cluster_id = $1 AND e.raft_index = u.i AND e.topic = u.t \
             AND e.namespace = u.n AND e.key_ref = u.k AND e.dictionary_id IS NULL AND e.block_id IS NULL",
        )
        .bind(cluster_id)
        .bind(column(rows, |r| r.raft_index))
        .bind(column(rows, |r| r.topic.as_str()))
        .bind(column(rows, |r| r.namespace.as_str()))
        .bind(column(rows, |r| r.key_ref))
        .bind(column(rows, |r| r.bytes.as_slice()))
        .bind(column(rows, |r| r.dictionary_id))
        .execute(&self.pool)
        .await?;
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
            rebuild_indexes(&self.pool).await?;
        }
        sqlx::query("VACUUM event_log").execute(&self.pool).await?;
        Ok(())
    }
}

/// The tables whose indexes `compact --vacuum` rebuilds: every archive
/// table whose rows come in stream order while its indexes are keyed by
/// object, time or text, which leaves their pages about a third empty
/// (docs/performance.md, "What the archive keeps beside the events").
const REINDEXED: [&str; 4] = ["event_log", "task_event_log", "allocation_lives", "names"];

/// Rebuilds the indexes of [`REINDEXED`] and [`PER_EVENT_TABLES`] with
/// `REINDEX TABLE CONCURRENTLY`, which neither readers nor writers wait
/// for, after dropping what an interrupted rebuild left behind
/// ([`drop_leftovers`]). One that fails leaves such an index too, dropped
/// by the next run.
async fn rebuild_indexes(pool: &PgPool) -> Result<(), StoreError> {
    drop_leftovers(pool).await?;
    for table in REINDEXED.iter().chain(PER_EVENT_TABLES) {
        let before = indexes_size(pool, table).await?;
        // A table name of this list, not a value: nothing to bind.
        let sql = AssertSqlSafe(format!("REINDEX TABLE CONCURRENTLY {table}"));
        sqlx::query(sql).execute(pool).await.map_err(|e| {
            owned_by_another(e, || {
                format!(
                    "table `{table}` (or, from PostgreSQL 17, a role granted MAINTAIN on \
                         it) rebuild its indexes"
                )
            })
        })?;
        let after = indexes_size(pool, table).await?;
        tracing::info!(
            table,
            before_mb = format!("{:.1}", before as f64 / 1e6),
            after_mb = format!("{:.1}", after as f64 / 1e6),
            "Rebuilt the indexes"
        );
    }
    Ok(())
}

/// Drops the invalid indexes an interrupted `REINDEX … CONCURRENTLY` of
/// the archive's schema leaves: its half-built copy (`…_ccnew`) or the
/// original it had swapped out (`…_ccold`), as PostgreSQL's manual says
/// to. Both are invalid, so no statement reads them, but every insert
/// still writes them.
async fn drop_leftovers(pool: &PgPool) -> Result<(), StoreError> {
    let leftovers: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid AND n.nspname = current_schema() \
           AND (c.relname LIKE '%\\_ccnew%' OR c.relname LIKE '%\\_ccold%')",
    )
    .fetch_all(pool)
    .await?;
    for name in leftovers {
        tracing::warn!(
            index = name,
            "Dropping what an interrupted index rebuild left"
        );
        let quoted = name.replace('"', "\"\"");
        let sql = AssertSqlSafe(format!("DROP INDEX CONCURRENTLY IF EXISTS \"{quoted}\""));
        sqlx::query(sql).execute(pool).await.map_err(|e| {
            owned_by_another(e, || {
                format!("index `{name}` drop it (an interrupted rebuild left it)")
            })
        })?;
    }
    Ok(())
}

/// `e`, or [`StoreError::NotOwner`] saying who may do `what` (an object
/// and the action) when PostgreSQL refused it for want of the privilege
/// (SQLSTATE 42501: a table's owner may reindex it and drop its indexes).
fn owned_by_another(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => {
            StoreError::NotOwner { what: what() }
        }
        _ => StoreError::Query(e),
    }
}

/// The bytes of `table`'s indexes.
async fn indexes_size(pool: &PgPool, table: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT CAST(COALESCE(pg_indexes_size(to_regclass($1)), 0) AS BIGINT)")
            .bind(table)
            .fetch_one(pool)
            .await?,
    )
}
