//! The SQLite archive: the embedded default. One file in WAL mode with
//! `synchronous=NORMAL` (a committed batch survives a process crash; a power
//! loss can cost the last batches, which the next run fetches again from
//! Nomad's buffer when it still holds them).
//!
//! By concern: `open` (connecting, pragmas, migrations), `lease` (the writer
//! and its commits), `checkpoint` (WAL checkpoints beside the writer),
//! `reads` (what [`Store`](super::Store) answers: clusters, events, pages,
//! lookups), `status`, and `reconstruction`. Rows map by column name onto
//! [`super::records`].

use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, FromRow, Sqlite, SqlitePool};

use super::StoreError;
use super::blocks::{BlockSource, Blocks};
use super::dictionaries::{Dictionaries, Source};
use super::statement::{Bind, Placeholders, Statement};

mod backfill;
mod checkpoint;
mod compact;
mod details;
mod details_fill;
mod identify;
mod keyframe;
mod lanes;
mod lease;
mod ledger;
mod lists;
pub(super) mod open;
mod pack;
mod prune;
mod reads;
mod reconstruction;
mod status;

/// SQLite writes placeholders as `?`.
const STYLE: Placeholders = Placeholders::Question;

/// How SQLite reads a stored event: its JSON as text, or a zstd frame as a
/// blob (`dictionary_id` says which), either read as bytes.
const EVENT: &str = "e.event";

/// Connections a store reads blocks of older events on, beside its pool.
const BLOCK_CONNECTIONS: u32 = 2;

/// The SQLite implementation of [`Store`](super::Store).
pub struct SqliteStore {
    pool: SqlitePool,
    url: String,
    /// `sqlite::memory:`: one connection and no WAL, so nothing to checkpoint.
    in_memory: bool,
    /// The dictionaries of compressed events, loaded as events name them.
    dictionaries: Dictionaries,
    /// The blocks of older events, loaded as reads name them.
    blocks: Blocks,
    /// Connections of their own for reading blocks, opened when first
    /// needed: a streamed snapshot holds one of `pool`'s while it loads
    /// blocks, and reads enough at once would hold all of them.
    blocks_pool: std::sync::OnceLock<SqlitePool>,
    /// How new writers compress ([`super::Store::set_compression`]).
    compression: std::sync::Mutex<super::compress::Settings>,
}

impl SqliteStore {
    /// How a writer created now compresses.
    fn compression(&self) -> super::compress::Settings {
        *self.compression.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Source for SqliteStore {
    fn dictionaries(&self) -> &Dictionaries {
        &self.dictionaries
    }

    fn block_source(&self) -> &dyn BlockSource {
        self
    }

    async fn read(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let list = serde_json::to_string(ids).unwrap_or_default();
        Ok(sqlx::query_as(
            "SELECT id, bytes FROM dictionaries WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn ids(&self, cluster_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM dictionaries WHERE cluster_id = ?")
                .bind(cluster_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[async_trait::async_trait]
impl BlockSource for SqliteStore {
    fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    async fn read_blocks(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let list = serde_json::to_string(ids).unwrap_or_default();
        Ok(sqlx::query_as(
            "SELECT id, bytes FROM event_blocks WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(self.blocks_pool())
        .await?)
    }
}

impl SqliteStore {
    /// The pool blocks are read on: `pool` itself for an archive in memory
    /// (a connection of another pool would open another database).
    fn blocks_pool(&self) -> &SqlitePool {
        if self.in_memory {
            return &self.pool;
        }
        self.blocks_pool.get_or_init(|| {
            let options = (*self.pool.connect_options()).clone();
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(BLOCK_CONNECTIONS)
                .connect_lazy_with(options)
        })
    }

    /// Runs `statement` and turns each row, mapped by column name onto `R`,
    /// into a `T`.
    async fn all<R, T>(&self, statement: Statement) -> Result<Vec<T>, StoreError>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
        T: From<R>,
    {
        let rows: Vec<R> = query_as(statement)?.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(T::from).collect())
    }

    /// Runs `statement` for at most one row, mapped as by [`Self::all`].
    async fn optional<R, T>(&self, statement: Statement) -> Result<Option<T>, StoreError>
    where
        R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
        T: From<R>,
    {
        let row: Option<R> = query_as(statement)?.fetch_optional(&self.pool).await?;
        Ok(row.map(T::from))
    }
}

/// The values of `binds`, in order.
fn arguments(binds: Vec<Bind>) -> Result<SqliteArguments, StoreError> {
    let mut arguments = SqliteArguments::default();
    for bind in binds {
        match bind {
            Bind::Int(v) => arguments.add(v),
            Bind::Text(v) => arguments.add(v),
        }
        .map_err(|e| StoreError::Query(sqlx::Error::Encode(e)))?;
    }
    Ok(arguments)
}

/// `statement` with its values bound, to execute.
fn query(statement: Statement) -> Result<Query<'static, Sqlite, SqliteArguments>, StoreError> {
    let arguments = arguments(statement.binds)?;
    Ok(sqlx::query_with(AssertSqlSafe(statement.sql), arguments))
}

/// `statement` with its values bound, its rows mapped by column name onto `T`.
fn query_as<T>(
    statement: Statement,
) -> Result<QueryAs<'static, Sqlite, T, SqliteArguments>, StoreError>
where
    T: for<'r> FromRow<'r, SqliteRow>,
{
    let arguments = arguments(statement.binds)?;
    Ok(sqlx::query_as_with(AssertSqlSafe(statement.sql), arguments))
}

/// `statement` with its values bound, selecting one column.
fn query_scalar<T>(
    statement: Statement,
) -> Result<QueryScalar<'static, Sqlite, T, SqliteArguments>, StoreError>
where
    (T,): for<'r> FromRow<'r, SqliteRow>,
{
    let arguments = arguments(statement.binds)?;
    Ok(sqlx::query_scalar_with(
        AssertSqlSafe(statement.sql),
        arguments,
    ))
}
