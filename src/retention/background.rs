//! `ingest --retain`, `--retain-size` and `--pack-older-than`: while the
//! ingester holds the cluster's writer lease, a task beside it checks every
//! [`CHECK_EVERY`] (and once at the start) whether the archive keeps more
//! than it should, and prunes, oldest first, then packs the history that
//! has aged into blocks ([`crate::store::pack`]), in the store's small
//! transactions, so the writer keeps committing meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Plan, RetentionError, plan};
use crate::archive::{Cluster, Cut, PruneReport, now_millis};
use crate::store::Store;
use crate::store::block::TARGET_BYTES;
use crate::store::pack::{self, PackSettings};

/// How often the budgets are checked: reading the size and the cut costs
/// a few small queries, and the history a few minutes add is small next
/// to any budget worth setting.
pub const CHECK_EVERY: Duration = Duration::from_secs(5 * 60);

/// A size budget is met by pruning this share of the cluster's kept
/// history at a time (then measuring again), oldest first.
const SIZE_STEP_PERCENT: u64 = 10;

/// Prunes of one size check at most, so that a budget smaller than what the
/// archive can shrink to (the events kept for snapshots, the IDs) gives up
/// until the next check instead of spinning. A prune that does not shrink
/// the archive (PostgreSQL, whose tables reuse the space instead) ends the
/// check too.
const SIZE_STEPS: u32 = 10;

/// What to keep, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// History older than this (by Nomad's clock) is pruned.
    pub age: Option<Duration>,
    /// The archive is pruned, oldest first, until it is at most this many
    /// bytes ([`Store::size`]).
    pub size: Option<u64>,
    /// History older than this (by Nomad's clock) is packed into blocks.
    pub pack: Option<Duration>,
}

impl Budget {
    pub fn is_set(&self) -> bool {
        self.age.is_some() || self.size.is_some() || self.pack.is_some()
    }
}

/// Checks the budget every [`CHECK_EVERY`] until `stop` fires, which lets
/// a check under way finish (ingest reached `--until-index`); `abort`
/// (shutdown) interrupts it between two of the prune's transactions, and
/// the next prune finishes the work. A failed check is logged and tried
/// again at the next one.
pub async fn run(
    store: Arc<dyn Store>,
    cluster: Cluster,
    budget: Budget,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    if !budget.is_set() {
        return;
    }
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sized = Sized::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let checked = tokio::select! {
            () = abort.cancelled() => return,
            checked = enforce(store.as_ref(), &cluster, budget, now_millis(), &mut sized) => checked,
        };
        if let Err(error) = checked {
            tracing::warn!(cluster = %cluster.name, %error, "Retention check failed; trying again later");
        }
    }
}

/// What the size budget remembers from one check to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sized {
    /// The archive's size after the last prune made for the size budget.
    /// PostgreSQL's tables keep their size after a prune and reuse the
    /// space freed: the budget prunes again only once they grew past it.
    after_last: Option<u64>,
}

/// One check: prunes what is older than the age budget, packs what has
/// aged past the packing age, then, while the archive is over the size
/// budget and pruning shrinks it, prunes a tenth of the kept history at a
/// time. Returns the prunes made.
pub async fn enforce(
    store: &dyn Store,
    cluster: &Cluster,
    budget: Budget,
    now: i64,
    sized: &mut Sized,
) -> Result<Vec<PruneReport>, RetentionError> {
    let mut done = Vec::new();
    if let Some(age) = budget.age {
        let ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let cut = Cut::Time(now.saturating_sub(ms));
        if let Some(report) = prune(store, cluster, cut, now).await? {
            done.push(report);
        }
    }
    if let Some(age) = budget.pack {
        // A cluster that cannot be packed still keeps its size budget.
        if let Err(error) = pack_aged(store, cluster, age, now).await {
            tracing::warn!(cluster = %cluster.name, %error, "Packing history failed; trying again later");
        }
    }
    let Some(limit) = budget.size else {
        return Ok(done);
    };
    let mut size = store.size().await?;
    if sized.after_last.is_some_and(|after| size <= after) {
        return Ok(done);
    }
    for _ in 0..SIZE_STEPS {
        if size <= limit {
            break;
        }
        let Some((first, newest)) = store.span(cluster).await? else {
            break;
        };
        let step = ((newest - first) * SIZE_STEP_PERCENT / 100).max(1);
        let cut = Cut::Index((first + step).min(newest));
        let Some(report) = prune(store, cluster, cut, now).await? else {
            break;
        };
        let shrank = report.bytes_after < size;
        size = report.bytes_after;
        sized.after_last = Some(size);
        done.push(report);
        if !shrank {
            break;
        }
    }
    Ok(done)
}

/// Packs the cluster's history older than `age` before `now` into blocks.
/// The space freed is reused by new events (SQLite's freed pages, the old
/// row versions autovacuum frees on PostgreSQL); a prune gives it back.
async fn pack_aged(
    store: &dyn Store,
    cluster: &Cluster,
    age: Duration,
    now: i64,
) -> Result<(), RetentionError> {
    let settings = PackSettings::older_than(age, now, TARGET_BYTES, true);
    let report = pack::run(store.packer(), cluster, settings, &|_| {}).await?;
    if report.blocks > 0 {
        report.log(&cluster.name);
    }
    Ok(())
}

/// Plans and makes one prune; `None` when there was nothing to do.
async fn prune(
    store: &dyn Store,
    cluster: &Cluster,
    cut: Cut,
    now: i64,
) -> Result<Option<PruneReport>, RetentionError> {
    match plan(store, cluster, cut, now).await {
        Ok(Plan::Prune { before, time }) => {
            let report = store.prune(cluster, before, time).await?;
            tracing::info!(
                cluster = %cluster.name,
                before_index = before,
                events_deleted = report.prune.events,
                bytes = report.bytes_after,
                "Pruned history"
            );
            Ok(Some(report))
        }
        Ok(Plan::Already(_) | Plan::Nothing) | Err(RetentionError::Empty { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
