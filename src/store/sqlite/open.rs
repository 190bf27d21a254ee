//! Opening an SQLite archive: the file and its pragmas (WAL, page size,
//! cache), the pool, and the migrations, with one clear message per way
//! opening can fail.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqlitePool};

use super::SqliteStore;
use crate::config::DbUrl;
use crate::store::StoreError;

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

impl SqliteStore {
    /// Opens the database (creating the file if needed) and migrates it.
    pub async fn open(url: &DbUrl) -> Result<Self, StoreError> {
        let display = url.to_string();
        let open_error = |detail: String, hint: Option<&'static str>| StoreError::Open {
            url: display.clone(),
            detail,
            hint,
        };
        let new_file = matches!(url, DbUrl::SqliteFile(path) if !path.exists());
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
            .log_slow_statements(log::LevelFilter::Debug, crate::store::SLOW_STATEMENT);
        if let (true, DbUrl::SqliteFile(path)) = (new_file, url) {
            create(path)
                .await
                .map_err(|e| open_error(e.to_string(), None))?;
        }
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
        crate::store::backfill::run(&super::backfill::Backfill(&pool)).await?;
        Ok(SqliteStore {
            pool,
            url: display,
            in_memory: matches!(url, DbUrl::SqliteMemory),
            dictionaries: Default::default(),
            compression: Default::default(),
        })
    }
}

/// Creates a new archive file with what only an empty file takes: its page
/// size, and `auto_vacuum = INCREMENTAL` (retention gives freed pages back
/// to the file system with `PRAGMA incremental_vacuum`), set before the
/// switch to WAL writes the file's header. Not a pool option: on an
/// existing file, setting the mode opens a write transaction, which would
/// wait for any writer on every new connection.
async fn create(path: &std::path::Path) -> Result<(), sqlx::Error> {
    let conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    conn.close().await
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
            Err(e) if attempts < 20 && crate::store::is_transient(&e) => {
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

/// Whether the file holds an archive (its `clusters` table), read without
/// creating or changing anything: for commands that must not turn another
/// file into an archive. A missing file holds none.
pub(crate) async fn holds_archive(url: &DbUrl) -> Result<bool, StoreError> {
    let DbUrl::SqliteFile(path) = url else {
        return Ok(matches!(url, DbUrl::SqliteMemory));
    };
    if !path.is_file() {
        return Ok(false);
    }
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let found = async {
        let mut conn = options.connect().await?;
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'clusters'",
        )
        .fetch_one(&mut conn)
        .await?;
        sqlx::Connection::close(conn).await?;
        Ok::<_, sqlx::Error>(found > 0)
    };
    match found.await {
        Ok(found) => Ok(found),
        Err(e) if e.to_string().contains("not a database") => Ok(false),
        Err(e) => Err(StoreError::Open {
            url: url.to_string(),
            detail: e.to_string(),
            hint: None,
        }),
    }
}
