//! `nomad-chronicle query`: answers from the archive, for post-incident work.

use std::io::Write;
use std::process::ExitCode;

use super::history::pick_cluster;
use super::query_lists::{AllocsArgs, DeploymentsArgs, EvalsArgs, JobsArgs};
use super::time_arg::{TimeDisplay, parse_time};
use crate::archive::{Cluster, RefColumn};
use crate::config::DbUrl;
use crate::query::events::{self, EventsQuery};
use crate::query::lists;
use crate::query::render::{Look, Output, colour_wanted, table_width};
use crate::query::snapshot::{self, SnapshotQuery};
use crate::query::state::{self, At, StateQuery};
use crate::query::timeline::{self, Subject, TimelineQuery};
use crate::query::{QueryError, canonical_topic};
use crate::store::{self, Store};

/// Reconstruct what happened from the archive.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub command: QueryCommand,
    #[command(flatten)]
    pub times: TimeDisplay,
}

#[derive(Debug, clap::Subcommand)]
pub enum QueryCommand {
    Events(EventsArgs),
    /// A job's timeline: versions registered (with image, count and resource
    /// changes), its evaluations, deployments and allocations (placements, status
    /// transitions, task failures with their messages), stop and deregistration.
    #[command(mut_arg("id", |a| a.value_name("JOB").help("The job ID or a unique prefix")))]
    Job(ObjectArgs),
    /// An allocation's lifecycle: placement, desired and client status changes,
    /// each task's state changes and task events (once each, across Nomad's
    /// repeated snapshots), and what it replaced or what replaced it.
    #[command(mut_arg("id", |a| a
        .value_name("ALLOC")
        .help("The allocation ID or a unique prefix (at least 4 characters)")))]
    Alloc(ObjectArgs),
    /// A node's timeline: status, eligibility and drain changes, node events, and
    /// the allocations placed on it with their status changes.
    #[command(mut_arg("id", |a| a.value_name("NODE").help("The node ID, a unique prefix, or its name")))]
    Node(ObjectArgs),
    /// An evaluation's timeline: trigger, status changes, failed placements, and
    /// the allocations it placed.
    #[command(mut_arg("id", |a| a.value_name("EVAL").help("The evaluation ID or a unique prefix")))]
    Eval(ObjectArgs),
    /// A deployment's timeline: status transitions, and its allocations.
    #[command(mut_arg("id", |a| a
        .value_name("DEPLOYMENT")
        .help("The deployment ID or a unique prefix")))]
    Deployment(ObjectArgs),
    State(StateArgs),
    Snapshot(SnapshotArgs),
    Allocs(AllocsArgs),
    Deployments(DeploymentsArgs),
    Evals(EvalsArgs),
    Jobs(JobsArgs),
}

/// The cluster as of a point in history: every node, job and allocation
/// present then, as Nomad last described it — what /v1/nodes, /v1/jobs and
/// /v1/allocations would have answered. A stopped job is listed (dead); a
/// purged job and a deregistered node are not. Allocations that completed,
/// failed or were lost are listed only when their last change is recent;
/// the header says how many were left out.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub point: PointArgs,
    /// Only this job and its allocations.
    #[arg(long)]
    pub job: Option<String>,
    /// Only this node (ID, prefix or name) and its allocations.
    #[arg(long)]
    pub node: Option<String>,
    /// Terminal allocations (complete, failed, lost) whose last change is at
    /// most this long before the point are listed (e.g. 30m, 1d).
    /// 0s lists only those that ended at the point itself.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_window)]
    pub terminal_within: std::time::Duration,
    /// List every terminal allocation, however old (reads history from its start).
    #[arg(long, conflicts_with = "terminal_within")]
    pub all: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The object a timeline is about, and which part of its history to read.
/// Each timeline subcommand names and describes the object's ID itself.
#[derive(Debug, clap::Args)]
pub struct ObjectArgs {
    /// The object's ID.
    pub id: String,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub range: Range,
}

/// Which part of history to read.
#[derive(Debug, clap::Args)]
pub struct Range {
    /// Lowest index (inclusive).
    #[arg(long, default_value_t = 0)]
    pub from_index: u64,
    /// Highest index (inclusive).
    #[arg(long)]
    pub to_index: Option<u64>,
    /// Only events that happened (Nomad's clock) at or after this time: 2026-12-04T17:41:30+01:00 or …Z
    /// (RFC 3339), 2026-12-04 17:41, 2026-12-04 or 17:41 (without an offset: in
    /// the local zone, `TZ`), or a duration ago (2h, 1h30m).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<i64>,
    /// Only events that happened before this time: 2026-12-04T17:41:30+01:00 or …Z
    /// (RFC 3339), 2026-12-04 17:41, 2026-12-04 or 17:41 (without an offset: in
    /// the local zone, `TZ`), or a duration ago (2h, 1h30m).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until: Option<i64>,
    /// Read at most this many events.
    #[arg(long, default_value_t = 10_000)]
    pub limit: u32,
}

/// The raw archive, filtered; newest last.
///
/// IDs of allocations, nodes, evaluations and deployments may be unique
/// prefixes (at least 4 characters), as with the Nomad CLI.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only these topics (repeatable), e.g. Allocation.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Only these event types (repeatable), e.g. PlanResult.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only events whose Key is this.
    #[arg(long)]
    pub key: Option<String>,
    /// Only events about this job (its own events, its evaluations, allocations, deployments).
    #[arg(long)]
    pub job: Option<String>,
    /// Only events about this allocation.
    #[arg(long)]
    pub alloc: Option<String>,
    /// Only events about this node (its own events and the allocations placed on it).
    #[arg(long)]
    pub node: Option<String>,
    /// Only events about this evaluation.
    #[arg(long)]
    pub eval: Option<String>,
    /// Only events about this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub range: Range,
}

/// One object exactly as Nomad last described it at or before a point in history.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The object's topic: Job, Allocation, Evaluation, Deployment, Node, …
    pub topic: String,
    /// Its ID (or a unique prefix of at least 4 characters).
    pub key: String,
    #[command(flatten)]
    pub point: PointArgs,
    #[command(flatten)]
    pub common: Common,
}

/// Options every query takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The cluster to ask about; needed when the archive holds several.
    #[arg(long, value_parser = super::parse_cluster)]
    pub cluster: Option<String>,
    /// Only this namespace (events without one, such as Node, always pass); default: all.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub shape: TableShape,
}

/// How tables are laid out (status shares these).
#[derive(Debug, Clone, clap::Args)]
pub struct TableShape {
    /// Show every value of a table whole, however wide it gets.
    #[arg(long, conflicts_with = "width")]
    pub wide: bool,
    /// Fit tables in this many columns (default: the terminal's width;
    /// values whole when the output is not a terminal).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(20..))]
    pub width: Option<u16>,
    /// Show object IDs whole instead of their first 8 characters.
    #[arg(long)]
    pub verbose: bool,
}

impl TableShape {
    /// How an answer for stdout is shown.
    pub fn look(&self) -> Look {
        Look {
            colour: colour_wanted(),
            width: table_width(self.width.map(usize::from), self.wide),
            verbose: self.verbose,
        }
    }
}

impl QueryCommand {
    /// The options every query takes.
    fn common(&self) -> &Common {
        match self {
            QueryCommand::Events(a) => &a.common,
            QueryCommand::State(a) => &a.common,
            QueryCommand::Snapshot(a) => &a.common,
            QueryCommand::Allocs(a) => &a.common,
            QueryCommand::Deployments(a) => &a.common,
            QueryCommand::Evals(a) => &a.common,
            QueryCommand::Jobs(a) => &a.common,
            QueryCommand::Job(a)
            | QueryCommand::Alloc(a)
            | QueryCommand::Node(a)
            | QueryCommand::Eval(a)
            | QueryCommand::Deployment(a) => &a.common,
        }
    }
}

/// A point in history, for `snapshot` and `state`; neither given: now
/// (the newest stored moment).
#[derive(Debug, clap::Args)]
pub struct PointArgs {
    /// At or before this raft index (default: now, the newest stored).
    #[arg(long, value_name = "N", conflicts_with = "at")]
    pub at_index: Option<u64>,
    /// At or before this time: 2026-12-04T17:41:30+01:00 or …Z
    /// (RFC 3339), 2026-12-04 17:41, 2026-12-04 or 17:41 (without an offset: in
    /// the local zone, `TZ`), or a duration ago (2h, 1h30m).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub at: Option<i64>,
}

impl PointArgs {
    /// `--at-index` or `--at`, whichever was given, else now: the newest
    /// stored index, which stderr names.
    async fn at(&self, store: &dyn Store, cluster: &Cluster) -> Result<At, QueryError> {
        match (self.at_index, self.at) {
            (Some(index), _) => Ok(At::Index(index)),
            (None, Some(time)) => Ok(At::Time(time)),
            (None, None) => match store.span(cluster).await? {
                Some((_, last)) => {
                    eprintln!(
                        "now: index {last}, the newest stored in cluster `{}`",
                        cluster.name
                    );
                    Ok(At::Index(last))
                }
                None => Err(QueryError::NotFound(format!(
                    "cluster `{}`: {}",
                    cluster.name,
                    crate::query::covers(None)
                ))),
            },
        }
    }
}

/// Parses a window such as `30m`, `1d` or `0s` (humantime syntax).
fn parse_window(value: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("`{value}` is not a duration ({e}); use e.g. 30m, 1h or 2d"))
}

fn namespace(common: &Common) -> Option<String> {
    common.namespace.clone().filter(|ns| ns != "*")
}

impl EventsArgs {
    /// The selection these options ask for.
    fn query(&self) -> EventsQuery {
        let refs = [
            (RefColumn::Job, &self.job),
            (RefColumn::Alloc, &self.alloc),
            (RefColumn::Node, &self.node),
            (RefColumn::Eval, &self.eval),
            (RefColumn::Deployment, &self.deployment),
        ]
        .into_iter()
        .filter_map(|(column, id)| id.clone().map(|id| (column, id)))
        .collect();
        EventsQuery {
            topics: self.topics.iter().map(|t| canonical_topic(t)).collect(),
            types: self.types.clone(),
            key: self.key.clone(),
            refs,
            namespace: namespace(&self.common),
            from_index: self.range.from_index,
            to_index: self.range.to_index,
            since: self.range.since,
            until: self.range.until,
            limit: self.range.limit.max(1),
        }
    }
}

impl ObjectArgs {
    /// The timeline these options ask for, about `subject`.
    fn query(&self, subject: Subject) -> TimelineQuery {
        TimelineQuery {
            subject,
            id: self.id.clone(),
            namespace: namespace(&self.common),
            from_index: self.range.from_index,
            to_index: self.range.to_index,
            since: self.range.since,
            until: self.range.until,
            limit: self.range.limit.max(1),
        }
    }
}

/// Answers the query into `out`.
async fn answer(
    command: &QueryCommand,
    store: &dyn Store,
    cluster: &Cluster,
    out: &mut impl Write,
) -> Result<(), QueryError> {
    let look = command.common().shape.look();
    let look = &look;
    let output = command.common().output;
    let (subject, object) = match command {
        QueryCommand::Events(a) => {
            let query = a.query();
            return events::run(store, cluster, &query, output, out, look)
                .await
                .map(|_| ());
        }
        QueryCommand::Snapshot(a) => {
            let within = i64::try_from(a.terminal_within.as_millis()).unwrap_or(i64::MAX);
            let query = SnapshotQuery {
                at: a.point.at(store, cluster).await?,
                job: a.job.clone(),
                node: a.node.clone(),
                terminal_within: (!a.all).then_some(within),
            };
            return snapshot::run(store, cluster, &query, output, out, look).await;
        }
        QueryCommand::State(a) => {
            let query = StateQuery {
                topic: canonical_topic(&a.topic),
                key: a.key.clone(),
                at: a.point.at(store, cluster).await?,
            };
            return state::run(store, cluster, &query, output, out, look).await;
        }
        QueryCommand::Allocs(a) => {
            return lists::run(store, cluster, &a.query(), output, out, look).await;
        }
        QueryCommand::Deployments(a) => {
            return lists::run(store, cluster, &a.query(), output, out, look).await;
        }
        QueryCommand::Evals(a) => {
            return lists::run(store, cluster, &a.query(), output, out, look).await;
        }
        QueryCommand::Jobs(a) => {
            return lists::jobs::run(store, cluster, &a.query(), output, out, look).await;
        }
        QueryCommand::Job(a) => (Subject::Job, a),
        QueryCommand::Alloc(a) => (Subject::Alloc, a),
        QueryCommand::Node(a) => (Subject::Node, a),
        QueryCommand::Eval(a) => (Subject::Eval, a),
        QueryCommand::Deployment(a) => (Subject::Deployment, a),
    };
    let query = object.query(subject);
    timeline::run(store, cluster, &query, output, out, look).await
}

pub async fn run(args: QueryArgs, db: &DbUrl) -> anyhow::Result<ExitCode> {
    args.times.apply();
    let store = store::open(db, store::Access::Read).await?;
    let common = args.command.common();
    let cluster = pick_cluster(store.as_ref(), common.cluster.as_deref(), &db.to_string()).await;
    let cluster = match cluster {
        Ok(cluster) => cluster,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    // Every answer is written as its rows are read; nothing is written
    // before an answer knows it has one.
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let answered = answer(&args.command, store.as_ref(), &cluster, &mut stdout).await;
    let answered = match answered {
        Err(QueryError::NotFound(message)) => Err(QueryError::NotFound(
            with_cut(store.as_ref(), &cluster, message).await,
        )),
        other => other,
    };
    store.close().await;
    let written = match answered {
        Ok(()) => stdout.flush(),
        Err(QueryError::NotFound(message)) => {
            eprintln!("{message}");
            return Ok(ExitCode::from(1));
        }
        Err(QueryError::Output(e)) => Err(e),
        Err(e) => return Err(e.into()),
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// A "not found" message, and that history before the cut in force was
/// pruned when it was: what was asked for may have been there.
async fn with_cut(store: &dyn Store, cluster: &Cluster, message: String) -> String {
    match store.pruned(cluster).await {
        Ok(Some(cut)) if !message.contains(&cut.sentence()) => {
            format!("{message}; {}, so it may have been there", cut.sentence())
        }
        _ => message,
    }
}
