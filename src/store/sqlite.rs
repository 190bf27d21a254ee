//! The SQLite archive: the embedded default. One file in WAL mode with
//! `synchronous=NORMAL` (a committed batch survives a process crash; a power
//! loss can cost the last batches, which the next run fetches again from
//! Nomad's buffer when it still holds them).

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row, Sqlite, SqliteConnection, SqlitePool};

use tokio_util::sync::CancellationToken;

use super::filter::{Bind, Placeholders, SelectSql, select_events, select_latest};
use super::names::{BatchNames, NameCache};
use super::rows::event_rows;
use super::{Lease, Reconstructions, Store, StoreError, to_i64, to_u64};
use crate::archive::{
    ArchivedEvent, Batch, Cluster, ClusterStatus, CommitStats, Gap, GapKind, PageQuery, RefColumn,
    StatusReport, TopicCount, now_millis,
};
use crate::config::DbUrl;
use crate::nomad::ClusterIdentity;

mod checkpoint;
mod reconstruction;

use checkpoint::Checkpoints;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Page size of new archives. Events average ~1.7 KB: on SQLite's default
/// 4 KiB pages a quarter of each page was left empty and larger events
/// spilled into overflow pages; 16 KiB pages waste ~5 % and write fewer,
/// larger pages. (An existing archive keeps the page size it was created
/// with.) docs/performance.md has the measurements.
const PAGE_SIZE: u32 = 16 * 1024;
/// Page cache per connection, in KiB (SQLite's default is 2 MiB): it holds
/// the index pages a commit updates, so they are not read back and written
/// out more than once per commit.
const CACHE_KIB: i64 = 16 * 1024;

/// Columns bound per event row.
const EVENT_COLUMNS: usize = 13;
/// Rows per INSERT statement (6,656 parameters, under SQLite's 32,766);
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
         key_ref, job_ref, node_ref, eval_ref, deployment_ref, received_at, event) VALUES {}",
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
                if let Writer::Own { conn, .. } = &mut self.conn {
                    *conn = None;
                }
            }
            (Ok(_), Some(checkpoints)) => {
                checkpoints.after_commit(event_rows(batch).map(|r| r.event.raw.len()).sum());
            }
            (Ok(_), None) => {}
        }
        result
    }
}

impl SqliteLease {
    /// Stores the batch in one transaction (see [`Lease::commit`]).
    async fn store(&mut self, cluster: &Cluster, batch: &Batch) -> Result<CommitStats, StoreError> {
        let mut tx = match &mut self.conn {
            Writer::Own { pool, conn } => {
                let conn = match conn {
                    Some(conn) => conn,
                    None => conn.insert(pool.acquire().await?),
                };
                conn.begin().await?
            }
            Writer::Shared(pool) => pool.begin().await?,
        };
        let rows: Vec<_> = event_rows(batch).collect();
        let mut names = BatchNames::new(&mut self.names, &rows);
        resolve_names(&mut tx, &mut names).await?;
        let refs = names.refs(&rows)?;
        let mut inserted = 0;
        let mut rest = rows.as_slice();
        let mut rest_refs = refs.as_slice();
        while !rest.is_empty() {
            let k = ROWS_PER_STATEMENT.min(rest.len()).ilog2() as usize;
            let (chunk, tail) = rest.split_at(1 << k);
            let (chunk_refs, tail_refs) = rest_refs.split_at(chunk.len());
            (rest, rest_refs) = (tail, tail_refs);
            let mut query = sqlx::query(AssertSqlSafe(INSERT_SQL[k].clone()));
            for (row, refs) in chunk.iter().zip(chunk_refs) {
                let ev = row.event;
                query = query
                    .bind(cluster.id)
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
                    .bind(row.received_at)
                    .bind(ev.raw.clone());
            }
            inserted += query.execute(&mut *tx).await?.rows_affected();
        }
        for gap in &batch.gaps {
            sqlx::query(
                "INSERT INTO gaps (cluster_id, from_index, to_index, kind, reason, detected_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(cluster.id)
            .bind(to_i64(gap.from_index))
            .bind(to_i64(gap.to_index))
            .bind(gap.kind.as_str())
            .bind(gap.reason.as_str())
            .bind(gap.detected_at)
            .execute(&mut *tx)
            .await?;
        }
        reconstruction::request(&mut tx, cluster, batch).await?;
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
        tx.commit().await?;
        self.names.remember(names.resolved);
        Ok(CommitStats {
            inserted,
            duplicates: rows.len() as u64 - inserted,
        })
    }
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
        Some(name) => Err(super::names::unresolved(name)),
        None => Ok(()),
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    url: String,
    /// `sqlite::memory:`: one connection and no WAL, so nothing to checkpoint.
    in_memory: bool,
}

impl SqliteStore {
    /// Opens the database (creating the file if needed) and migrates it.
    pub async fn open(url: &DbUrl) -> Result<Self, StoreError> {
        let display = url.to_string();
        let open_error = |detail: String, hint: Option<&'static str>| StoreError::Open {
            url: display.clone(),
            detail,
            hint,
        };
        let (options, max_connections) = match url {
            DbUrl::SqliteMemory => (
                SqliteConnectOptions::from_str("sqlite::memory:")
                    .map_err(|e| open_error(e.to_string(), None))?,
                1,
            ),
            DbUrl::SqliteFile(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    if !parent.is_dir() {
                        return Err(open_error(
                            format!("the directory `{}` does not exist", parent.display()),
                            Some("create it first or choose another path"),
                        ));
                    }
                }
                if path.is_dir() {
                    return Err(open_error(
                        "it is a directory".to_owned(),
                        Some("name a file, for example sqlite://nomad-chronicle.db"),
                    ));
                }
                (
                    SqliteConnectOptions::new()
                        .filename(path)
                        .create_if_missing(true)
                        .page_size(PAGE_SIZE)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        // The writer's lease checkpoints on another
                        // connection: see `checkpoint`.
                        .pragma("wal_autocheckpoint", "0"),
                    4,
                )
            }
            DbUrl::Postgres(_) => {
                return Err(open_error("not an SQLite URL".to_owned(), None));
            }
        };
        let options = options
            .pragma("cache_size", (-CACHE_KIB).to_string())
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .log_slow_statements(log::LevelFilter::Debug, super::SLOW_STATEMENT);
        let pool = connect_pool(options, max_connections).await.map_err(|e| {
            let detail = e.to_string();
            let hint = if detail.contains("not a database") {
                Some("the file exists but is not an SQLite database; choose another path")
            } else if detail.contains("unable to open") || detail.contains("readonly") {
                Some("check that the file and its directory are writable")
            } else {
                None
            };
            open_error(detail, hint)
        })?;
        migrate(&pool, &display).await?;
        Ok(SqliteStore {
            pool,
            url: display,
            in_memory: matches!(url, DbUrl::SqliteMemory),
        })
    }
}

/// Opens the pool. Switching a new file to WAL takes an exclusive lock
/// without waiting for it, so a second process opening the same new file at
/// that moment gets SQLITE_BUSY: that is retried.
async fn connect_pool(
    options: SqliteConnectOptions,
    max_connections: u32,
) -> Result<SqlitePool, sqlx::Error> {
    let mut attempts = 0;
    loop {
        let result = SqlitePoolOptions::new()
            .max_connections(max_connections)
            // An in-memory database lives as long as its connection.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await;
        match result {
            Err(e) if attempts < 20 && super::is_transient(&e) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(25 * attempts)).await;
            }
            result => return result,
        }
    }
}

/// Applies pending migrations, refusing a database from a newer version.
///
/// sqlx takes no lock for SQLite migrations, so two processes opening a new
/// file at once race: the loser fails on a table the winner just created.
/// Running the migrator again then finds the migration applied.
async fn migrate(pool: &SqlitePool, url: &str) -> Result<(), StoreError> {
    let mut attempts = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Err(
                sqlx::migrate::MigrateError::Execute(_)
                | sqlx::migrate::MigrateError::ExecuteMigration(..),
            ) if attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
            }
            result => return result.map_err(|e| migrate_error(url, e)),
        }
    }
}

fn migrate_error(url: &str, e: sqlx::migrate::MigrateError) -> StoreError {
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match e {
        sqlx::migrate::MigrateError::VersionMissing(found) => StoreError::NewerSchema {
            url: url.to_owned(),
            found,
            known,
        },
        sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db))
            if db.message().contains("not a database") =>
        {
            StoreError::Open {
                url: url.to_owned(),
                detail: db.message().to_owned(),
                hint: Some("the file exists but is not an SQLite database; choose another path"),
            }
        }
        other => StoreError::Migrate {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

impl SqliteStore {
    /// Runs a built SELECT of event rows.
    async fn select(&self, select: SelectSql) -> Result<Vec<ArchivedEvent>, StoreError> {
        let mut query = sqlx::query(AssertSqlSafe(select.sql));
        for bind in select.binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| ArchivedEvent {
                index: to_u64(r.get(0)),
                position: u32::try_from(r.get::<i64, _>(1)).unwrap_or_default(),
                topic: r.get(2),
                key: r.get(3),
                namespace: r.get(4),
                received_at: r.get(5),
                raw: r.get(6),
            })
            .collect())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn open_cluster(&self, name: &str, address: Option<&str>) -> Result<Cluster, StoreError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO clusters (name, address, created_at, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET address = COALESCE(excluded.address, clusters.address)",
        )
        .bind(name)
        .bind(address)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.find_cluster(name)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
    }

    async fn find_cluster(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        let row = sqlx::query("SELECT id, name, checkpoint, identity FROM clusters WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| Cluster {
            id: row.get(0),
            name: row.get(1),
            checkpoint: row.get::<Option<i64>, _>(2).map(to_u64),
            identity: row
                .get::<Option<&str>, _>(3)
                .and_then(ClusterIdentity::from_json),
        }))
    }

    async fn lease(
        &self,
        _cluster: &str,
        _shutdown: &CancellationToken,
    ) -> Result<Option<Box<dyn Lease>>, StoreError> {
        // One SQLite file is written by one machine; concurrent writers of the
        // same cluster would be serialized by SQLite's own lock and the
        // idempotent insert, so there is nothing to wait for.
        let (conn, checkpoints) = if self.in_memory {
            (Writer::Shared(self.pool.clone()), None)
        } else {
            (
                Writer::Own {
                    pool: self.pool.clone(),
                    conn: Some(self.pool.acquire().await?),
                },
                Some(Checkpoints::new(self.pool.clone())),
            )
        };
        Ok(Some(Box::new(SqliteLease {
            conn,
            names: NameCache::default(),
            checkpoints,
        })))
    }

    async fn status(&self) -> Result<StatusReport, StoreError> {
        let clusters = sqlx::query(
            "SELECT id, name, address, checkpoint, malformed_lines, identity FROM clusters ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(clusters.len());
        for row in clusters {
            let id: i64 = row.get(0);
            // One aggregate per subquery: SQLite answers each MIN and MAX
            // with one index lookup, where together they read every event.
            let totals = sqlx::query(
                "SELECT (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = ?1), \
                   (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = ?1), \
                   (SELECT MIN(received_at) FROM event_log WHERE cluster_id = ?1), \
                   (SELECT MAX(received_at) FROM event_log WHERE cluster_id = ?1)",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
            let topics: Vec<TopicCount> = sqlx::query(
                "SELECT topic, COUNT(*) FROM event_log WHERE cluster_id = ? GROUP BY topic ORDER BY topic",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| TopicCount {
                topic: r.get(0),
                events: to_u64(r.get(1)),
            })
            .collect();
            let gaps = sqlx::query(
                "SELECT from_index, to_index, kind, reason, detected_at FROM gaps \
                 WHERE cluster_id = ? ORDER BY from_index, id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| gap_from_row(&r))
            .collect();
            out.push(ClusterStatus {
                cluster: row.get(1),
                address: row.get(2),
                events: topics.iter().map(|t| t.events).sum(),
                first_index: totals.get::<Option<i64>, _>(0).map(to_u64),
                last_index: totals.get::<Option<i64>, _>(1).map(to_u64),
                checkpoint: row.get::<Option<i64>, _>(3).map(to_u64),
                identity: row
                    .get::<Option<&str>, _>(5)
                    .and_then(ClusterIdentity::from_json),
                topics,
                gaps,
                malformed_lines: to_u64(row.get(4)),
                first_received_at: totals.get(2),
                last_received_at: totals.get(3),
                reconstructions: Vec::new(),
            });
        }
        let size = sqlx::query(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(StatusReport {
            database: self.url.clone(),
            backend: self.backend(),
            database_bytes: to_u64(size.get(0)),
            clusters: out,
        })
    }

    async fn page(
        &self,
        cluster: &Cluster,
        q: &PageQuery,
    ) -> Result<Vec<ArchivedEvent>, StoreError> {
        self.select(select_events(
            cluster.id,
            q,
            Placeholders::Question,
            "event",
        ))
        .await
    }

    async fn latest(
        &self,
        cluster: &Cluster,
        topics: &[String],
        to_index: Option<u64>,
        until: Option<i64>,
        refs: &[(RefColumn, String)],
    ) -> Result<Vec<ArchivedEvent>, StoreError> {
        let select = select_latest(
            cluster.id,
            topics,
            to_index,
            until,
            refs,
            Placeholders::Question,
            "event",
        );
        self.select(select).await
    }

    async fn gaps(&self, cluster: &Cluster) -> Result<Vec<Gap>, StoreError> {
        let rows = sqlx::query(
            "SELECT from_index, to_index, kind, reason, detected_at FROM gaps \
             WHERE cluster_id = ? ORDER BY from_index, id",
        )
        .bind(cluster.id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| gap_from_row(&r)).collect())
    }

    async fn span(&self, cluster: &Cluster) -> Result<Option<(u64, u64)>, StoreError> {
        // A subquery each: SQLite answers a lone MIN or MAX with one index
        // lookup, and both in one query by reading the cluster's entries.
        let row = sqlx::query(
            "SELECT (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = ?1), \
               (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = ?1)",
        )
        .bind(cluster.id)
        .fetch_one(&self.pool)
        .await?;
        let (first, last): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        Ok(first.zip(last).map(|(a, b)| (to_u64(a), to_u64(b))))
    }

    async fn received_span(
        &self,
        cluster: &Cluster,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(raft_index), MAX(raft_index) FROM event_log INDEXED BY event_log_by_received \
             WHERE cluster_id = ? AND received_at >= ? AND received_at < ?",
        )
        .bind(cluster.id)
        .bind(since.unwrap_or(i64::MIN))
        .bind(until.unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        let (first, last): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        Ok(first.zip(last).map(|(a, b)| (to_u64(a), to_u64(b))))
    }

    async fn node_ids_named(
        &self,
        cluster: &Cluster,
        name: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            // `+ 0`: SQLite, without statistics, would otherwise walk the
            // stream-order index through every event of the cluster instead
            // of the key index through the Node events.
            "SELECT DISTINCT k.name FROM event_log AS e JOIN names AS k ON k.id = e.key_ref \
             WHERE e.cluster_id + 0 = ? AND e.topic = 'Node' \
             AND json_extract(e.event, '$.Payload.Node.Name') = ? ORDER BY k.name LIMIT 20",
        )
        .bind(cluster.id)
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn keys_with_prefix(
        &self,
        cluster: &Cluster,
        topic: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        // Names compare bytewise (BINARY), so a prefix is the index range
        // [prefix, prefix + the highest character); each name in it is
        // checked to be a key of `topic` in the cluster.
        let upper = format!("{prefix}{}", char::MAX);
        Ok(sqlx::query_scalar(
            "SELECT k.name FROM names AS k WHERE k.name >= ? AND k.name < ? \
             AND EXISTS (SELECT 1 FROM event_log AS e \
                         WHERE e.key_ref = k.id AND e.cluster_id = ? AND e.topic = ?) \
             ORDER BY k.name LIMIT ?",
        )
        .bind(prefix)
        .bind(upper)
        .bind(cluster.id)
        .bind(topic)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn cluster_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM clusters ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    fn reconstructions(&self) -> &dyn Reconstructions {
        self
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

fn gap_from_row(r: &sqlx::sqlite::SqliteRow) -> Gap {
    Gap {
        from_index: to_u64(r.get(0)),
        to_index: to_u64(r.get(1)),
        kind: GapKind::parse(r.get::<&str, _>(2)).unwrap_or(GapKind::Buffer),
        reason: r.get(3),
        detected_at: r.get(4),
    }
}
