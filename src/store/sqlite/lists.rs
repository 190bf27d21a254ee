//! The list questions on SQLite: the shared statements
//! ([`crate::store::lists`]) streamed from the pool.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

use super::{STYLE, SqliteStore, query_as};
use crate::archive::Cluster;
use crate::store::lists::{
    self, AllocationRow, DeploymentRow, EvaluationRow, JobRow, Kind, ListFilter, Lists,
};
use crate::store::statement::Statement;
use crate::store::{Moment, StoreError};

impl Lists for SqliteStore {
    fn allocations<'a>(
        &'a self,
        cluster: &'a Cluster,
        filter: &'a ListFilter,
    ) -> BoxStream<'a, Result<AllocationRow, StoreError>> {
        let statement = lists::list(cluster.id, Kind::Allocation, filter, STYLE);
        stream(self, statement)
    }

    fn deployments<'a>(
        &'a self,
        cluster: &'a Cluster,
        filter: &'a ListFilter,
    ) -> BoxStream<'a, Result<DeploymentRow, StoreError>> {
        let statement = lists::list(cluster.id, Kind::Deployment, filter, STYLE);
        stream(self, statement)
    }

    fn evaluations<'a>(
        &'a self,
        cluster: &'a Cluster,
        filter: &'a ListFilter,
    ) -> BoxStream<'a, Result<EvaluationRow, StoreError>> {
        let statement = lists::list(cluster.id, Kind::Evaluation, filter, STYLE);
        stream(self, statement)
    }

    fn jobs<'a>(
        &'a self,
        cluster: &'a Cluster,
        moment: &'a Moment,
        namespace: Option<&'a str>,
    ) -> BoxStream<'a, Result<JobRow, StoreError>> {
        stream(self, lists::jobs(cluster.id, moment, namespace, STYLE))
    }
}

/// The rows of `statement`, read as they are consumed.
pub(super) fn stream<'a, R>(
    store: &'a SqliteStore,
    statement: Statement,
) -> BoxStream<'a, Result<R, StoreError>>
where
    R: for<'r> sqlx::FromRow<'r, <sqlx::Sqlite as sqlx::Database>::Row> + Send + Unpin + 'a,
{
    match query_as::<R>(statement) {
        Ok(select) => select.fetch(&store.pool).map_err(StoreError::from).boxed(),
        Err(e) => futures_util::stream::once(async { Err(e) }).boxed(),
    }
}
