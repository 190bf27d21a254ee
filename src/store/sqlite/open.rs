//! Opening an SQLite archive: what the file is first ([`identify`]), then
//! a writer's pool with its pragmas (WAL, page size, cache) and the
//! migrations, or a reader's read-only pool, with one clear message per way
//! opening can fail.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, SqlitePool};

use super::SqliteStore;
use super::identify::{ReadMode, cannot_open, identify, warn_if_wal_unread};
use crate::config::DbUrl;
use crate::store::StoreError;
use crate::store::identify::{
    APPLICATION_ID, Access, Found, UNDATED, check_version, first_missing,
};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
    /// Opens the archive at `url` as `access` allows, having first found
    /// out what the file holds ([`identify`]): a file that is not an archive
    /// is refused untouched; a missing one is created only for
    /// [`Access::Create`]; a read opens the file read-only and migrates
    /// nothing; a write migrates it, stamps its `application_id` and dates
    /// events an older version archived.
    pub async fn open(url: &DbUrl, access: Access) -> Result<Self, StoreError> {
        let display = url.to_string();
        let path = match url {
            DbUrl::SqliteFile(path) => path,
            DbUrl::SqliteMemory if access == Access::Create => {
                let options = SqliteConnectOptions::from_str("sqlite::memory:")
                    .map_err(|e| open_error(&display, e.to_string(), None))?;
                return Self::writer(options, 1, url, &display, false).await;
            }
            DbUrl::SqliteMemory => return Err(StoreError::NoArchive { url: display }),
            DbUrl::Postgres(_) => {
                return Err(open_error(&display, "not an SQLite URL".to_owned(), None));
            }
        };
        check_directory(path, &display)?;
        let found = identify(path, &display).await?;
        match (found, access) {
            (Found::Foreign(why), _) => Err(StoreError::NotArchive { url: display, why }),
            (Found::Absent, Access::Create) => {
                create(path)
                    .await
                    .map_err(|e| open_error(&display, e.to_string(), None))?;
                Self::writer(writer_options(path), 4, url, &display, false).await
            }
            (Found::Absent, _) => Err(StoreError::NoArchive { url: display }),
            (Found::Archive(applied), access) if !access.writes() => {
                check_version(&display, &applied, &MIGRATOR, access)?;
                Self::reader(path, &display, access)
                    .await
                    .map_err(|e| match e {
                        StoreError::NeedsMigration { detail, .. } => StoreError::NeedsMigration {
                            url: display.clone(),
                            detail,
                        },
                        other => other,
                    })
            }
            (Found::Archive(applied), access) => {
                check_version(&display, &applied, &MIGRATOR, access)?;
                let upgrade = !applied.is_empty() && first_missing(&applied, &MIGRATOR).is_some();
                Self::writer(writer_options(path), 4, url, &display, upgrade).await
            }
        }
    }

    /// A pool that writes: migrates, stamps the archive as one, and dates
    /// events archived before migration 0011; after an `upgrade` (an
    /// archive that lacked a migration), gives its free pages back.
    async fn writer(
        options: SqliteConnectOptions,
        max_connections: u32,
        url: &DbUrl,
        display: &str,
        upgrade: bool,
    ) -> Result<Self, StoreError> {
        let pool = connect_pool(with_cache(options), max_connections)
            .await
            .map_err(|e| pool_error(display, e))?;
        migrate(&pool, display).await?;
        if upgrade {
            // An upgrade that rebuilt tables (0024, 0025) leaves their old
            // pages free: the file (an upgrade is always of a file) gives
            // them back now. The upgrade is done either way, so a failure
            // here only leaves them to be reused.
            if let Err(e) = super::prune::give_back_free_pages(&pool, false).await {
                tracing::warn!(error = %e, "The archive is upgraded, but its free pages were not given back to the file system: new events reuse them, and `nomad-chronicle compact --vacuum` shrinks the file");
            }
        }
        stamp(&pool).await?;
        crate::store::backfill::run(&super::backfill::Backfill(&pool)).await?;
        crate::store::details_fill::run(&super::details_fill::Fill(&pool)).await?;
        Ok(Self::with_pool(pool, url, display))
    }

    /// A pool that only reads (`mode=ro`: it sees what a writer commits
    /// meanwhile), or, where even that cannot open the file (a read-only
    /// directory without the archive's `-shm`), reads it as immutable.
    /// Of [`Access::read_connections`] connections.
    async fn reader(path: &Path, url_text: &str, access: Access) -> Result<Self, StoreError> {
        let most = access.read_connections();
        let pool = match Self::read_pool(path, ReadMode::ReadOnly, most).await {
            Err(StoreError::Query(e)) if cannot_open(&e) => {
                warn_if_wal_unread(path);
                tracing::debug!(database = %url_text, "Reading the archive as immutable");
                Self::read_pool(path, ReadMode::Immutable, most).await
            }
            other => other,
        }
        .map_err(|e| match e {
            StoreError::Query(e) => pool_error(url_text, e),
            other => other,
        })?;
        Ok(Self::with_pool(
            pool,
            &DbUrl::SqliteFile(path.to_owned()),
            url_text,
        ))
    }

    /// A read-only pool, checked by reading: refused while events wait to
    /// be dated (an upgrade that did not finish).
    async fn read_pool(
        path: &Path,
        mode: ReadMode,
        max_connections: u32,
    ) -> Result<SqlitePool, StoreError> {
        let pool = connect_pool(with_cache(mode.options(path)), max_connections).await?;
        match unfinished(&pool).await {
            Ok(None) => Ok(pool),
            Ok(Some(detail)) => {
                pool.close().await;
                Err(StoreError::NeedsMigration {
                    url: String::new(),
                    detail: detail.to_owned(),
                })
            }
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    fn with_pool(pool: SqlitePool, url: &DbUrl, display: &str) -> Self {
        SqliteStore {
            pool,
            url: display.to_owned(),
            in_memory: matches!(url, DbUrl::SqliteMemory),
            dictionaries: Default::default(),
            blocks: Default::default(),
            blocks_pool: Default::default(),
            compression: Default::default(),
        }
    }
}

fn open_error(url: &str, detail: String, hint: Option<&'static str>) -> StoreError {
    StoreError::Open {
        url: url.to_owned(),
        detail,
        hint,
    }
}

/// A failure to open the pool, with a hint where one helps.
fn pool_error(url: &str, e: sqlx::Error) -> StoreError {
    let detail = e.to_string();
    let hint = if detail.contains("unable to open") || detail.contains("readonly") {
        Some("check that the file and its directory are writable")
    } else {
        None
    };
    open_error(url, detail, hint)
}

/// The file's directory must exist: a missing one is a mistyped path.
fn check_directory(path: &Path, url: &str) -> Result<(), StoreError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !parent.is_dir() => Err(open_error(
            url,
            format!("the directory `{}` does not exist", parent.display()),
            Some("create it first or choose another path"),
        )),
        _ => Ok(()),
    }
}

/// How a writer opens an archive file.
fn writer_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // The writer's lease checkpoints on another connection: see
        // `checkpoint`.
        .pragma("wal_autocheckpoint", "0")
}

/// What every connection sets, reading or writing.
fn with_cache(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .pragma("cache_size", (-CACHE_KIB).to_string())
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .log_slow_statements(log::LevelFilter::Debug, crate::store::SLOW_STATEMENT)
}

/// Marks an archive as one in its header (archives created before the
/// mark get it from their next writer).
async fn stamp(pool: &SqlitePool) -> Result<(), StoreError> {
    let id: i64 = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(pool)
        .await?;
    if id != i64::from(APPLICATION_ID) {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "PRAGMA application_id = {APPLICATION_ID}"
        )))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Creates a new archive file with what only an empty file takes: its page
/// size, `auto_vacuum = INCREMENTAL` (retention gives freed pages back
/// to the file system with `PRAGMA incremental_vacuum`) and the archive's
/// `application_id`, set before the switch to WAL. Not a pool option: on an
/// existing file, setting the mode opens a write transaction, which would
/// wait for any writer on every new connection.
async fn create(path: &Path) -> Result<(), sqlx::Error> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .connect()
        .await?;
    // The mark goes into the header first, before the switch to WAL, so a
    // process that reads the file's first bytes meanwhile knows it.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA journal_mode = WAL"
    )))
    .execute(&mut conn)
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

/// What an upgrade left to do that a read must not answer around: events
/// to date, or evaluations to list.
async fn unfinished(pool: &SqlitePool) -> Result<Option<&'static str>, StoreError> {
    if crate::store::backfill::pending(&super::backfill::Backfill(pool)).await? {
        return Ok(Some(UNDATED));
    }
    if crate::store::details_fill::pending(&super::details_fill::Fill(pool)).await? {
        return Ok(Some(crate::store::details_fill::UNFILLED));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    /// The bundled SQLite is compiled as `.cargo/config.toml` says: without
    /// the page cache all connections share behind one mutex, and without
    /// counting its allocations under another.
    #[tokio::test]
    async fn the_bundled_sqlite_takes_no_global_lock_per_page_or_allocation() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "SQLite was built with ENABLE_MEMORY_MANAGEMENT: {options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "SQLite counts its allocations: {options:?}"
        );
    }
}
