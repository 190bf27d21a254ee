//! Timing one query command: a warm-up run whose output is counted, then
//! timed runs of the binary, each from spawn to exit.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::child::{for_each_line, run_measured};
use crate::stats::percentile;

/// The fewest timed runs of a query whose warm-up run took less than the
/// budget.
const MIN_RUNS: usize = 3;

/// What the runs of one query on one archive measured.
pub struct Timing {
    pub p50: Duration,
    /// Timed runs (the warm-up run not counted).
    pub runs: usize,
    /// The highest peak RSS of any timed run.
    pub peak_rss: Option<u64>,
    /// Lines the query wrote (in its default table output).
    pub lines: usize,
}

/// How often to run each query.
#[derive(Debug, Clone, Copy)]
pub struct Repeat {
    /// Timed runs wanted.
    pub runs: usize,
    /// Stop after this much time spent in timed runs, once [`MIN_RUNS`] are
    /// done (one when the warm-up run alone took longer).
    pub budget: Duration,
}

/// Runs `nomad-chronicle --db url query <args>` once to warm up, then times it.
pub fn time_query(
    bin: &Path,
    url: &str,
    args: &[String],
    repeat: Repeat,
) -> anyhow::Result<Timing> {
    let command = || {
        let mut cmd = Command::new(bin.join("nomad-chronicle"));
        cmd.args(["--db", url, "query"]).args(args);
        cmd
    };
    let mut lines = 0;
    let warm_up = Instant::now();
    for_each_line(&mut command(), |_| lines += 1)
        .with_context(|| format!("`query {}`", args.join(" ")))?;
    // A query slower than the budget on its own is timed once.
    let min_runs = if warm_up.elapsed() > repeat.budget {
        1
    } else {
        MIN_RUNS
    };
    let started = Instant::now();
    let (mut times, mut peak_rss) = (Vec::new(), None);
    while times.len() < repeat.runs.max(1)
        && (times.len() < min_runs || started.elapsed() < repeat.budget)
    {
        let run = run_measured(&mut command())?;
        times.push(run.wall);
        peak_rss = peak_rss.max(run.peak_rss);
    }
    Ok(Timing {
        p50: percentile(&mut times, 0.5),
        runs: times.len(),
        peak_rss,
        lines,
    })
}
