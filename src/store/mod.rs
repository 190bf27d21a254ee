//! The archive's storage boundary: a [`Store`] trait in the archive's own words
//! (open a cluster, commit a batch with its checkpoint, report status, read
//! events back) and one implementation per backend, chosen once from the
//! `--db` URL by [`connect`]. All SQL lives in the backend files.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::DbUrl;
use crate::nomad::Frame;

pub use sqlite::SqliteStore;

/// A frame as the archive stores it: the events of one raft entry and when
/// they were received (the stream itself carries no wall-clock time).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedFrame {
    pub frame: Frame,
    /// Unix time in milliseconds.
    pub received_at: i64,
}

/// What kind of hole in the history a gap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// The resume point had left Nomad's event buffer: events between the two
    /// indexes may be lost for good.
    Buffer,
    /// A line of the stream could not be parsed; the events it held are missing.
    Malformed,
    /// The server's history was behind the archive (a restore, a restarted dev
    /// agent, or another cluster at the same address).
    ServerBehind,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Buffer => "buffer",
            GapKind::Malformed => "malformed",
            GapKind::ServerBehind => "server_behind",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [GapKind::Buffer, GapKind::Malformed, GapKind::ServerBehind]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

/// A stretch of history the archive cannot vouch for: events with
/// `from_index < Index < to_index` may be missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    pub from_index: u64,
    pub to_index: u64,
    pub kind: GapKind,
    /// Why, in words, for `status` and the query commands.
    pub reason: String,
    /// Unix time in milliseconds.
    pub detected_at: i64,
}

/// One transaction's worth of work: whole frames, the gaps found while
/// receiving them, and the count of malformed lines skipped.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub frames: Vec<ReceivedFrame>,
    pub gaps: Vec<Gap>,
    pub malformed_lines: u64,
}

impl Batch {
    pub fn event_count(&self) -> usize {
        self.frames.iter().map(|f| f.frame.events.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.gaps.is_empty() && self.malformed_lines == 0
    }

    /// The highest index in the batch, which becomes the checkpoint.
    pub fn max_index(&self) -> Option<u64> {
        self.frames.iter().map(|f| f.frame.index).max()
    }
}

/// A cluster's identity in the archive and where ingest resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    /// The highest index whose frame is fully stored; `None` for an empty archive.
    pub checkpoint: Option<u64>,
}

/// What a commit changed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CommitStats {
    /// Events newly stored.
    pub inserted: u64,
    /// Events already in the archive (a resend), skipped.
    pub duplicates: u64,
}

/// One cluster's summary, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub address: Option<String>,
    pub events: u64,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub checkpoint: Option<u64>,
    pub topics: Vec<TopicCount>,
    pub gaps: Vec<Gap>,
    pub malformed_lines: u64,
    /// Unix time in milliseconds of the first and last received event.
    pub first_received_at: Option<i64>,
    pub last_received_at: Option<i64>,
}

/// Events per topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicCount {
    pub topic: String,
    pub events: u64,
}

/// The whole archive's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub database: String,
    pub backend: &'static str,
    pub database_bytes: u64,
    pub clusters: Vec<ClusterStatus>,
}

/// An event read back from the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedEvent {
    pub index: u64,
    pub position: u32,
    pub topic: String,
    pub key: String,
    pub received_at: i64,
    /// The event's JSON exactly as received.
    pub raw: String,
}

/// Why the archive could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database `{url}`: {detail}{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Open {
        url: String,
        detail: String,
        hint: Option<&'static str>,
    },
    #[error(
        "database `{url}` was written by a newer nomad-chronicle (schema version {found}; this version knows up to {known}): upgrade nomad-chronicle"
    )]
    NewerSchema { url: String, found: i64, known: i64 },
    #[error("cannot migrate database `{url}`: {detail}")]
    Migrate { url: String, detail: String },
    #[error("PostgreSQL (`{url}`) is not supported yet: use sqlite://PATH for now")]
    Unsupported { url: String },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether trying the same work again later can succeed (a busy or
    /// restarting database), as opposed to a problem that needs the user.
    pub fn is_retriable(&self) -> bool {
        match self {
            StoreError::Query(e) => match e {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
                sqlx::Error::Database(db) => {
                    // SQLITE_BUSY / SQLITE_LOCKED: another process holds the lock.
                    matches!(db.code().as_deref(), Some("5") | Some("6") | Some("517"))
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// The archive, whatever the backend.
#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Finds the cluster by label, creating it on first use, and returns where
    /// its history ends.
    async fn open_cluster(&self, name: &str, address: Option<&str>) -> Result<Cluster, StoreError>;

    /// Stores a batch in one transaction: its events (idempotently: an event
    /// already archived is skipped), its gaps, and the checkpoint, which only
    /// ever moves forward.
    async fn commit(&self, cluster: &Cluster, batch: &Batch) -> Result<CommitStats, StoreError>;

    /// Summaries of every cluster in the archive.
    async fn status(&self) -> Result<StatusReport, StoreError>;

    /// Events of a cluster with `Index >= from_index`, in stream order
    /// (index, then position within the frame), at most `limit` of them.
    async fn events(
        &self,
        cluster: &Cluster,
        from_index: u64,
        limit: u32,
    ) -> Result<Vec<ArchivedEvent>, StoreError>;

    /// Looks a cluster up by label without creating it.
    async fn find_cluster(&self, name: &str) -> Result<Option<Cluster>, StoreError>;

    /// Closes connections cleanly (checkpoints SQLite's WAL).
    async fn close(&self);
}

/// Opens (creating and migrating as needed) the archive named by `url`.
pub async fn connect(url: &DbUrl) -> Result<Arc<dyn Store>, StoreError> {
    match url {
        DbUrl::SqliteFile(_) | DbUrl::SqliteMemory => Ok(Arc::new(SqliteStore::open(url).await?)),
        DbUrl::Postgres(_) => Err(StoreError::Unsupported {
            url: url.to_string(),
        }),
    }
}

/// The current time as Unix milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
