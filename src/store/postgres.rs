//! The PostgreSQL archive: for teams that archive many clusters centrally and
//! report on them from BI tools. A batch's events go in with one binary
//! `COPY` (`copy.rs`; one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO
//! NOTHING` when another writer got in between), and a cluster has one
//! writer at a time: a session advisory lock, held by the connection that
//! also runs every commit.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;

use super::filter::{Bind, Placeholders, SelectSql, select_events, select_latest};
use super::names::{BatchNames, NameCache, RowRefs};
use super::rows::{EventRow, event_rows};
use super::{Lease, Reconstructions, Store, StoreError, is_transient, to_i64, to_u64};
use crate::archive::{
    ArchivedEvent, Batch, Cluster, ClusterStatus, CommitStats, Gap, GapKind, PageQuery, RefColumn,
    StatusReport, TopicCount, now_millis,
};
use crate::backoff::Backoff;
use crate::config::DbUrl;
use crate::nomad::ClusterIdentity;

mod copy;
mod reconstruction;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How often a standby ingester asks for the writer lock.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    /// Reads and cluster bookkeeping.
    pool: PgPool,
    /// For the dedicated connections that hold writer locks.
    options: PgConnectOptions,
    /// The URL with its password masked, for messages.
    url: String,
}

impl PgStore {
    /// Connects and migrates. Unlike a connection lost later (which is
    /// retried), a failure here is reported at once: a wrong password, an
    /// unknown database or an unreachable host needs the user.
    pub async fn open(url: &DbUrl) -> Result<Self, StoreError> {
        let display = url.to_string();
        let DbUrl::Postgres(secret) = url else {
            return Err(StoreError::Open {
                url: display,
                detail: "not a PostgreSQL URL".to_owned(),
                hint: None,
            });
        };
        let options = PgConnectOptions::from_str(secret.expose())
            .map_err(|e| open_error(&display, e))?
            .application_name("nomad-chronicle")
            .log_slow_statements(log::LevelFilter::Debug, super::SLOW_STATEMENT);
        // One direct connection first: the pool would retry a refused or
        // rejected connection until its timeout and report only that.
        PgConnection::connect_with(&options)
            .await
            .map_err(|e| open_error(&display, e))?
            .close()
            .await
            .map_err(|e| open_error(&display, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(&display, e))?;
        migrate(&pool, &display).await?;
        Ok(PgStore {
            pool,
            options,
            url: display,
        })
    }

    /// One attempt at the cluster's writer lock on `conn`.
    async fn try_lock(conn: &mut PgConnection, cluster: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(lock_name(cluster))
            .fetch_one(conn)
            .await
    }
}

/// The advisory lock's name; hashed by PostgreSQL itself, so every version of
/// nomad-chronicle on every machine agrees on the key.
fn lock_name(cluster: &str) -> String {
    format!("nomad-chronicle/cluster/{cluster}")
}

/// One clear message per way opening can fail.
fn open_error(url: &str, e: sqlx::Error) -> StoreError {
    let (detail, hint) = match &e {
        sqlx::Error::Database(db) => {
            let hint = match db.code().as_deref() {
                Some("28P01") => Some("check the user name and password in --db"),
                Some("28000") => Some("the server refused this user or host; check pg_hba.conf"),
                Some("3D000") => Some("create the database first, e.g. `createdb NAME`"),
                Some("42501") => Some("the user may not create tables in this database"),
                _ => None,
            };
            (db.message().to_owned(), hint)
        }
        sqlx::Error::Io(io) => (
            io.to_string(),
            Some("is PostgreSQL running there? check the host and port in --db"),
        ),
        sqlx::Error::PoolTimedOut => (
            "timed out connecting".to_owned(),
            Some("is the host reachable? check the host and port in --db"),
        ),
        sqlx::Error::Tls(tls) => (tls.to_string(), Some("check sslmode in --db")),
        sqlx::Error::Configuration(c) => (c.to_string(), Some("check the URL's syntax")),
        other => (other.to_string(), None),
    };
    StoreError::Open {
        url: url.to_owned(),
        detail,
        hint,
    }
}

async fn migrate(pool: &PgPool, url: &str) -> Result<(), StoreError> {
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::VersionMissing(found) => StoreError::NewerSchema {
            url: url.to_owned(),
            found,
            known,
        },
        other => StoreError::Migrate {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    })
}

/// Holds the advisory lock on `conn` and commits on it.
struct PgLease {
    conn: PgConnection,
    /// IDs this writer resolved recently.
    names: NameCache,
}

#[async_trait]
impl Lease for PgLease {
    async fn commit(
        &mut self,
        cluster: &Cluster,
        batch: &Batch,
    ) -> Result<CommitStats, StoreError> {
        match commit(&mut self.conn, &mut self.names, cluster, batch).await {
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

async fn commit(
    conn: &mut PgConnection,
    cache: &mut NameCache,
    cluster: &Cluster,
    batch: &Batch,
) -> Result<CommitStats, StoreError> {
    match commit_with(conn, cache, cluster, batch, Insert::Copy).await {
        // The transaction is rolled back; nothing of it stays.
        Err(StoreError::Query(e)) if is_unique_violation(&e) => {
            tracing::debug!(error = %e, "Events stored meanwhile by another writer; storing the batch again");
            commit_with(conn, cache, cluster, batch, Insert::OnConflict).await
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
    cache: &mut NameCache,
    cluster: &Cluster,
    batch: &Batch,
    how: Insert,
) -> Result<CommitStats, StoreError> {
    let rows: Vec<_> = event_rows(batch).collect();
    let mut tx = conn.begin().await?;
    let mut names = BatchNames::new(cache, &rows);
    resolve_names(&mut tx, &mut names).await?;
    let mut inserted = 0;
    if !rows.is_empty() {
        let refs = names.refs(&rows)?;
        inserted = match how {
            Insert::Copy => copy::insert_new(&mut tx, cluster.id, &rows, &refs).await?,
            Insert::OnConflict => insert_on_conflict(&mut tx, cluster.id, &rows, &refs).await?,
        };
    }
    for gap in &batch.gaps {
        sqlx::query(
            "INSERT INTO gaps (cluster_id, from_index, to_index, kind, reason, detected_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
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
    // updated here is the check, and stays locked until the commit.
    if updated.rows_affected() != 1 {
        return Err(StoreError::ClusterMissing {
            cluster: cluster.name.clone(),
        });
    }
    tx.commit().await?;
    cache.remember(names.resolved);
    Ok(CommitStats {
        inserted,
        duplicates: rows.len() as u64 - inserted,
    })
}

/// Stores the events of `rows` not stored yet with one `INSERT … SELECT FROM
/// UNNEST(…) ON CONFLICT DO NOTHING`; returns how many were stored.
async fn insert_on_conflict(
    conn: &mut PgConnection,
    cluster_id: i64,
    rows: &[EventRow<'_>],
    refs: &[RowRefs],
) -> Result<u64, sqlx::Error> {
    fn column<'a, T>(rows: &[EventRow<'a>], f: impl Fn(&EventRow<'a>) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    fn ids<T>(refs: &[RowRefs], f: impl Fn(&RowRefs) -> T) -> Vec<T> {
        refs.iter().map(f).collect()
    }
    Ok(sqlx::query(
        "INSERT INTO event_log (cluster_id, raft_index, position, topic, type, namespace, \
           key_ref, job_ref, node_ref, eval_ref, deployment_ref, received_at, event) \
         SELECT $1, r.* FROM UNNEST($2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], \
           $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], \
           $13::text[]::json[]) AS r \
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
    .bind(column(rows, |r| &*r.event.raw))
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
        let found = sqlx::query(sql).bind(wanted).fetch_all(&mut *tx).await?;
        for row in found {
            names.found(row.get::<&str, _>(1), row.get(0));
        }
    }
    match names.unresolved().first() {
        Some(name) => Err(super::names::unresolved(name)),
        None => Ok(()),
    }
}

impl PgStore {
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
                position: u32::try_from(r.get::<i32, _>(1)).unwrap_or_default(),
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
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn open_cluster(&self, name: &str, address: Option<&str>) -> Result<Cluster, StoreError> {
        let now = now_millis();
        let row = sqlx::query(
            "INSERT INTO clusters (name, address, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET address = COALESCE(EXCLUDED.address, clusters.address) \
             RETURNING id, name, checkpoint, identity",
        )
        .bind(name)
        .bind(address)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(cluster_from_row(&row))
    }

    async fn find_cluster(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        let row =
            sqlx::query("SELECT id, name, checkpoint, identity FROM clusters WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| cluster_from_row(&row)))
    }

    async fn lease(
        &self,
        cluster: &str,
        shutdown: &CancellationToken,
    ) -> Result<Option<Box<dyn Lease>>, StoreError> {
        let mut backoff = Backoff::default();
        let mut standing_by = false;
        let mut conn: Option<PgConnection> = None;
        loop {
            let attempt = async {
                if conn.is_none() {
                    conn = Some(PgConnection::connect_with(&self.options).await?);
                }
                match conn.as_mut() {
                    Some(c) => Self::try_lock(c, cluster).await,
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

    async fn status(&self) -> Result<StatusReport, StoreError> {
        let clusters = sqlx::query(
            // MIN and MAX each in a subquery of its own: PostgreSQL answers
            // each with one index lookup, where together they read every
            // event. The count is the topics' sum.
            "SELECT c.id, c.name, c.address, c.checkpoint, c.malformed_lines, \
               (SELECT MIN(raft_index) FROM event_log WHERE cluster_id = c.id), \
               (SELECT MAX(raft_index) FROM event_log WHERE cluster_id = c.id), \
               (SELECT MIN(received_at) FROM event_log WHERE cluster_id = c.id), \
               (SELECT MAX(received_at) FROM event_log WHERE cluster_id = c.id), \
               c.identity \
             FROM clusters c ORDER BY c.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(clusters.len());
        for row in clusters {
            let id: i64 = row.get(0);
            let topics: Vec<TopicCount> = sqlx::query(
                "SELECT topic, COUNT(*) FROM event_log WHERE cluster_id = $1 GROUP BY topic ORDER BY topic",
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
                 WHERE cluster_id = $1 ORDER BY from_index, id",
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
                checkpoint: row.get::<Option<i64>, _>(3).map(to_u64),
                identity: row
                    .get::<Option<&str>, _>(9)
                    .and_then(ClusterIdentity::from_json),
                malformed_lines: to_u64(row.get(4)),
                events: topics.iter().map(|t| t.events).sum(),
                first_index: row.get::<Option<i64>, _>(5).map(to_u64),
                last_index: row.get::<Option<i64>, _>(6).map(to_u64),
                first_received_at: row.get(7),
                last_received_at: row.get(8),
                topics,
                gaps,
                reconstructions: Vec::new(),
            });
        }
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await?;
        Ok(StatusReport {
            database: self.url.clone(),
            backend: self.backend(),
            database_bytes: to_u64(size),
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
            Placeholders::Numbered,
            "event::text",
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
            Placeholders::Numbered,
            "e.event::text",
        );
        self.select(select).await
    }

    async fn gaps(&self, cluster: &Cluster) -> Result<Vec<Gap>, StoreError> {
        let rows = sqlx::query(
            "SELECT from_index, to_index, kind, reason, detected_at FROM gaps \
             WHERE cluster_id = $1 ORDER BY from_index, id",
        )
        .bind(cluster.id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| gap_from_row(&r)).collect())
    }

    async fn span(&self, cluster: &Cluster) -> Result<Option<(u64, u64)>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(raft_index), MAX(raft_index) FROM event_log WHERE cluster_id = $1",
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
            "SELECT MIN(raft_index), MAX(raft_index) FROM event_log \
             WHERE cluster_id = $1 AND received_at >= $2 AND received_at < $3",
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
        // Migration 0008's key index, led by the topic, finds the Node events.
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT k.name FROM event_log AS e JOIN names AS k ON k.id = e.key_ref \
             WHERE e.cluster_id = $1 AND e.topic = 'Node' \
             AND e.event->'Payload'->'Node'->>'Name' = $2 ORDER BY k.name LIMIT 20",
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
        // Names compare bytewise (COLLATE "C"), so a prefix is the index
        // range [prefix, prefix + the highest character); each name in it is
        // checked to be a key of `topic` in the cluster.
        let upper = format!("{prefix}{}", char::MAX);
        Ok(sqlx::query_scalar(
            "SELECT k.name FROM names AS k WHERE k.name >= $1 AND k.name < $2 \
             AND EXISTS (SELECT 1 FROM event_log AS e \
                         WHERE e.key_ref = k.id AND e.cluster_id = $3 AND e.topic = $4) \
             ORDER BY k.name LIMIT $5",
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

/// A `clusters` row selected as `id, name, checkpoint, identity`.
fn cluster_from_row(row: &sqlx::postgres::PgRow) -> Cluster {
    Cluster {
        id: row.get(0),
        name: row.get(1),
        checkpoint: row.get::<Option<i64>, _>(2).map(to_u64),
        identity: row
            .get::<Option<&str>, _>(3)
            .and_then(ClusterIdentity::from_json),
    }
}

fn gap_from_row(r: &sqlx::postgres::PgRow) -> Gap {
    Gap {
        from_index: to_u64(r.get(0)),
        to_index: to_u64(r.get(1)),
        kind: GapKind::parse(r.get::<&str, _>(2)).unwrap_or(GapKind::Buffer),
        reason: r.get(3),
        detected_at: r.get(4),
    }
}
