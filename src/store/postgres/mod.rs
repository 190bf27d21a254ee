//! The PostgreSQL archive: for teams that archive many clusters centrally and
//! report on them from BI tools. A batch's events go in with one binary
//! `COPY` (`copy.rs`; one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO
//! NOTHING` when another writer got in between), and a cluster has one
//! writer at a time: a session advisory lock, held by the connection that
//! also runs every commit.
//!
//! By concern: `open` (connecting, migrations), `lease` (the writer lock
//! and commits), `copy` (the binary COPY of events), `reads` (what
//! [`Store`](super::Store) answers: clusters, events, pages, lookups),
//! `status`, and `reconstruction`. Rows map by column name onto
//! [`super::records`].

use sqlx::postgres::{PgArguments, PgConnectOptions, PgRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Arguments, AssertSqlSafe, FromRow, PgPool, Postgres};

use super::StoreError;
use super::blocks::{BlockSource, Blocks};
use super::dictionaries::{Dictionaries, Source};
use super::statement::{Bind, Placeholders, Statement};

mod backfill;
mod compact;
mod copy;
mod details;
mod details_fill;
mod identify;
mod keyframe;
mod lease;
mod ledger;
mod lists;
pub(super) mod open;
mod pack;
mod prune;
mod reads;
mod reconstruction;
mod status;

/// PostgreSQL writes placeholders as `$1`, `$2`, ….
const STYLE: Placeholders = Placeholders::Numbered;

/// How PostgreSQL reads a stored event as bytes: a plain row's JSON exactly
/// as stored (`json` keeps its text), a compressed row's zstd frame, or
/// nothing for a row packed into a block (migration 0032).
const EVENT: &str = "COALESCE(convert_to(e.event::text, 'UTF8'), e.event_zstd, '\\x'::bytea)";

/// Connections a store reads blocks of older events on, beside its pool.
const BLOCK_CONNECTIONS: u32 = 2;

/// The PostgreSQL implementation of [`Store`](super::Store).
pub struct PgStore {
    /// Reads and cluster bookkeeping.
    pool: PgPool,
    /// For the dedicated connections that hold writer locks.
    options: PgConnectOptions,
    /// The URL with its password masked, for messages.
    url: String,
    /// The dictionaries of compressed events, loaded as events name them.
    dictionaries: Dictionaries,
    /// The blocks of older events, loaded as reads name them.
    blocks: Blocks,
    /// Connections of their own for reading blocks, opened when first
    /// needed: a streamed snapshot holds one of `pool`'s while it loads
    /// blocks, and reads enough at once would hold all of them.
    blocks_pool: std::sync::OnceLock<PgPool>,
    /// How new writers compress ([`super::Store::set_compression`]).
    compression: std::sync::Mutex<super::compress::Settings>,
}

impl PgStore {
    /// How a writer created now compresses.
    fn compression(&self) -> super::compress::Settings {
        *self.compression.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Source for PgStore {
    fn dictionaries(&self) -> &Dictionaries {
        &self.dictionaries
    }

    fn block_source(&self) -> &dyn BlockSource {
        self
    }

    async fn read(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, bytes FROM dictionaries WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn ids(&self, cluster_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM dictionaries WHERE cluster_id = $1")
                .bind(cluster_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[async_trait::async_trait]
impl BlockSource for PgStore {
    fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    async fn read_blocks(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, bytes FROM event_blocks WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(self.blocks_pool())
                .await?,
        )
    }
}
impl PgStore {
    /// The pool blocks are read on, opened on first use with `pool`'s
    /// options.
    fn blocks_pool(&self) -> &PgPool {
        self.blocks_pool.get_or_init(|| {
            let options = (*self.pool.connect_options()).clone();
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(BLOCK_CONNECTIONS)
                .connect_lazy_with(options)
        })
    }

    /// Runs `statement` and turns each row, mapped by column name onto `R`,
    /// into a `T`.
    async fn all<R, T>(&self, statement: Statement) -> Result<Vec<T>, StoreError>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
        T: From<R>,
    {
        let rows: Vec<R> = query_as(statement)?.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(T::from).collect())
    }

    /// Runs `statement` for at most one row, mapped as by [`Self::all`].
    async fn optional<R, T>(&self, statement: Statement) -> Result<Option<T>, StoreError>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
        T: From<R>,
    {
        let row: Option<R> = query_as(statement)?.fetch_optional(&self.pool).await?;
        Ok(row.map(T::from))
    }
}

/// The values of `binds`, in order.
fn arguments(binds: Vec<Bind>) -> Result<PgArguments, StoreError> {
    let mut arguments = PgArguments::default();
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
fn query(statement: Statement) -> Result<Query<'static, Postgres, PgArguments>, StoreError> {
    let arguments = arguments(statement.binds)?;
    Ok(sqlx::query_with(AssertSqlSafe(statement.sql), arguments))
}

/// `statement` with its values bound, its rows mapped by column name onto `T`.
fn query_as<T>(
    statement: Statement,
) -> Result<QueryAs<'static, Postgres, T, PgArguments>, StoreError>
where
    T: for<'r> FromRow<'r, PgRow>,
{
    let arguments = arguments(statement.binds)?;
    Ok(sqlx::query_as_with(AssertSqlSafe(statement.sql), arguments))
}

/// `statement` with its values bound, selecting one column.
fn query_scalar<T>(
    statement: Statement,
) -> Result<QueryScalar<'static, Postgres, T, PgArguments>, StoreError>
where
    (T,): for<'r> FromRow<'r, PgRow>,
{
    let arguments = arguments(statement.binds)?;
    Ok(sqlx::query_scalar_with(
        AssertSqlSafe(statement.sql),
        arguments,
    ))
}
