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
use crate::store::identify::{Access, Found, UNDATED, check_version, judge};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
            .log_slow_statements(log::LevelFilter::Debug, crate::store::SLOW_STATEMENT);
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
                match access {
                    Access::Read => Self::reader(options, display, 1).await,
                    Access::Serve => Self::reader(options, display, 4).await,
                    Access::Create | Access::Write => Self::writer(options, display).await,
                }
            }
        }
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

    /// A pool whose every transaction is read-only
    /// (`default_transaction_read_only`), so no read can write, of at most
    /// `max_connections`.
    async fn reader(
        options: PgConnectOptions,
        url: String,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let options = options.options([("default_transaction_read_only", "on")]);
        let pool = pool(&options, &url, max_connections).await?;
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
            compression: Default::default(),
        }
    }
}

async fn pool(
    options: &PgConnectOptions,
    url: &str,
    max_connections: u32,
) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
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
