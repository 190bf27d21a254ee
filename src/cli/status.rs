//! `nomad-chronicle status`: what the archive holds, per cluster.

pub(crate) mod json;

use std::io::Write;
use std::process::ExitCode;

use super::query::TableShape;
use super::time_arg::TimeDisplay;
use crate::archive::{ClusterStatus, PartStatus, PartSummary, StatusReport};
use crate::config::DbUrl;
use crate::query::render::{self, Look};
use crate::query::table::{Column, Table};
use crate::store::{self, Store, StoreError};

/// Summarize the archive: per cluster, event counts, index range, topics,
/// the Nomad cluster's identity, recorded gaps and what was reconstructed
/// after them; and the database's size.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub shape: TableShape,
    #[command(flatten)]
    pub times: TimeDisplay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub async fn run(args: StatusArgs, db: &DbUrl) -> anyhow::Result<ExitCode> {
    args.times.apply();
    let store = store::open(db, store::Access::Read).await?;
    let report = with_reconstructions(store.as_ref()).await;
    store.close().await;
    let report = report?;
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        Output::Json => serde_json::to_writer_pretty(&mut out, &json::Report::from(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Output::Table => render_table(&mut out, &report, &args.shape.look()),
    };
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => {
            other?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The archive's summary, with each cluster's reconstructions.
async fn with_reconstructions(store: &dyn Store) -> Result<StatusReport, StoreError> {
    let mut report = store.status().await?;
    for cluster in &mut report.clusters {
        cluster.reconstructions = store.reconstructions().summary(&cluster.cluster).await?;
    }
    Ok(report)
}

/// What was reconstructed after one gap, on one line: each list's index and
/// object count, or why there is none.
fn reconstructed(parts: &[&PartSummary]) -> String {
    parts
        .iter()
        .map(|p| match (p.status, p.index) {
            (PartStatus::Stored, Some(index)) => {
                format!("{} at {index} ({})", p.topic, thousands(p.objects))
            }
            (status, _) => format!("{} {}", p.topic, status.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The human summary; its lists fit `look`'s width.
pub fn render_table(
    out: &mut impl Write,
    report: &StatusReport,
    look: &Look,
) -> std::io::Result<()> {
    writeln!(
        out,
        "database  {}  ({}, {})",
        report.database,
        report.backend,
        human_bytes(report.database_bytes)
    )?;
    if report.clusters.is_empty() {
        writeln!(
            out,
            "\nthe archive is empty: run `nomad-chronicle ingest` or `import`"
        )?;
    }
    for c in &report.clusters {
        render_cluster(out, c, look)?;
    }
    Ok(())
}

/// One cluster's block of the summary.
fn render_cluster(out: &mut impl Write, c: &ClusterStatus, look: &Look) -> std::io::Result<()> {
    writeln!(out)?;
    match &c.address {
        Some(address) => writeln!(out, "cluster   {}  ({address})", c.cluster)?,
        None => writeln!(out, "cluster   {}", c.cluster)?,
    }
    let range = match (c.first_index, c.last_index) {
        (Some(a), Some(b)) => format!("index {a} – {b}"),
        _ => "no events".to_owned(),
    };
    writeln!(out, "  events      {:<12} {range}", thousands(c.events))?;
    if let (Some(a), Some(b)) = (c.first_event_at, c.last_event_at) {
        writeln!(
            out,
            "  happened    {} – {}",
            render::time_seconds(a),
            render::time_seconds(b)
        )?;
    }
    if let (Some(a), Some(b)) = (c.first_received_at, c.last_received_at) {
        writeln!(
            out,
            "  received    {} – {}",
            render::time_seconds(a),
            render::time_seconds(b)
        )?;
    }
    if let Some(cp) = c.checkpoint {
        writeln!(out, "  checkpoint  {cp}")?;
    }
    if let Some(identity) = &c.identity {
        writeln!(out, "  identity    {identity}")?;
    }
    if !c.topics.is_empty() {
        let width = c.topics.iter().map(|t| t.topic.len()).max().unwrap_or(0);
        writeln!(out, "  topics")?;
        for t in &c.topics {
            writeln!(out, "    {:<width$}  {:>12}", t.topic, thousands(t.events))?;
        }
    }
    writeln!(
        out,
        "  malformed   {} lines skipped",
        thousands(c.malformed_lines)
    )?;
    render_pruned(out, c)?;
    render_gaps(out, c, look)
}

/// The cut in force: what retention gave up, when, and how many events.
fn render_pruned(out: &mut impl Write, c: &ClusterStatus) -> std::io::Result<()> {
    let Some(p) = &c.pruned else {
        return Ok(());
    };
    let state = match p.finished_at {
        Some(at) => format!("on {}", render::time_seconds(at)),
        None => format!("since {}, not finished", render::time_seconds(p.started_at)),
    };
    writeln!(
        out,
        "  pruned      {} ({} events deleted {state})",
        p.sentence(),
        thousands(p.events)
    )
}

/// The columns of the gaps' table: the reason last, wrapped.
const GAP_COLUMNS: [Column; 5] = [
    Column::fixed("FROM", 90),
    Column::fixed("TO", 90),
    Column::fixed("KIND", 80),
    Column::fixed("DETECTED", 70),
    Column::shrinks("REASON", 0, 30),
];

/// A cluster's recorded gaps, each with what was reconstructed after it.
fn render_gaps(out: &mut impl Write, c: &ClusterStatus, look: &Look) -> std::io::Result<()> {
    if c.gaps.is_empty() {
        return writeln!(out, "  gaps        none recorded");
    }
    writeln!(out, "  gaps        {}", c.gaps.len())?;
    let fit = crate::query::table::Fit {
        indent: 4,
        ..look.fit()
    };
    let mut table = Table::wrapping(out, &GAP_COLUMNS, fit);
    for g in &c.gaps {
        let parts: Vec<&PartSummary> = c
            .reconstructions
            .iter()
            .filter(|p| (p.gap_from_index, p.gap_to_index) == (g.from_index, g.to_index))
            .collect();
        let reason = match parts.is_empty() {
            true => g.reason.clone(),
            false => format!("{}; reconstructed: {}", g.reason, reconstructed(&parts)),
        };
        table.row(vec![
            g.from_index.to_string(),
            g.to_index.to_string(),
            g.kind.as_str().to_owned(),
            render::time_seconds(g.detected_at),
            reason,
        ])?;
    }
    table.finish().map(|_| ())
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
