//! Opening a PostgreSQL archive so that a wrong password, an unknown
//! database or an unreachable host is reported at once: a writer first
//! identifies the database over a direct connection, then opens the pool
//! and migrates; a read identifies it over the pool's first connection,
//! after checking that something listens there.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use super::PgStore;
use crate::config::DbUrl;
use crate::store::StoreError;
use crate::store::identify::{Access, Found, UNDATED, check_version, judge};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long opening waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl PgStore {
    /// Connects and, having first found out what the database holds
    /// ([`identify`](super::identify)), opens it as `access` allows: a
    /// database whose archive tables are another application's is refused
    /// untouched; one without an archive is given one only for
    /// [`Access::Create`]; a read runs every statement in a read-only
    /// transaction and migrates nothing; a write migrates and dates events
    /// an older version archived. Unlike a connection lost later (which is
    /// retried), a failure here is reported at once: a wrong password, an
    /// unknown database or an unreachable host needs the user.
    pub async fn open(url: &DbUrl, access: Access) -> Result<Self, StoreError> {
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
            // Without statistics a wide window's statements are costed high
            // enough for PostgreSQL to compile them first, which took longer
            // (1.9 s) than running them (docs/performance.md).
            .options([("jit", "off"), ("plan_cache_mode", "force_custom_plan")])
            .log_slow_statements(log::LevelFilter::Debug, crate::store::SLOW_STATEMENT);
        if !access.writes() {
            return Self::open_reader(options, display, access).await;
        }
        // One direct connection first: the pool would retry a refused or
        // rejected connection until its timeout and report only that.
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| open_error(&display, e))?;
        let contents = super::identify::contents(&mut conn).await;
        conn.close().await.map_err(|e| open_error(&display, e))?;
        match (judge(contents?, &MIGRATOR), access) {
            (Found::Foreign(why), _) => Err(StoreError::NotArchive { url: display, why }),
            (Found::Absent, Access::Create) => Self::writer(options, display).await,
            (Found::Absent, _) => Err(StoreError::NoArchive { url: display }),
            (Found::Archive(applied), access) => {
                check_version(&display, &applied, &MIGRATOR, access)?;
                Self::writer(options, display).await
            }
        }
    }

    /// Opens an archive to read, identified over the pool's own first
    /// connection: a read command pays one authentication, not two (each
    /// costs milliseconds against a server that asks for a password). The
    /// pool has [`Access::read_connections`] connections.
    async fn open_reader(
        options: PgConnectOptions,
        url: String,
        access: Access,
    ) -> Result<Self, StoreError> {
        listening(&options).await.map_err(|e| open_error(&url, e))?;
        // Every transaction is read-only, so no read can write.
        let options = options.options([("default_transaction_read_only", "on")]);
        let most = access.read_connections();
        let pool = pool(&options, &url, most).await?;
        let contents = match pool.acquire().await {
            Ok(mut conn) => super::identify::contents(&mut conn).await,
            Err(e) => Err(open_error(&url, e)),
        };
        let refused = match judge(contents?, &MIGRATOR) {
            Found::Foreign(why) => StoreError::NotArchive { url, why },
            Found::Absent => StoreError::NoArchive { url },
            Found::Archive(applied) => {
                check_version(&url, &applied, &MIGRATOR, access)?;
                return Self::reader(pool, options, url).await;
            }
        };
        pool.close().await;
        Err(refused)
    }

    /// A pool that writes: migrates and dates events archived before
    /// migration 0011.
    async fn writer(options: PgConnectOptions, url: String) -> Result<Self, StoreError> {
        let pool = pool(&options, &url, 4).await?;
        migrate(&pool, &url).await?;
        crate::store::backfill::run(&super::backfill::Backfill(&pool)).await?;
        crate::store::details_fill::run(&super::details_fill::Fill(&pool)).await?;
        Ok(Self::with_pool(pool, options, url))
    }

    /// A read of an archive at this binary's schema version, refused
    /// while a writer has history to date or details to fill.
    async fn reader(
        pool: PgPool,
        options: PgConnectOptions,
        url: String,
    ) -> Result<Self, StoreError> {
        let unfinished = if crate::store::backfill::pending(&super::backfill::Backfill(&pool))
            .await?
        {
            Some(UNDATED)
        } else if crate::store::details_fill::pending(&super::details_fill::Fill(&pool)).await? {
            Some(crate::store::details_fill::UNFILLED)
        } else {
            None
        };
        if let Some(detail) = unfinished {
            pool.close().await;
            return Err(StoreError::NeedsMigration {
                url,
                detail: detail.to_owned(),
            });
        }
        Ok(Self::with_pool(pool, options, url))
    }

    fn with_pool(pool: PgPool, options: PgConnectOptions, url: String) -> Self {
        PgStore {
            pool,
            options,
            url,
            dictionaries: Default::default(),
            blocks: Default::default(),
            blocks_pool: Default::default(),
            compression: Default::default(),
        }
    }
}

/// Fails at once, as a direct connection would, where nothing listens at
/// the server's address: the pool retries a refused connection until its
/// timeout and would report only that. Whatever else goes wrong is left to
/// the connection to report.
async fn listening(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let port = options.get_port();
    let host = options.get_host();
    let socket = match options.get_socket() {
        Some(dir) => Some(dir.join(format!(".s.PGSQL.{port}"))),
        None if host.starts_with('/') => Some(Path::new(host).join(format!(".s.PGSQL.{port}"))),
        None => None,
    };
    let attempt = async {
        match socket {
            #[cfg(unix)]
            Some(path) => tokio::net::UnixStream::connect(path).await.map(drop),
            #[cfg(not(unix))]
            Some(_) => Ok(()),
            None => tokio::net::TcpStream::connect((host, port)).await.map(drop),
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(sqlx::Error::Io(e)),
        _ => Ok(()),
    }
}

async fn pool(
    options: &PgConnectOptions,
    url: &str,
    max_connections: u32,
) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options.clone())
        .await
        .map_err(|e| open_error(url, e))
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
