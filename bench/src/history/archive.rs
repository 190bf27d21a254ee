//! Filling archives with generated history: the archive itself, built by
//! piping `nomad-sim capture` into `nomad-chronicle import -` so the capture
//! is never written (at 10,000,000 events it would be ~17 GB), and the
//! events that come next, imported into it and into an empty archive.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::place::Place;
use crate::child::{Run, Running, run_measured, tail};
use crate::stats::median;

/// The cluster label the archives hold their history under.
pub const CLUSTER: &str = "bench";

/// One import of generated history through a pipe.
pub struct Piped {
    pub run: Run,
    /// Bytes of capture that went through the pipe.
    pub bytes: u64,
}

/// Imports the frames of seed `seed`'s history after raft index
/// `after_index`, until `events` events, into the archive at `url`, from
/// `nomad-sim capture` through a pipe; the bytes are counted on the way.
pub fn import_generated(
    bin: &Path,
    url: &str,
    seed: u64,
    events: usize,
    after_index: u64,
) -> anyhow::Result<Piped> {
    let mut sim = capture_command(bin, seed, events, after_index)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start `nomad-sim capture`")?;
    let mut import =
        Running::spawn(import_command(bin, url, Path::new("-")).stdin(Stdio::piped()))?;
    let (Some(mut from), Some(mut to)) = (sim.stdout.take(), import.take_stdin()) else {
        bail!("no pipe between `nomad-sim capture` and `nomad-chronicle import`");
    };
    // A thread of its own: the bytes are counted, and when `import` stops
    // early the copy ends with it and `nomad-sim` sees a broken pipe.
    let copier = std::thread::spawn(move || std::io::copy(&mut from, &mut to));
    let run = import.wait();
    let copied = copier.join();
    let status = sim.wait().context("waiting for `nomad-sim capture`")?;
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = sim.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        bail!("`nomad-sim capture` failed ({status}):\n{}", tail(&stderr));
    }
    let run = run?;
    let bytes = match copied {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Err(e).context("copying the capture into `import`"),
        Err(_) => bail!("the thread copying the capture panicked"),
    };
    Ok(Piped { run, bytes })
}

fn capture_command(bin: &Path, seed: u64, events: usize, after_index: u64) -> Command {
    let mut cmd = Command::new(bin.join("nomad-sim"));
    cmd.args(["capture", "--events", &events.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--after-index", &after_index.to_string()]);
    cmd
}

/// `nomad-chronicle import` of `input` (`-`: stdin) into the archive at `url`.
fn import_command(bin: &Path, url: &str, input: &Path) -> Command {
    let mut cmd = Command::new(bin.join("nomad-chronicle"));
    cmd.args(["--db", url, "import", "--cluster", CLUSTER])
        .arg(input);
    cmd
}

/// Imports of the next events into an empty archive, to take the median of.
const EMPTY_RUNS: usize = 3;

/// Import rates of the events that follow an archive's history.
pub struct Ingest {
    /// Bytes of the next events' capture.
    pub bytes: u64,
    /// Into an empty archive, events/s: the median of [`EMPTY_RUNS`].
    pub empty: f64,
    /// Into the archive, events/s (one run: it keeps them).
    pub into: f64,
}

/// Writes the `events` events after `archive`'s checkpoint to a file in
/// `dir`, and times importing that file into an empty archive (its schema
/// already created) and into `archive` (which keeps them).
pub async fn next_events(
    bin: &Path,
    place: &Place,
    archive: &str,
    dir: &Path,
    seed: u64,
    events: usize,
) -> anyhow::Result<Ingest> {
    let before = place
        .holding(archive, CLUSTER)
        .await
        .with_context(|| format!("the archive `{archive}`"))?;
    let file = dir.join(format!("nc-history-next-{seed}.ndjson"));
    run_measured(
        capture_command(bin, seed, events, before.checkpoint)
            .arg("--output")
            .arg(&file),
    )?;
    let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    let result = async {
        let (imported, empty) = into_empty(bin, place, &file).await?;
        let run_into = run_measured(&mut import_command(bin, &place.url(archive), &file))?;
        let after = place
            .holding(archive, CLUSTER)
            .await
            .map_or(0, |h| h.events);
        let added = after.saturating_sub(before.events);
        if added != imported {
            bail!("the archive took {added} of the {imported} next events: are they new to it?");
        }
        Ok(Ingest {
            bytes,
            empty,
            into: imported as f64 / run_into.wall.as_secs_f64(),
        })
    }
    .await;
    let _ = std::fs::remove_file(&file);
    result
}

/// Imports `file` into a new empty archive [`EMPTY_RUNS`] times: the events
/// it holds, and the median rate in events/s.
async fn into_empty(bin: &Path, place: &Place, file: &Path) -> anyhow::Result<(u64, f64)> {
    let empty = "nc-history-empty";
    let (mut imported, mut rates) = (0, Vec::new());
    for _ in 0..EMPTY_RUNS {
        let url = place.recreate(empty).await?;
        let run = run_measured(&mut import_command(bin, &url, file))?;
        imported = place.holding(empty, CLUSTER).await.map_or(0, |h| h.events);
        rates.push(imported as f64 / run.wall.as_secs_f64());
    }
    place.remove(empty).await?;
    Ok((imported, median(&rates).unwrap_or(f64::NAN)))
}
