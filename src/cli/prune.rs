//! `nomad-chronicle prune`: delete a cluster's history before a cut.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;

use super::history::pick_cluster;
use super::status::Output;
use super::status::json::PruneReportJson;
use super::time_arg::{TimeDisplay, parse_time};
use crate::archive::{Cut, PruneReport, now_millis};
use crate::config::DbUrl;
use crate::query::render;
use crate::retention::{Plan, plan};
use crate::store::{self, Store};

/// Delete a cluster's history before a time or a raft index (retention).
///
/// The events before the cut are deleted a few thousand per transaction, so
/// a running `ingest` keeps committing; the latest event of each node, job
/// and allocation still present at the cut is kept, so snapshots and states
/// after it stay whole. From then on every answer that reaches before the
/// cut says that history there was pruned, `status` shows the cut, and
/// `replay` and `serve` start at the first index kept. A new SQLite archive
/// gives the space back to the file system; see docs/schema.md, "Retention".
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("cut")
        .required(true)
        .args(["before", "before_index"])
))]
pub struct PruneArgs {
    /// Prune the history before this time by Nomad's clock (the moment
    /// `query snapshot --at TIME` shows, and everything before it):
    /// RFC 3339, a local date or date-time, or a duration ago (90d, 12w).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub before: Option<i64>,

    /// Prune the events whose raft index is below N (the newest frame is
    /// always kept).
    #[arg(long, value_name = "N")]
    pub before_index: Option<u64>,

    /// The cluster to prune; required when the archive holds several.
    #[arg(long, value_parser = super::parse_cluster)]
    pub cluster: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    #[command(flatten)]
    pub times: TimeDisplay,
}

pub async fn run(args: PruneArgs, db: &DbUrl) -> anyhow::Result<ExitCode> {
    let cut = match (args.before, args.before_index) {
        (Some(time), None) => Cut::Time(time),
        (None, Some(index)) => Cut::Index(index),
        _ => bail!("give one of --before TIME or --before-index N"),
    };
    args.times.apply();
    let store = store::open(db, store::Access::Write).await?;
    let done = prune(store.as_ref(), args.cluster.as_deref(), cut, db).await;
    store.close().await;
    let Some((cluster, report)) = done? else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        Output::Json => serde_json::to_writer_pretty(&mut out, &PruneReportJson::from(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Output::Table => render_report(&mut out, &cluster, &report, db),
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Plans the cut and prunes; `None` (said on stderr) when there was
/// nothing to do.
async fn prune(
    store: &dyn Store,
    cluster: Option<&str>,
    cut: Cut,
    db: &DbUrl,
) -> anyhow::Result<Option<(String, PruneReport)>> {
    let cluster = pick_cluster(store, cluster, &db.to_string()).await?;
    match plan(store, &cluster, cut, now_millis()).await? {
        Plan::Prune { before, time } => match store.prune(&cluster, before, time).await {
            Ok(report) => Ok(Some((cluster.name, report))),
            Err(e) if e.is_read_only() => bail!(
                "`{db}` may not be written by this user or process ({e}): nothing was pruned; \
                 prune with the database user and file permissions `ingest` uses"
            ),
            Err(e) => Err(e.into()),
        },
        Plan::Already(p) => {
            eprintln!(
                "cluster `{}`: {} already; nothing to do",
                cluster.name,
                p.sentence()
            );
            Ok(None)
        }
        Plan::Nothing => {
            eprintln!(
                "cluster `{}` holds no history before the cut; nothing to do",
                cluster.name
            );
            Ok(None)
        }
    }
}

/// What the prune did, for people; how to get the space back when the
/// archive could not give it back by itself.
fn render_report(
    out: &mut impl Write,
    cluster: &str,
    report: &PruneReport,
    db: &DbUrl,
) -> std::io::Result<()> {
    writeln!(out, "cluster   {cluster}")?;
    writeln!(out, "  pruned    {}", report.prune.sentence())?;
    writeln!(out, "  deleted   {} events", report.prune.events)?;
    writeln!(
        out,
        "  kept      {} events before the cut, for snapshots after it",
        report.kept
    )?;
    writeln!(
        out,
        "  size      {} → {}",
        bytesize::ByteSize(report.bytes_before).display().iec(),
        bytesize::ByteSize(report.bytes_after).display().iec()
    )?;
    if !report.space_returned {
        writeln!(out, "{}", vacuum_hint(db))?;
    }
    if let Some(at) = report.prune.finished_at {
        writeln!(out, "  finished  {}", render::time_seconds(at))?;
    }
    Ok(())
}

/// How to give the freed space back to the file system.
fn vacuum_hint(db: &DbUrl) -> String {
    match db {
        DbUrl::SqliteFile(path) => format!(
            "  note      this archive was created before incremental auto-vacuum: the freed pages \
             are reused for new events but the file keeps its size; to shrink it once (and let \
             later prunes shrink it), stop ingest and run \
             `sqlite3 {} 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'`",
            path.display()
        ),
        _ => "  note      the freed space is reused for new events".to_owned(),
    }
}
