//! The PostgreSQL writer: a session advisory lock per cluster, waited for
//! while another ingester holds it, and the commits that run on the
//! connection holding it.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, Row};
use tokio_util::sync::CancellationToken;

use super::{PgStore, STYLE, copy, details, query, reconstruction};
use crate::archive::{Batch, Cluster, CommitStats, now_millis};
use crate::backoff::Backoff;
use crate::nomad::ClusterIdentity;
use crate::store::compress::{Compression, Value};
use crate::store::detail_texts::{self, DetailTexts};
use crate::store::details::{BatchDetails, TaskEventCache};
use crate::store::keyframe::{self, Tracker};
use crate::store::names::{BatchNames, NameCache, RowRefs};
use crate::store::rows::{EventRow, event_rows};
use crate::store::{Lease, StoreError, derived, is_transient, lives, queries, to_i64};

/// How often a standby ingester asks for the writer lock.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Waits until this process holds the writer lock of `cluster` (see
/// [`crate::store::Store::lease`]); `None` if `shutdown` fired first.
pub(super) async fn acquire(
    store: &PgStore,
    cluster: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Box<dyn Lease>>, StoreError> {
    let mut backoff = Backoff::default();
    let mut standing_by = false;
    let mut conn: Option<PgConnection> = None;
    loop {
        let attempt = async {
            if conn.is_none() {
                conn = Some(PgConnection::connect_with(&store.options).await?);
            }
            match conn.as_mut() {
                Some(c) => try_lock(c, cluster).await,
                None => Ok(false),
            }
        };
        let delay = match attempt.await {
            Ok(true) => {
                if standing_by {
                    tracing::info!(cluster, "Took over as the writer of this cluster");
                }
                return Ok(conn.take().map(|conn| {
                    Box::new(PgLease {
                        conn,
                        names: NameCache::default(),
                        keyframes: Tracker::Unknown,
                        task_events: TaskEventCache::default(),
                        compression: Compression::new(store.compression()),
                    }) as Box<dyn Lease>
                }));
            }
            Ok(false) => {
                if !standing_by {
                    tracing::info!(
                        cluster,
                        "Another ingester is writing this cluster; standing by to take over"
                    );
                    standing_by = true;
                }
                backoff.reset();
                STANDBY_POLL
            }
            Err(e) if is_transient(&e) => {
                conn = None;
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "Database unavailable; retrying");
                delay
            }
            Err(e) => return Err(e.into()),
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One attempt at the cluster's writer lock on `conn`.
async fn try_lock(conn: &mut PgConnection, cluster: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(lock_name(cluster))
        .fetch_one(conn)
        .await
}

/// The advisory lock's name; hashed by PostgreSQL itself, so every version of
/// nomad-chronicle on every machine agrees on the key.
fn lock_name(cluster: &str) -> String {
    format!("nomad-chronicle/cluster/{cluster}")
}

/// Holds the advisory lock on `conn` and commits on it.
struct PgLease {
    conn: PgConnection,
    /// IDs this writer resolved recently.
    names: NameCache,
    /// The newest keyframe and the events stored since.
    keyframes: Tracker,
    /// Task events this writer stored recently.
    task_events: TaskEventCache,
    /// The dictionaries events are compressed with, and their training.
    compression: Compression,
}

#[async_trait]
impl Lease for PgLease {
    async fn commit(
        &mut self,
        cluster: &Cluster,
        batch: &Batch,
    ) -> Result<CommitStats, StoreError> {
        let committed = async {
            let values = self
                .compression
                .prepare(&mut self.conn, cluster, batch)
                .await?;
            let writer = Writer {
                names: &mut self.names,
                keyframes: &mut self.keyframes,
                task_events: &mut self.task_events,
                values: &values,
            };
            let stats = commit(&mut self.conn, writer, cluster, batch).await?;
            self.compression.committed(batch, &values);
            Ok(stats)
        }
        .await;
        if committed.is_err() {
            self.keyframes = Tracker::Unknown;
        }
        match committed {
            // Without its connection the lock is gone: another ingester may
            // hold it by now, so this one must not write again.
            Err(StoreError::Query(e)) if is_transient(&e) => Err(StoreError::LeaseLost {
                detail: e.to_string(),
            }),
            other => other,
        }
    }
}

/// How a batch's events go into `event_log`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Insert {
    /// Binary COPY of the events not stored yet ([`copy`]): the fast way.
    Copy,
    /// `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO NOTHING`: for when
    /// another writer stored some of the batch while the COPY ran.
    OnConflict,
}

/// What a commit keeps from one to the next, and the batch's stored values
/// (in [`event_rows`] order).
struct Writer<'a> {
    names: &'a mut NameCache,
    keyframes: &'a mut Tracker,
    task_events: &'a mut TaskEventCache,
    values: &'a [Value],
}

async fn commit(
    conn: &mut PgConnection,
    mut writer: Writer<'_>,
    cluster: &Cluster,
    batch: &Batch,
) -> Result<CommitStats, StoreError> {
    match commit_with(conn, &mut writer, cluster, batch, Insert::Copy).await {
        // The transaction is rolled back; nothing of it stays.
        Err(StoreError::Query(e)) if is_unique_violation(&e) => {
            tracing::debug!(error = %e, "Events stored meanwhile by another writer; storing the batch again");
            // The keyframes' count went up with the failed attempt.
            *writer.keyframes = Tracker::Unknown;
            commit_with(conn, &mut writer, cluster, batch, Insert::OnConflict).await
        }
        other => other,
    }
}

/// `unique_violation`: a row with the same identity is already stored.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

async fn commit_with(
    conn: &mut PgConnection,
    writer: &mut Writer<'_>,
    cluster: &Cluster,
    batch: &Batch,
    how: Insert,
) -> Result<CommitStats, StoreError> {
    let rows: Vec<_> = event_rows(batch).collect();
    let mut tx = conn.begin().await?;
    update_cluster(&mut tx, cluster, batch).await?;
    let mut names = BatchNames::new(writer.names, &rows);
    resolve_names(&mut tx, &mut names).await?;
    let mut inserted = 0;
    let mut learned = None;
    // The task events' texts as PostgreSQL stores them, and their integers.
    let storable: Vec<_>;
    let mut text_names = None;
    if !rows.is_empty() {
        let refs = names.refs(&rows)?;
        inserted = match how {
            Insert::Copy => {
                copy::insert_new(&mut tx, cluster.id, &rows, &refs, writer.values).await?
            }
            Insert::OnConflict => {
                insert_on_conflict(&mut tx, cluster.id, &rows, &refs, writer.values).await?
            }
        };
        let task_events = writer.task_events.batch(&rows, &refs);
        let details_rows = BatchDetails::of(&rows, &refs);
        storable = details::storable_texts(detail_texts::texts(&details_rows, &task_events));
        let mut texts = BatchNames::of_texts(writer.names, storable.iter().map(|t| &**t).collect());
        resolve_names(&mut tx, &mut texts).await?;
        details::insert(
            &mut tx,
            cluster.id,
            (&details_rows, &task_events),
            &DetailTexts::resolve(&details_rows, &task_events, |t| {
                texts.id(&details::storable(t))
            })?,
            &lives::of_batch(&rows, &refs),
        )
        .await?;
        for statement in derived::after_batch(cluster.id, &rows, inserted, STYLE) {
            query(statement)?.execute(&mut *tx).await?;
        }
        text_names = Some(texts.resolved);
        learned = Some(task_events.learned());
    }
    for gap in &batch.gaps {
        query(queries::insert_gap(cluster.id, gap, STYLE))?
            .execute(&mut *tx)
            .await?;
    }
    reconstruction::request(&mut tx, cluster, batch).await?;
    keyframe::after_insert(&mut *tx, writer.keyframes, cluster.id, batch, inserted).await?;
    tx.commit().await?;
    writer.names.remember(names.resolved);
    if let Some(text_names) = text_names {
        writer.names.remember(text_names);
    }
    if let Some(task_events) = learned {
        writer.task_events.remember(task_events);
    }
    Ok(CommitStats {
        inserted,
        duplicates: rows.len() as u64 - inserted,
    })
}

/// Moves the cluster's checkpoint forward and records the batch's
/// malformed lines and identity, first in the batch's transaction: the
/// cluster's row stays locked until the commit, as a prune step locks it
/// first too, so a batch and a prune of the same cluster take turns (each
/// holding rows the other wanted, the task events a batch upserts and the
/// cluster it updated last, was a deadlock).
async fn update_cluster(
    tx: &mut PgConnection,
    cluster: &Cluster,
    batch: &Batch,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE clusters SET \
           checkpoint = CASE WHEN $1::bigint IS NULL THEN checkpoint ELSE GREATEST(COALESCE(checkpoint, 0), $1) END, \
           malformed_lines = malformed_lines + $2, updated_at = $3, identity = COALESCE($5, identity) \
         WHERE id = $4",
    )
    .bind(batch.max_index().map(to_i64))
    .bind(to_i64(batch.malformed_lines))
    .bind(now_millis())
    .bind(cluster.id)
    .bind(batch.identity.as_ref().map(ClusterIdentity::to_json))
    .execute(&mut *tx)
    .await?;
    // No foreign key checks the events' cluster (migration 0009): the row
    // updated here is the check.
    if updated.rows_affected() != 1 {
        return Err(StoreError::ClusterMissing {
            cluster: cluster.name.clone(),
        });
    }
    Ok(())
}

/// Stores the events of `rows` not stored yet with one `INSERT … SELECT FROM
/// UNNEST(…) ON CONFLICT DO NOTHING`; returns how many were stored.
async fn insert_on_conflict(
    conn: &mut PgConnection,
    cluster_id: i64,
    rows: &[EventRow<'_>],
    refs: &[RowRefs],
    values: &[Value],
) -> Result<u64, sqlx::Error> {
    fn column<'a, T>(rows: &[EventRow<'a>], f: impl Fn(&EventRow<'a>) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    fn ids<T>(refs: &[RowRefs], f: impl Fn(&RowRefs) -> T) -> Vec<T> {
        refs.iter().map(f).collect()
    }
    Ok(sqlx::query(
        "INSERT INTO event_log (cluster_id, raft_index, position, topic, type, namespace, \
           key_ref, job_ref, node_ref, eval_ref, deployment_ref, received_at, event, event_at, \
           time_source, presence, event_zstd, dictionary_id) \
         SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], \
           $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], \
           $13::text[]::json[], $14::bigint[], $15::text[], $16::smallint[], $17::bytea[], \
           $18::bigint[]) AS r \
         ON CONFLICT DO NOTHING",
    )
    .bind(cluster_id)
    .bind(column(rows, |r| r.index))
    .bind(column(rows, |r| r.position))
    .bind(column(rows, |r| r.event.topic.as_str()))
    .bind(column(rows, |r| r.event.event_type.as_str()))
    .bind(column(rows, |r| r.event.namespace.as_str()))
    .bind(ids(refs, |r| r.key))
    .bind(ids(refs, |r| r.job))
    .bind(ids(refs, |r| r.node))
    .bind(ids(refs, |r| r.eval))
    .bind(ids(refs, |r| r.deployment))
    .bind(column(rows, |r| r.received_at))
    .bind(
        rows.iter()
            .zip(values)
            .map(|(r, v)| v.zstd().is_none().then_some(&*r.event.raw))
            .collect::<Vec<_>>(),
    )
    .bind(column(rows, |r| r.time.at))
    .bind(column(rows, |r| r.time.source.as_str()))
    .bind(column(rows, EventRow::presence))
    .bind(values.iter().map(Value::zstd).collect::<Vec<_>>())
    .bind(values.iter().map(Value::dictionary_id).collect::<Vec<_>>())
    .execute(conn)
    .await?
    .rows_affected())
}

/// Finds the integers of the batch's IDs the cache did not know, adding the
/// IDs `names` does not hold yet. An ID another writer is adding at the same
/// moment is waited for by ON CONFLICT, then found by the second look.
async fn resolve_names(
    tx: &mut PgConnection,
    names: &mut BatchNames<'_>,
) -> Result<(), StoreError> {
    for sql in [
        "SELECT id, name FROM names WHERE name = ANY($1::text[])",
        "INSERT INTO names (name) SELECT * FROM UNNEST($1::text[]) \
         ON CONFLICT DO NOTHING RETURNING id, name",
        "SELECT id, name FROM names WHERE name = ANY($1::text[])",
    ] {
        let wanted = names.unresolved();
        if wanted.is_empty() {
            break;
        }
        // Read by name but borrowed from the row: a batch resolves up to
        // thousands of IDs, and none of them needs a copy of its own.
        let found = sqlx::query(sql).bind(wanted).fetch_all(&mut *tx).await?;
        for row in found {
            names.found(row.try_get::<&str, _>("name")?, row.try_get("id")?);
        }
    }
    match names.unresolved().first() {
        Some(name) => Err(crate::store::names::unresolved(name)),
        None => Ok(()),
    }
}
