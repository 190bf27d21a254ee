//! The report of `bench history` as markdown for docs/performance.md: one
//! row per query kind and per ingest or size figure, a column per backend
//! and archive size, and the ratio of the largest archive to the smallest.

use super::kinds::Kind;
use super::{BackendResult, HistoryBench, Measured};

/// One row: a value per backend and size, how to show it, and whether the
/// largest-to-smallest ratio means something for it.
struct Row {
    what: String,
    /// Per backend, per size.
    cells: Vec<Vec<Option<f64>>>,
    /// A note per backend and size (runs fewer than asked).
    notes: Vec<Vec<String>>,
    format: fn(f64) -> String,
    ratio: bool,
}

pub fn print(sizes: &[usize], kinds: &[&Kind], results: &[BackendResult], args: &HistoryBench) {
    let rows = rows(kinds, results, args);
    let ratio = sizes.len() > 1;
    let mut header = vec!["what".to_owned()];
    for r in results {
        for &size in sizes {
            header.push(format!("{} {}", r.backend.shown(), short(size)));
        }
        if ratio {
            header.push(format!(
                "{} / {}",
                short(sizes[sizes.len() - 1]),
                short(sizes[0])
            ));
        }
    }
    println!("| {} |", header.join(" | "));
    let aligns: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "---" } else { "---:" })
        .collect();
    println!("|{}|", aligns.join("|"));
    for row in &rows {
        let mut line = vec![row.what.clone()];
        for (b, cells) in row.cells.iter().enumerate() {
            for (s, cell) in cells.iter().enumerate() {
                let note = &row.notes[b][s];
                line.push(cell.map_or("–".to_owned(), |v| format!("{}{note}", (row.format)(v))));
            }
            if ratio {
                line.push(ratio_cell(row.ratio, cells));
            }
        }
        println!("| {} |", line.join(" | "));
    }
    println!(
        "\nQuery figures are the p50 in ms of {} timed runs of the binary (spawn to exit, default table output) after one warm-up run, at the archive's newest index; \"(n)\" marks a query that stopped after n runs because its runs took longer than {} s (at least 3, or 1 when its warm-up run alone took longer).\n",
        args.runs, args.budget
    );
    print_subjects(sizes, kinds, results);
}

/// `last / first`, when both are known and the row has a meaningful ratio.
fn ratio_cell(wanted: bool, cells: &[Option<f64>]) -> String {
    match (
        wanted,
        cells.first().copied().flatten(),
        cells.last().copied().flatten(),
    ) {
        (true, Some(first), Some(last)) if first > 0.0 => format!("{:.2}×", last / first),
        _ => "–".to_owned(),
    }
}

/// A row with a value per backend and size, and no notes.
fn row(
    results: &[BackendResult],
    what: String,
    value: &dyn Fn(&Measured) -> Option<f64>,
    format: fn(f64) -> String,
    ratio: bool,
) -> Row {
    Row {
        what,
        cells: results
            .iter()
            .map(|r| r.sizes.iter().map(value).collect())
            .collect(),
        notes: results
            .iter()
            .map(|r| r.sizes.iter().map(|_| String::new()).collect())
            .collect(),
        format,
        ratio,
    }
}

fn rows(kinds: &[&Kind], results: &[BackendResult], args: &HistoryBench) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let p50 = |m: &Measured| m.queries[i].as_ref().map(|t| t.p50.as_secs_f64() * 1000.0);
        let mut r = row(results, kind.shown.to_owned(), &p50, ms, true);
        r.notes = results
            .iter()
            .map(|b| {
                b.sizes
                    .iter()
                    .map(|m| match &m.queries[i] {
                        Some(t) if t.runs < args.runs => format!(" ({})", t.runs),
                        _ => String::new(),
                    })
                    .collect()
            })
            .collect();
        rows.push(r);
        if kind.name == "snapshot" {
            let rss = |m: &Measured| m.queries[i].as_ref()?.peak_rss.map(|b| b as f64 / 1e6);
            let what = "`query snapshot` peak RSS, MB".to_owned();
            rows.push(row(results, what, &rss, whole, true));
        }
    }
    rows.extend(archive_rows(results, args.next_events));
    rows
}

/// The rows about each archive: its events, builds, imports and sizes.
fn archive_rows(results: &[BackendResult], next_events: usize) -> Vec<Row> {
    let next = thousands(next_events as f64);
    let row = |what: &str, value: &dyn Fn(&Measured) -> Option<f64>, format, ratio| {
        row(results, what.to_owned(), value, format, ratio)
    };
    vec![
        row(
            "events in the archive",
            &|m| Some(m.events as f64),
            thousands,
            false,
        ),
        row(
            "building it: `nomad-sim capture \\| nomad-chronicle import -`, events/s",
            &|m| m.build_rate,
            thousands,
            false,
        ),
        row(
            &format!(
                "import of the next {next} events into an empty archive, events/s (median of 3)"
            ),
            &|m| m.ingest.as_ref().map(|i| i.empty),
            thousands,
            false,
        ),
        row(
            &format!("import of the same {next} events into this archive, events/s (one run)"),
            &|m| m.ingest.as_ref().map(|i| i.into),
            thousands,
            false,
        ),
        row(
            "into this archive / into an empty one",
            &|m| m.ingest.as_ref().map(|i| 100.0 * i.into / i.empty),
            percent,
            false,
        ),
        row(
            "archive on disk, MB",
            &|m| Some(m.archive_bytes as f64 / 1e6),
            whole,
            true,
        ),
        row(
            "its capture (piped, never written), MB",
            &|m| m.capture_bytes.map(|b| b as f64 / 1e6),
            whole,
            true,
        ),
        row(
            "archive / capture",
            &|m| Some(m.archive_bytes as f64 / m.capture_bytes? as f64),
            two,
            false,
        ),
    ]
}

/// What each archive's queries asked about, and how much each answered.
fn print_subjects(sizes: &[usize], kinds: &[&Kind], results: &[BackendResult]) {
    for r in results {
        for (size, m) in sizes.iter().zip(&r.sizes) {
            println!("- {} {}: {}", r.backend.shown(), short(*size), m.subjects);
            let lines: Vec<String> = kinds
                .iter()
                .zip(&m.queries)
                .filter_map(|(k, t)| Some(format!("{} {}", k.name, t.as_ref()?.lines)))
                .collect();
            println!("  - output lines: {}", lines.join(", "));
        }
    }
}

/// 1000000 as `1M`, 20000 as `20k`.
fn short(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 100_000 == 0 => trim(n as f64 / 1e6, "M"),
        n if n >= 1_000 && n % 100 == 0 => trim(n as f64 / 1e3, "k"),
        n => n.to_string(),
    }
}

fn trim(v: f64, unit: &str) -> String {
    let text = format!("{v:.1}");
    format!("{}{unit}", text.trim_end_matches(".0"))
}

fn ms(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        thousands(v)
    }
}

fn whole(v: f64) -> String {
    format!("{v:.0}")
}

fn two(v: f64) -> String {
    format!("{v:.2}")
}

fn percent(v: f64) -> String {
    format!("{v:.0} %")
}

/// 1234567.8 as `1,234,568`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}
