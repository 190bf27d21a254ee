//! The list subcommands of `nomad-chronicle query` (`allocs`,
//! `deployments`, `evals`, `jobs`): their options, turned into the
//! questions [`crate::query::lists`] answers.

use super::query::Common;
use super::time_arg::parse_time;
use crate::query::lists::jobs::JobsQuery;
use crate::query::lists::{ListKind, ListQuery};
use crate::query::state::At;

/// Nomad's time window of a list.
#[derive(Debug, clap::Args)]
pub struct Window {
    /// Only objects with an event of a status asked for at or after this
    /// time (Nomad's clock): 2026-12-04T17:41:30+01:00 or …Z (RFC 3339),
    /// 2026-12-04 17:41, 2026-12-04 or 17:41 (without an offset: in the
    /// local zone, `TZ`), or a duration ago (2h, 1h30m, 1d).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<i64>,
    /// … and before this time (same forms).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until: Option<i64>,
}

/// Allocations whose client status was one of those asked for within the
/// window, one row each, as their latest event in the window describes
/// them (which may have moved on from the status matched).
#[derive(Debug, clap::Args)]
pub struct AllocsArgs {
    /// Client statuses, comma-separated: pending, running, complete,
    /// failed, lost, unknown; default: any.
    #[arg(long, value_delimiter = ',', value_name = "STATUS,…")]
    pub status: Vec<String>,
    #[command(flatten)]
    pub window: Window,
    /// Only this job's (its ID or a unique prefix).
    #[arg(long)]
    pub job: Option<String>,
    /// Only those on this node (its ID, a unique prefix, or its name).
    #[arg(long)]
    pub node: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Deployments whose status was one of those asked for within the
/// window, one row each, as their latest event in the window describes
/// them.
#[derive(Debug, clap::Args)]
pub struct DeploymentsArgs {
    /// Statuses, comma-separated: initializing, pending, running, paused,
    /// blocked, unblocking, successful, failed, cancelled; default: any.
    #[arg(long, value_delimiter = ',', value_name = "STATUS,…")]
    pub status: Vec<String>,
    #[command(flatten)]
    pub window: Window,
    /// Only this job's (its ID or a unique prefix).
    #[arg(long)]
    pub job: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Evaluations whose status was one of those asked for within the window
/// (blocked, failed, …), one row each, as their latest event in the
/// window describes them (a blocked evaluation may be complete by then).
#[derive(Debug, clap::Args)]
pub struct EvalsArgs {
    /// Statuses, comma-separated: pending, blocked, complete, failed,
    /// canceled; default: any.
    #[arg(long, value_delimiter = ',', value_name = "STATUS,…")]
    pub status: Vec<String>,
    #[command(flatten)]
    pub window: Window,
    /// Only this job's (its ID or a unique prefix).
    #[arg(long)]
    pub job: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Every job present at a point in history (default: now, the newest
/// stored moment), stopped ones too, with its version, status, and its
/// allocations counted by client status: pending and running ones, and
/// complete, failed and lost ones that ended within the hour before.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// At or before this raft index.
    #[arg(long, value_name = "N", conflicts_with = "at")]
    pub at_index: Option<u64>,
    /// At or before this time (same forms as --since of other queries).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub at: Option<i64>,
    #[command(flatten)]
    pub common: Common,
}

fn namespace(common: &Common) -> Option<String> {
    common.namespace.clone().filter(|ns| ns != "*")
}

fn statuses(given: &[String]) -> Vec<String> {
    given
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl AllocsArgs {
    pub fn query(&self) -> ListQuery {
        ListQuery {
            kind: ListKind::Allocations,
            statuses: statuses(&self.status),
            job: self.job.clone(),
            node: self.node.clone(),
            namespace: namespace(&self.common),
            since: self.window.since,
            until: self.window.until,
        }
    }
}

impl DeploymentsArgs {
    pub fn query(&self) -> ListQuery {
        ListQuery {
            kind: ListKind::Deployments,
            statuses: statuses(&self.status),
            job: self.job.clone(),
            node: None,
            namespace: namespace(&self.common),
            since: self.window.since,
            until: self.window.until,
        }
    }
}

impl EvalsArgs {
    pub fn query(&self) -> ListQuery {
        ListQuery {
            kind: ListKind::Evaluations,
            statuses: statuses(&self.status),
            job: self.job.clone(),
            node: None,
            namespace: namespace(&self.common),
            since: self.window.since,
            until: self.window.until,
        }
    }
}

impl JobsArgs {
    pub fn query(&self) -> JobsQuery {
        let at = match (self.at_index, self.at) {
            (Some(index), _) => Some(At::Index(index)),
            (None, Some(time)) => Some(At::Time(time)),
            (None, None) => None,
        };
        JobsQuery {
            at,
            namespace: namespace(&self.common),
        }
    }
}
