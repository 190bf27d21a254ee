//! What an SQLite file holds, found without writing to it: its header (an
//! SQLite database? whose `application_id`? in WAL mode?), then its tables
//! and migrations read on a read-only connection. Nothing is created beside
//! the file: a WAL file without its `-wal` is read as immutable (no other
//! connection has it open, so nothing can change under the read), and a
//! file in a directory that cannot be written (a read-only mount) too.

use std::io::Read;
use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::store::StoreError;
use crate::store::identify::{APPLICATION_ID, Applied, Contents, Found, judge};

/// How a read-only connection opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// `mode=ro`: sees what writers commit meanwhile.
    ReadOnly,
    /// `immutable=1`: no locks and no `-shm`; only for a file nothing writes.
    Immutable,
}

impl ReadMode {
    /// Connection options reading `path` this way.
    pub fn options(self, path: &Path) -> SqliteConnectOptions {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            // A writer's checkpoint can hold a reader off for a moment.
            .busy_timeout(std::time::Duration::from_secs(10));
        match self {
            ReadMode::ReadOnly => options,
            ReadMode::Immutable => options.immutable(true),
        }
    }
}

/// The first bytes of every SQLite database.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the file at `path` holds, read without writing to it or creating
/// anything beside it.
pub async fn identify(path: &Path, url: &str) -> Result<Found, StoreError> {
    let open_error = |detail: String, hint: Option<&'static str>| StoreError::Open {
        url: url.to_owned(),
        detail,
        hint,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found::Absent);
        }
        Err(e) => return Err(open_error(e.to_string(), None)),
    };
    if meta.is_dir() {
        return Err(open_error(
            "it is a directory".to_owned(),
            Some("name a file, for example sqlite://nomad-chronicle.db"),
        ));
    }
    if meta.len() == 0 {
        return Ok(Found::Absent);
    }
    let header = read_header(path).map_err(|e| open_error(e.to_string(), None))?;
    let Some(header) = header else {
        return Ok(Found::Foreign(NOT_SQLITE.to_owned()));
    };
    let id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    if id != 0 && id != APPLICATION_ID {
        let why = format!("its header names another application (`application_id` {id})");
        return Ok(Found::Foreign(why));
    }
    let wal = header[18] == 2 || header[19] == 2;
    let mode = match wal && !sidecar(path, "-wal").exists() {
        true => ReadMode::Immutable,
        false => ReadMode::ReadOnly,
    };
    let contents = match read_contents(mode.options(path)).await {
        Err(e) if mode == ReadMode::ReadOnly && cannot_open(&e) => {
            read_contents(ReadMode::Immutable.options(path)).await
        }
        other => other,
    };
    let contents = match contents {
        Ok(contents) => contents,
        Err(e) if e.to_string().contains("not a database") => {
            return Ok(Found::Foreign(NOT_SQLITE.to_owned()));
        }
        Err(e) => return Err(open_error(e.to_string(), None)),
    };
    let found = judge(
        Contents {
            stamped: id == APPLICATION_ID,
            ..contents
        },
        &super::open::MIGRATOR,
    );
    Ok(found)
}

const NOT_SQLITE: &str = "it is not an SQLite database";

/// The first 100 bytes, the database header; `None` when the file is not
/// an SQLite database.
fn read_header(path: &Path) -> std::io::Result<Option<[u8; 100]>> {
    let mut header = [0; 100];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => return Ok(None),
            n => read += n,
        }
    }
    Ok(header.starts_with(MAGIC).then_some(header))
}

/// `path` with `suffix` appended: its `-wal` or `-shm` file.
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// SQLite could not open the file, or the `-shm` a read-only connection to
/// a WAL database needs (a directory that cannot be written).
pub fn cannot_open(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    // SQLITE_CANTOPEN (14), SQLITE_READONLY (8) and their extended codes.
    code.parse::<i64>()
        .is_ok_and(|c| c & 0xff == 14 || c & 0xff == 8)
}

/// An immutable read leaves out what the `-wal` file holds: said once.
pub fn warn_if_wal_unread(path: &Path) {
    let wal = sidecar(path, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        tracing::warn!(
            wal = %wal.display(),
            "The archive's directory cannot be written, so its write-ahead log cannot be read: \
             answers leave out what it holds (copy the archive with its -wal file to a writable \
             directory to read all of it)"
        );
    }
}

/// The file's tables and migrations.
async fn read_contents(options: SqliteConnectOptions) -> Result<Contents, sqlx::Error> {
    let mut conn = options.connect().await?;
    let read = tables(&mut conn).await;
    conn.close().await?;
    read
}

async fn tables(conn: &mut SqliteConnection) -> Result<Contents, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let has = |table: &str| names.iter().any(|n| n == table);
    let migrations = match has("_sqlx_migrations") {
        true => Some(
            sqlx::query_as::<_, Applied>(
                "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&mut *conn)
            .await?,
        ),
        false => None,
    };
    Ok(Contents {
        migrations,
        clusters: has("clusters"),
        other_tables: names
            .iter()
            .filter(|n| !matches!(n.as_str(), "_sqlx_migrations" | "clusters"))
            .cloned()
            .collect(),
        stamped: false,
    })
}
