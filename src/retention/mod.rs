//! Retention: where a prune cuts a cluster's history, checked before
//! anything is deleted (`plan`), and the budgets `ingest --retain` and
//! `--retain-size` keep in the background ([`background`]). The deleting
//! itself is the store's ([`crate::store::Store::prune`]).

pub mod background;

use crate::archive::{Cluster, Cut, Prune};
use crate::store::{MomentQuery, Point, Store, StoreError, index_at_time};

/// Why a cut cannot be made; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("cluster `{cluster}` holds no events: there is nothing to prune")]
    Empty { cluster: String },
    #[error(
        "index `{index}` is beyond the newest index archived for cluster `{cluster}` ({newest}): \
         give --before-index {newest} or less (the newest frame is always kept)"
    )]
    BeyondNewest {
        cluster: String,
        index: u64,
        newest: u64,
    },
    #[error(
        "`{time}` is in the future: give a time in the past, e.g. --before 90d for 90 days ago"
    )]
    Future { time: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a prune asked for comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Delete the history before `before` (dated `time` by Nomad's clock).
    Prune { before: u64, time: Option<i64> },
    /// The cut in force is at or after the one asked for, and finished.
    Already(Prune),
    /// Nothing is archived before the cut.
    Nothing,
}

/// Checks `cut` against the cluster's history (`now`: Unix ms, for a time
/// in the future) and finds its index: an index is taken as given (at
/// most the newest index); a time is the moment `query snapshot --at TIME`
/// shows, everything up to it pruned, but never the newest frame.
pub async fn plan(
    store: &dyn Store,
    cluster: &Cluster,
    cut: Cut,
    now: i64,
) -> Result<Plan, RetentionError> {
    let Some((_, newest)) = store.span(cluster).await? else {
        return Err(RetentionError::Empty {
            cluster: cluster.name.clone(),
        });
    };
    let (before, time) = match cut {
        Cut::Index(index) if index > newest => {
            return Err(RetentionError::BeyondNewest {
                cluster: cluster.name.clone(),
                index,
                newest,
            });
        }
        Cut::Index(index) => (index, time_at(store, cluster, index).await?),
        Cut::Time(time) if time > now => {
            return Err(RetentionError::Future {
                time: jiff::Timestamp::from_millisecond(time)
                    .map_or_else(|_| format!("{time}ms"), |t| t.to_string()),
            });
        }
        Cut::Time(time) => match index_at_time(store, cluster, time).await? {
            None => return Ok(Plan::Nothing),
            Some(index) if index >= newest => (newest, time_at(store, cluster, newest).await?),
            Some(index) => (index + 1, Some(time)),
        },
    };
    match store.pruned(cluster).await? {
        Some(p) if p.before_index >= before && p.finished_at.is_some() => Ok(Plan::Already(p)),
        _ if before <= 1 => Ok(Plan::Nothing),
        _ => Ok(Plan::Prune { before, time }),
    }
}

/// The time by Nomad's clock of the state just before `index`.
async fn time_at(
    store: &dyn Store,
    cluster: &Cluster,
    index: u64,
) -> Result<Option<i64>, StoreError> {
    let query = MomentQuery {
        point: Point::Index(index.saturating_sub(1)),
        terminal_within: None,
        refs: Vec::new(),
    };
    Ok(store.moment(cluster, &query).await?.and_then(|m| m.time))
}
