//! Opening a PostgreSQL archive: one direct connection to report a wrong
//! password, an unknown database or an unreachable host at once, then the
//! pool and the migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use super::PgStore;
use crate::config::DbUrl;
use crate::store::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
            .log_slow_statements(log::LevelFilter::Debug, crate::store::SLOW_STATEMENT);
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
        crate::store::backfill::run(&super::backfill::Backfill(&pool)).await?;
        Ok(PgStore {
            pool,
            options,
            url: display,
            dictionaries: Default::default(),
            compression: Default::default(),
        })
    }
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

/// Whether the database holds an archive (its `clusters` table), asked
/// without migrating anything: for commands that must not turn another
/// database into an archive.
pub(crate) async fn holds_archive(url: &DbUrl) -> Result<bool, StoreError> {
    let display = url.to_string();
    let DbUrl::Postgres(secret) = url else {
        return Ok(false);
    };
    let options = PgConnectOptions::from_str(secret.expose())
        .map_err(|e| open_error(&display, e))?
        .application_name("nomad-chronicle");
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| open_error(&display, e))?;
    let found: bool = sqlx::query_scalar("SELECT to_regclass('clusters') IS NOT NULL")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await.map_err(|e| open_error(&display, e))?;
    Ok(found)
}
