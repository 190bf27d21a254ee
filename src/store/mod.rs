//! The archive's storage boundary: a [`Store`] trait in the archive's own words
//! (open a cluster, commit a batch with its checkpoint, report status, read
//! events back) and one implementation per backend, chosen once from the
//! `--db` URL by [`connect`]. SQL that both dialects read alike is written
//! once ([`filter`], `queries`, [`reconstruction`], [`prune`]) and run by each backend;
//! the rest lives in the backend folders. Rows map by column name (`records`).

mod ahead;
pub(crate) mod backfill;
pub mod block;
mod blocks;
pub mod codec;
pub mod compact;
pub mod compress;
mod derived;
mod detail_texts;
mod details;
pub mod details_fill;
mod dictionaries;
mod fills;
pub mod filter;
pub mod identify;
pub mod keyframe;
pub mod lanes;
pub mod lists;
pub mod lives;
mod marker_changes;
mod minutes;
pub mod moment;
mod names;
pub mod pack;
mod params;
mod postgres;
pub mod prune;
mod queries;
pub mod reconstruction;
mod records;
mod rows;
mod sqlite;
mod statement;
mod terminal_counts;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use crate::archive::{
    ArchivedEvent, Batch, ClosedPart, Cluster, CommitStats, Gap, PageQuery, PartSummary,
    PendingPart, Prune, PruneReport, ReconstructedObject, Reconstruction, RefColumn, StatusReport,
    StoredPart,
};
use crate::config::DbUrl;

pub use identify::Access;
pub use lanes::{Fit, LaneRow, LaneWindow, Others};
pub use moment::{Moment, MomentObject, MomentQuery, Point, Rows, index_at_time};
pub use postgres::PgStore;
pub(crate) use rows::{to_i64, to_u64};
pub use sqlite::SqliteStore;

/// Statements slower than this are logged at debug level. sqlx warns about
/// them by default, which a user reading `status` on a big archive would
/// take for a problem.
const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// No archive where a command that does not create one looked.
    #[error(
        "no archive at `{url}`: run `nomad-chronicle ingest` or `import` to create one, or check the path in --db"
    )]
    NoArchive { url: String },
    /// Something that is not an archive; it was left as it was.
    #[error(
        "`{url}` is not a nomad-chronicle archive ({why}); nothing was changed: check --db, or give the archive a database of its own"
    )]
    NotArchive { url: String, why: String },
    /// An archive a read cannot answer from as it is.
    #[error(
        "the archive at `{url}` {detail}: run `nomad-chronicle migrate` to upgrade it (`ingest` and `import` upgrade it too); nothing was changed"
    )]
    NeedsMigration { url: String, detail: String },
    #[error("cannot migrate database `{url}`: {detail}")]
    Migrate { url: String, detail: String },
    #[error("lost the connection that held the writer lock for this cluster: {detail}")]
    LeaseLost { detail: String },
    /// The cluster's row went away under a writer (PostgreSQL, where no
    /// foreign key checks each event: migration 0009).
    #[error("cluster `{cluster}` is no longer in the archive: its row in `clusters` was deleted")]
    ClusterMissing { cluster: String },
    /// Events archived before migration 0011 still wait for their time
    /// and presence, which a writer opening the archive fills in.
    #[error(
        "cluster `{cluster}` has events whose time and presence are not filled in yet: run `nomad-chronicle migrate` first"
    )]
    Unfilled { cluster: String },
    /// `compact --vacuum` on PostgreSQL by a role that does not own the
    /// archive's tables, which alone may rebuild their indexes; `what`
    /// names the object and the action.
    #[error(
        "PostgreSQL lets only the owner of {what}: run `compact --vacuum` as the role that owns the archive's tables (the events are compacted already; `compact` without --vacuum leaves the freed space to autovacuum, as this role may not vacuum either)"
    )]
    NotOwner { what: String },
    /// A stored event that cannot be read back: its compressed value is
    /// damaged or its dictionary is missing.
    #[error("{0}")]
    Undecodable(Box<UnreadableEvent>),
    #[error("{}", query_message(.0))]
    Query(#[from] sqlx::Error),
}

/// The event a [`StoreError::Undecodable`] names, and why it cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the event at index `{index}` of cluster `{cluster}` (topic `{topic}`, key `{key}`): {reason}; {}",
    what_to_do(reason)
)]
pub struct UnreadableEvent {
    pub cluster: String,
    pub index: u64,
    pub topic: String,
    pub key: String,
    pub reason: codec::DecodeError,
}

/// What to do about an event that cannot be read: a block can also be
/// missing because a prune deleted it while the read was under way.
fn what_to_do(reason: &codec::DecodeError) -> &'static str {
    match reason {
        codec::DecodeError::MissingBlock(_) => {
            "if a prune was running, run the command again; else restore the archive from a copy"
        }
        _ => "restore the archive from a copy",
    }
}

/// A failed statement in words: a value that cannot be read back is a
/// stored row nomad-chronicle did not write, which another program changed.
fn query_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::ColumnDecode { index, source } => format!(
            "the archive holds a value nomad-chronicle did not write in column {index} ({source}):              another program changed the database; restore it from a copy"
        ),
        other => format!("database error: {other}"),
    }
}

impl StoreError {
    /// Whether trying the same work again later can succeed (a busy or
    /// restarting database), as opposed to a problem that needs the user.
    pub fn is_retriable(&self) -> bool {
        match self {
            StoreError::Query(e) => is_transient(e),
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the archive refused a write for want of rights: a read-only
    /// SQLite file or connection (SQLITE_READONLY and its extended codes),
    /// a PostgreSQL user without the privilege (SQLSTATE 42501), or a
    /// read-only PostgreSQL transaction (25006).
    pub fn is_read_only(&self) -> bool {
        let StoreError::Query(sqlx::Error::Database(db)) = self else {
            return false;
        };
        let code = db.code().unwrap_or_default();
        let sqlite_read_only = code.parse::<i64>().is_ok_and(|c| c & 0xff == 8);
        sqlite_read_only || matches!(code.as_ref(), "42501" | "25006")
    }
}

/// Errors that go away by themselves: the connection dropped, the server is
/// restarting, or another writer briefly holds a lock.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_RECOVERY.
            matches!(code.as_ref(), "5" | "6" | "261" | "517")
            // PostgreSQL: connection exceptions (08…), server shutting down or
            // starting (57P01–57P03), serialization failure, deadlock.
                || code.starts_with("08")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }
        _ => false,
    }
}

/// The right to write one cluster's history. On PostgreSQL it is an advisory
/// lock held by one connection, and every commit runs on that connection: if
/// the connection is lost, so is the lease, and no second writer can appear.
#[async_trait]
pub trait Lease: Send {
    /// Stores a batch in one transaction: its events (idempotently: an event
    /// already archived is skipped), its gaps, the checkpoint, which only
    /// ever moves forward, and the cluster's identity when the batch has one. [`StoreError::LeaseLost`] means this process must
    /// stop writing and stand by again.
    async fn commit(&mut self, cluster: &Cluster, batch: &Batch)
    -> Result<CommitStats, StoreError>;
}

/// The archive, whatever the backend.
#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Finds the cluster by label, creating it on first use, and returns where
    /// its history ends.
    async fn open_cluster(&self, name: &str, address: Option<&str>) -> Result<Cluster, StoreError>;

    /// Waits until this process is the only writer of the cluster named
    /// `cluster`, logging once that it stands by while another ingester
    /// holds it. `None` if `shutdown` fired while waiting.
    async fn lease(
        &self,
        cluster: &str,
        shutdown: &CancellationToken,
    ) -> Result<Option<Box<dyn Lease>>, StoreError>;

    /// Summaries of every cluster in the archive.
    async fn status(&self) -> Result<StatusReport, StoreError>;

    /// One page of a cluster's events in stream order (index, then position
    /// within the frame).
    async fn page(
        &self,
        cluster: &Cluster,
        query: &PageQuery,
    ) -> Result<Vec<ArchivedEvent>, StoreError>;

    /// Events of a cluster with `Index >= from_index`, in stream order, at
    /// most `limit` of them.
    async fn events(
        &self,
        cluster: &Cluster,
        from_index: u64,
        limit: u32,
    ) -> Result<Vec<ArchivedEvent>, StoreError> {
        let query = PageQuery {
            from_index,
            limit,
            ..PageQuery::default()
        };
        self.page(cluster, &query).await
    }

    /// Every cluster's label, sorted.
    async fn cluster_names(&self) -> Result<Vec<String>, StoreError>;

    /// The recorded gaps of a cluster, oldest first.
    async fn gaps(&self, cluster: &Cluster) -> Result<Vec<Gap>, StoreError>;

    /// The lowest and highest index archived for a cluster.
    async fn span(&self, cluster: &Cluster) -> Result<Option<(u64, u64)>, StoreError>;

    /// The lowest and highest index of the events dated (by Nomad's clock)
    /// in `[since, until)` (either end open), read from the index by time
    /// (migration 0011); `None` when nothing happened then. Time follows the
    /// raft index only roughly (a skewed server clock), so this range can
    /// hold events dated outside the window too: it bounds a read, and the
    /// read still filters by time ([`PageQuery::within`]).
    async fn time_span(
        &self,
        cluster: &Cluster,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<(u64, u64)>, StoreError>;

    /// The window's Allocation, Job, Deployment and Node events as the
    /// details stored beside them describe them, without decoding one
    /// ([`lanes`]): each allocation summed up in one row, in order of its
    /// first event within each of the statements that read them (read
    /// from their lives rows, they come in more than one run), then the
    /// other events in stream order. What the web timeline draws. Read as
    /// consumed, like [`Store::moment_objects`].
    fn lane_rows<'a>(
        &'a self,
        cluster: &'a Cluster,
        window: &'a LaneWindow,
    ) -> BoxStream<'a, Result<LaneRow, StoreError>>;

    /// Resolves the moment a snapshot asks for: its index and Nomad time,
    /// the keyframe it starts from and the events to read after it; `None`
    /// when nothing is archived at or before it.
    async fn moment(
        &self,
        cluster: &Cluster,
        query: &MomentQuery,
    ) -> Result<Option<Moment>, StoreError>;

    /// The nodes, jobs and allocations at `moment`, each by the event that
    /// last describes it, streamed in order of topic (Node, Job,
    /// Allocation), namespace and key: what a snapshot shows, or with
    /// [`Rows::Every`] whatever each object's presence. The rows are read
    /// as they are consumed; nothing else should use a SQLite in-memory
    /// archive meanwhile (its one connection is taken).
    fn moment_objects<'a>(
        &'a self,
        cluster: &'a Cluster,
        moment: &'a Moment,
        rows: Rows,
    ) -> BoxStream<'a, Result<MomentObject, StoreError>>;

    /// How many allocations terminal at `moment` its snapshot leaves out
    /// (those whose last change is before the window).
    async fn terminal_left_out(
        &self,
        cluster: &Cluster,
        moment: &Moment,
    ) -> Result<u64, StoreError>;

    /// Builds the keyframes missing from the cluster's history, threshold
    /// by threshold after the newest one, each in a transaction of its own;
    /// `progress` hears each keyframe's index and the cluster's last index.
    /// Returns how many were built. Refuses ([`StoreError::Unfilled`])
    /// while any event of the cluster waits for its time and presence: run
    /// it after they are filled in, when the archive is opened.
    async fn build_keyframes(
        &self,
        cluster: &Cluster,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<u64, StoreError>;

    /// IDs of the nodes that were ever called `name`.
    async fn node_ids_named(
        &self,
        cluster: &Cluster,
        name: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Keys of `topic` starting with `prefix`, sorted, at most `limit`.
    async fn keys_with_prefix(
        &self,
        cluster: &Cluster,
        topic: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// The cluster's cut in force (its newest prune): its history before
    /// that index is gone but for what snapshots after it need.
    async fn pruned(&self, cluster: &Cluster) -> Result<Option<Prune>, StoreError>;

    /// Deletes the cluster's history before index `before` (dated `time` by
    /// Nomad's clock) in small transactions, keeping what snapshots after
    /// it need ([`prune`]), and gives the space back. The caller checks
    /// the cut (not past the newest index); one at or before the cut in
    /// force finishes what an interrupted prune left.
    async fn prune(
        &self,
        cluster: &Cluster,
        before: u64,
        time: Option<i64>,
    ) -> Result<PruneReport, StoreError>;

    /// The archive's size in bytes, as retention budgets it (SQLite: the
    /// pages in use; PostgreSQL: the archive's tables with their indexes).
    async fn size(&self) -> Result<u64, StoreError>;

    /// Narrows or removes the cluster's gaps that the closed index ranges
    /// `covered` reach into (stretches of stream an import stored whole,
    /// committed already), in one transaction ([`fills`]); returns how
    /// many gaps changed.
    async fn fill_gaps(&self, cluster: &Cluster, covered: &[(u64, u64)])
    -> Result<u64, StoreError>;

    /// Looks a cluster up by label without creating it.
    async fn find_cluster(&self, name: &str) -> Result<Option<Cluster>, StoreError>;

    /// The reconstructions after gaps: lists read from Nomad, kept apart
    /// from the events.
    fn reconstructions(&self) -> &dyn Reconstructions;

    /// The list questions, answered from indexed columns ([`lists`]).
    fn lists(&self) -> &dyn lists::Lists;

    /// Compressing the archive's plain events in place ([`compact`]).
    fn compactor(&self) -> &dyn compact::Compact;

    /// Packing older events into blocks ([`pack`]).
    fn packer(&self) -> &dyn pack::Pack;

    /// How the writers this store hands out from now on compress events
    /// (`compact` and tests train on fewer events than the default).
    fn set_compression(&self, settings: compress::Settings);

    /// Closes connections cleanly (checkpoints SQLite's WAL).
    async fn close(&self);
}

/// Reconstructions after gaps (see [`reconstruction`]): written by the
/// ingest process that recorded the gap, read by `query state` and `query
/// snapshot`. Writes are idempotent: a reconstruction is completed once.
#[async_trait]
pub trait Reconstructions: Send + Sync {
    /// Reconstructions of the cluster requested and not read yet, oldest gap first.
    async fn pending(&self, cluster: &Cluster) -> Result<Vec<PendingPart>, StoreError>;

    /// Stores a list that was read, in one transaction, completing its
    /// pending reconstruction; `false`, storing nothing, if it was no longer
    /// pending (another process completed it).
    async fn store(&self, part: &StoredPart) -> Result<bool, StoreError>;

    /// Ends pending reconstructions without objects (refused, failed, superseded).
    async fn close(&self, parts: &[ClosedPart]) -> Result<(), StoreError>;

    /// The newest stored reconstruction of `topic` at or before a point
    /// (`to_index`, or read before `until`).
    async fn at(
        &self,
        cluster: &Cluster,
        topic: &str,
        to_index: Option<u64>,
        until: Option<i64>,
    ) -> Result<Option<Reconstruction>, StoreError>;

    /// The objects of a stored reconstruction, ordered by namespace and key:
    /// only `key` when given, only objects that reference one of `refs` when
    /// any are given.
    async fn objects(
        &self,
        reconstruction: &Reconstruction,
        key: Option<&str>,
        refs: &[(RefColumn, String)],
    ) -> Result<Vec<ReconstructedObject>, StoreError>;

    /// Every reconstruction of the cluster labelled `cluster`, by gap.
    async fn summary(&self, cluster: &str) -> Result<Vec<PartSummary>, StoreError>;

    /// Keys of `topic` in any stored reconstruction of the cluster starting
    /// with `prefix`, sorted, at most `limit`.
    async fn keys_with_prefix(
        &self,
        cluster: &Cluster,
        topic: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
}

/// The schema version this binary reads and writes: its newest migration.
pub fn schema_version() -> i64 {
    sqlite::open::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Opens the archive named by `url` for a command that creates archives
/// (`ingest`, `import`): [`open`] with [`Access::Create`].
pub async fn connect(url: &DbUrl) -> Result<Arc<dyn Store>, StoreError> {
    open(url, Access::Create).await
}

/// Opens the archive named by `url` as `access` allows ([`identify`]):
/// whatever is not an archive is refused untouched, a missing archive is
/// created only for [`Access::Create`], and a read opens it read-only at
/// this binary's schema version. A writer migrates it, dates events an
/// older version archived, and builds the keyframes it lacks.
pub async fn open(url: &DbUrl, access: Access) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match url {
        DbUrl::SqliteFile(_) | DbUrl::SqliteMemory => {
            Arc::new(SqliteStore::open(url, access).await?)
        }
        DbUrl::Postgres(_) => Arc::new(PgStore::open(url, access).await?),
    };
    if access.writes() {
        backfill::keyframes(store.as_ref()).await?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Migration versions in one dialect's folder.
    fn versions(dialect: &str) -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some(name.split('_').next()?.to_owned())
            })
            .collect()
    }

    #[test]
    fn both_dialects_have_the_same_migration_versions() {
        let sqlite = versions("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, versions("postgres"));
    }
}
