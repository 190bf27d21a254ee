//! The SQLite writer: a lease that commits batches on a connection of its
//! own, inserting events through a handful of prepared multi-row INSERTs and
//! resolving their IDs through the `names` table.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Connection, Sqlite, SqliteConnection, SqlitePool};

use super::checkpoint::Checkpoints;
use super::{STYLE, SqliteStore, details, query, reconstruction};
use crate::archive::{Batch, Cluster, CommitStats, now_millis};
use crate::nomad::ClusterIdentity;
use crate::store::compress::{Compression, Value};
use crate::store::detail_texts::{self, DetailTexts};
use crate::store::details::{BatchDetails, TaskEventCache};
use crate::store::keyframe::{self, Tracker};
use crate::store::names::{BatchNames, NameCache, RowRefs};
use crate::store::rows::{EventRow, event_rows};
use crate::store::{Lease, StoreError, derived, lives, queries, to_i64};

/// Columns bound per event row.
const EVENT_COLUMNS: usize = 17;
/// Rows per INSERT statement (8,704 parameters, under SQLite's 32,766);
/// remainders use the powers of two below it, so a handful of prepared
/// statements serve every batch size. Each statement is a round trip to
/// sqlx's SQLite thread that waits for the reader's thread to be free: with
/// 64 rows a batch of 5,000 took 79 of them.
const ROWS_PER_STATEMENT: usize = 512;

/// `INSERT_SQL[k]` inserts `2^k` rows.
static INSERT_SQL: LazyLock<Vec<Arc<str>>> = LazyLock::new(|| {
    let mut out = Vec::new();
    let mut rows = 1;
    while rows <= ROWS_PER_STATEMENT {
        out.push(Arc::from(insert_sql(rows)));
        rows *= 2;
    }
    out
});

/// `OR IGNORE` skips an event already archived, as `ON CONFLICT DO NOTHING`
/// would, and also a row with NULL in a NOT NULL column, which the binds
/// below never produce. Unlike ON CONFLICT, it leaves no constraint that
/// could abort the statement halfway (the foreign key is deferred), so SQLite
/// keeps no statement journal: that journal copied every page a statement
/// touched, a third of the writes of a commit.
fn insert_sql(rows: usize) -> String {
    let placeholders = format!("({})", vec!["?"; EVENT_COLUMNS].join(","));
    format!(
        "INSERT OR IGNORE INTO event_log (cluster_id, raft_index, position, topic, type, namespace, \
         key_ref, job_ref, node_ref, eval_ref, deployment_ref, received_at, event, event_at, \
         time_source, presence, dictionary_id) VALUES {}",
        vec![placeholders; rows].join(",")
    )
}

/// Commits on a connection of its own: its page cache keeps the index pages
/// each commit updates (SQLite empties a connection's cache when another
/// connection has written), and WAL checkpoints run on the others.
struct SqliteLease {
    conn: Writer,
    /// IDs this writer resolved recently.
    names: NameCache,
    /// WAL checkpoints beside the writer; none for an in-memory database.
    checkpoints: Option<Checkpoints>,
    /// The newest keyframe and the events stored since.
    keyframes: Tracker,
    /// Task events this writer stored recently.
    task_events: TaskEventCache,
    /// The dictionaries events are compressed with, and their training.
    compression: Compression,
}

/// Where a lease commits.
enum Writer {
    /// A file: a connection held from one commit to the next, and given
    /// back after a failed one, so that a retry does not go on with a
    /// broken connection (the pool tests it, and replaces it if need be).
    Own {
        pool: SqlitePool,
        conn: Option<PoolConnection<Sqlite>>,
    },
    /// `sqlite::memory:` lives in the pool's only connection, which
    /// everything else needs too.
    Shared(SqlitePool),
}

#[async_trait]
impl Lease for SqliteLease {
    async fn commit(
        &mut self,
        cluster: &Cluster,
        batch: &Batch,
    ) -> Result<CommitStats, StoreError> {
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.before_commit().await;
        }
        let result = self.store(cluster, batch).await;
        match (&result, &mut self.checkpoints) {
            (Err(_), _) => {
                self.keyframes = Tracker::Unknown;
                if let Writer::Own { conn, .. } = &mut self.conn {
                    *conn = None;
                }
            }
            (Ok((_, bytes)), Some(checkpoints)) => checkpoints.after_commit(*bytes),
            (Ok(_), None) => {}
        }
        result.map(|(stats, _)| stats)
    }
}

impl SqliteLease {
    /// Compresses the batch, then stores it in one transaction (see
    /// [`Lease::commit`]); returns what was stored and the bytes of its
    /// events as stored.
    async fn store(
        &mut self,
        cluster: &Cluster,
        batch: &Batch,
    ) -> Result<(CommitStats, usize), StoreError> {
        let mut shared = None;
        let conn: &mut PoolConnection<Sqlite> = match &mut self.conn {
            Writer::Own { pool, conn } => match conn {
                Some(conn) => conn,
                None => conn.insert(pool.acquire().await?),
            },
            Writer::Shared(pool) => shared.insert(pool.acquire().await?),
        };
        let values = self
            .compression
            .prepare(&mut **conn, cluster, batch)
            .await?;
        let mut tx = conn.begin().await?;
        let rows: Vec<_> = event_rows(batch).collect();
        let mut names = BatchNames::new(&mut self.names, &rows);
        resolve_names(&mut tx, &mut names).await?;
        let refs = names.refs(&rows)?;
        let inserted = insert_events(&mut tx, cluster.id, &rows, &refs, &values).await?;
        let task_events = self.task_events.batch(&rows, &refs);
        let details_rows = BatchDetails::of(&rows, &refs);
        let mut texts = BatchNames::of_texts(
            &mut self.names,
            detail_texts::texts(&details_rows, &task_events),
        );
        resolve_names(&mut tx, &mut texts).await?;
        details::insert(
            &mut tx,
            cluster.id,
            (&details_rows, &task_events),
            &DetailTexts::resolve(&details_rows, &task_events, |t| texts.id(t))?,
            &lives::of_batch(&rows, &refs),
        )
        .await?;
        for statement in derived::after_batch(cluster.id, &rows, inserted, STYLE) {
            query(statement)?.execute(&mut *tx).await?;
        }
        let learned = task_events.learned();
        for gap in &batch.gaps {
            query(queries::insert_gap(cluster.id, gap, STYLE))?
                .execute(&mut *tx)
                .await?;
        }
        reconstruction::request(&mut tx, cluster, batch).await?;
        keyframe::after_insert(&mut *tx, &mut self.keyframes, cluster.id, batch, inserted).await?;
        update_cluster(&mut tx, cluster, batch).await?;
        tx.commit().await?;
        self.names.remember(names.resolved);
        self.names.remember(texts.resolved);
        self.task_events.remember(learned);
        self.compression.committed(batch, &values);
        let bytes = rows
            .iter()
            .zip(&values)
            .map(|(row, value)| value.zstd().map_or(row.event.raw.len(), <[u8]>::len))
            .sum();
        let stats = CommitStats {
            inserted,
            duplicates: rows.len() as u64 - inserted,
        };
        Ok((stats, bytes))
    }
}

/// Moves the cluster's checkpoint forward and records the batch's
/// malformed lines and identity.
async fn update_cluster(
    tx: &mut SqliteConnection,
    cluster: &Cluster,
    batch: &Batch,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE clusters SET \
           checkpoint = CASE WHEN ? IS NULL THEN checkpoint ELSE MAX(COALESCE(checkpoint, 0), ?) END, \
           malformed_lines = malformed_lines + ?, identity = COALESCE(?, identity), updated_at = ? \
         WHERE id = ?",
    )
    .bind(batch.max_index().map(to_i64))
    .bind(batch.max_index().map(to_i64))
    .bind(to_i64(batch.malformed_lines))
    .bind(batch.identity.as_ref().map(ClusterIdentity::to_json))
    .bind(now_millis())
    .bind(cluster.id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts `rows` (with their resolved `refs` and stored `values`, in the
/// same order) in
/// statements of [`ROWS_PER_STATEMENT`] rows and then powers of two; returns
/// how many were new.
async fn insert_events(
    tx: &mut SqliteConnection,
    cluster_id: i64,
    rows: &[EventRow<'_>],
    refs: &[RowRefs],
    values: &[Value],
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    let mut start = 0;
    while start < rows.len() {
        let k = ROWS_PER_STATEMENT.min(rows.len() - start).ilog2() as usize;
        let chunk = start..start + (1 << k);
        start = chunk.end;
        let mut query = sqlx::query(AssertSqlSafe(INSERT_SQL[k].clone()));
        let chunk = rows[chunk.clone()]
            .iter()
            .zip(&refs[chunk.clone()])
            .zip(&values[chunk]);
        for ((row, refs), value) in chunk {
            let ev = row.event;
            query = query
                .bind(cluster_id)
                .bind(row.index)
                .bind(row.position)
                .bind(ev.topic.as_str())
                .bind(ev.event_type.as_str())
                .bind(ev.namespace.as_str())
                .bind(refs.key)
                .bind(refs.job)
                .bind(refs.node)
                .bind(refs.eval)
                .bind(refs.deployment)
                .bind(row.received_at);
            query = match value.zstd() {
                Some(frame) => query.bind(frame),
                None => query.bind(ev.raw.clone()),
            };
            query = query
                .bind(row.time.at)
                .bind(row.time.source.as_str())
                .bind(row.presence())
                .bind(value.dictionary_id());
        }
        inserted += query.execute(&mut *tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// Finds the integers of the batch's IDs the cache did not know, adding the
/// IDs `names` does not hold yet. The lists go in as one JSON array each, so
/// one prepared statement serves any number, and the answer comes back as
/// one JSON array too: sqlx hands SQLite rows over from its worker thread a
/// few at a time, and while the reader keeps this thread busy each hand-over
/// waits for it (a batch adds about a thousand new IDs).
async fn resolve_names(
    tx: &mut SqliteConnection,
    names: &mut BatchNames<'_>,
) -> Result<(), StoreError> {
    let wanted = names.unresolved();
    if wanted.is_empty() {
        return Ok(());
    }
    let list = serde_json::to_string(&wanted).unwrap_or_default();
    // OR IGNORE rather than ON CONFLICT: see `insert_sql`.
    sqlx::query("INSERT OR IGNORE INTO names (name) SELECT value FROM json_each(?)")
        .bind(&list)
        .execute(&mut *tx)
        .await?;
    let found: String = sqlx::query_scalar(
        "SELECT json_group_array(json_array(id, name)) FROM names \
         WHERE name IN (SELECT value FROM json_each(?))",
    )
    .bind(&list)
    .fetch_one(&mut *tx)
    .await?;
    let found: Vec<(i64, String)> = serde_json::from_str(&found).map_err(|e| {
        StoreError::Query(sqlx::Error::Protocol(format!(
            "SQLite returned the IDs of `names` as unreadable JSON: {e}"
        )))
    })?;
    for (id, name) in &found {
        names.found(name, *id);
    }
    match names.unresolved().first() {
        Some(name) => Err(crate::store::names::unresolved(name)),
        None => Ok(()),
    }
}

/// The writer's lease. One SQLite file is written by one machine;
/// concurrent writers of the same cluster would be serialized by SQLite's
/// own lock and the idempotent insert, so there is nothing to wait for.
pub(super) async fn lease(store: &SqliteStore) -> Result<Box<dyn Lease>, StoreError> {
    let (conn, checkpoints) = if store.in_memory {
        (Writer::Shared(store.pool.clone()), None)
    } else {
        (
            Writer::Own {
                pool: store.pool.clone(),
                conn: Some(store.pool.acquire().await?),
            },
            Some(Checkpoints::new(store.pool.clone())),
        )
    };
    Ok(Box::new(SqliteLease {
        conn,
        names: NameCache::default(),
        checkpoints,
        keyframes: Tracker::Unknown,
        task_events: TaskEventCache::default(),
        compression: Compression::new(store.compression()),
    }))
}
