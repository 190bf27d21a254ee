//! Keyframes and moments on PostgreSQL: the shared statements
//! ([`crate::store::keyframe`], [`crate::store::moment`]) run on a
//! connection, in the writer's transaction or in transactions of their own.

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::PgConnection;

use super::{EVENT, PgStore, STYLE, query, query_as, query_scalar};
use crate::archive::Cluster;
use crate::store::dictionaries;
use crate::store::keyframe::{self, Keyframe, KeyframeRecord, Run, Transactions};
use crate::store::moment::{self, MomentRecord, Select};
use crate::store::statement::{Placeholders, Statement};
use crate::store::{Moment, MomentObject, MomentQuery, Rows, StoreError};

#[async_trait]
impl Run for PgConnection {
    fn style(&self) -> Placeholders {
        STYLE
    }

    async fn int(&mut self, statement: Statement) -> Result<Option<i64>, StoreError> {
        let row: Option<Option<i64>> = query_scalar(statement)?.fetch_optional(&mut *self).await?;
        Ok(row.flatten())
    }

    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError> {
        Ok(query(statement)?.execute(&mut *self).await?.rows_affected())
    }

    async fn keyframe(&mut self, statement: Statement) -> Result<Option<Keyframe>, StoreError> {
        let row: Option<KeyframeRecord> = query_as(statement)?.fetch_optional(&mut *self).await?;
        Ok(row.map(Keyframe::from))
    }
}

#[async_trait]
impl Transactions for PgStore {
    async fn step(
        &self,
        cluster_id: i64,
        from: Option<Keyframe>,
    ) -> Result<Option<Keyframe>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let built = keyframe::step(&mut *tx, cluster_id, from, None).await?;
        tx.commit().await?;
        Ok(built)
    }

    async fn int(&self, statement: Statement) -> Result<Option<i64>, StoreError> {
        self.pool.acquire().await?.int(statement).await
    }

    async fn keyframe(&self, statement: Statement) -> Result<Option<Keyframe>, StoreError> {
        self.pool.acquire().await?.keyframe(statement).await
    }

    fn style(&self) -> Placeholders {
        STYLE
    }
}

/// [`crate::store::Store::moment`].
pub(super) async fn moment(
    store: &PgStore,
    cluster: &Cluster,
    query: &MomentQuery,
) -> Result<Option<Moment>, StoreError> {
    let mut conn = store.pool.acquire().await?;
    moment::resolve(&mut *conn, cluster.id, query).await
}

/// [`crate::store::Store::moment_objects`].
pub(super) fn objects<'a>(
    store: &'a PgStore,
    cluster: &'a Cluster,
    at: &Moment,
    rows: Rows,
) -> BoxStream<'a, Result<MomentObject, StoreError>> {
    let statement = moment::objects(cluster.id, at, Select::Rows(rows, EVENT), STYLE);
    let select = match query_as::<MomentRecord>(statement) {
        Ok(select) => select,
        Err(e) => return futures_util::stream::once(async { Err(e) }).boxed(),
    };
    futures_util::stream::once(async move {
        dictionaries::load_cluster(store, cluster).await?;
        Ok::<_, StoreError>(moment::decode_rows(
            select.fetch(&store.pool),
            store,
            cluster,
        ))
    })
    .try_flatten()
    .boxed()
}

/// [`crate::store::Store::terminal_left_out`].
pub(super) async fn left_out(
    store: &PgStore,
    cluster: &Cluster,
    at: &Moment,
) -> Result<u64, StoreError> {
    let mut conn = store.pool.acquire().await?;
    moment::left_out(&mut *conn, cluster.id, at).await
}

/// [`crate::store::Store::build_keyframes`].
pub(super) async fn build(
    store: &PgStore,
    cluster: &Cluster,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, StoreError> {
    keyframe::catch_up(store, cluster.id, &cluster.name, progress).await
}
