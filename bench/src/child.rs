//! Child processes timed from spawn to exit, with their peak resident memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How often a running child's peak RSS is sampled.
const RSS_POLL: Duration = Duration::from_millis(5);

/// What one run of a child process measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// From spawn to exit.
    pub wall: Duration,
    /// The kernel's high-water mark of the child's resident set (`VmHWM`),
    /// last sampled at most [`RSS_POLL`] before it exited; `None` where
    /// `/proc` does not say.
    pub peak_rss: Option<u64>,
}

/// Runs `cmd` to completion with stdout discarded; fails with the end of its
/// stderr when it does not exit 0.
pub fn run_measured(cmd: &mut Command) -> anyhow::Result<Run> {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });
    let pid = child.id();
    let mut peak_rss = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(hwm) = vm_hwm(pid) {
            peak_rss = Some(peak_rss.map_or(hwm, |p: u64| p.max(hwm)));
        }
        std::thread::sleep(RSS_POLL);
    };
    let wall = started.elapsed();
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{shown} failed ({status}):\n{}", tail.join("\n"));
    }
    Ok(Run { wall, peak_rss })
}

/// `VmHWM` of a running process, in bytes.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Where `program` is on `PATH`, if anywhere.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Bytes of an SQLite archive on disk: the file with its WAL and shared
/// memory files.
pub fn sqlite_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).ok()
        })
        .map(|m| m.len())
        .sum()
}

/// Removes an SQLite archive with its WAL and shared memory files.
pub fn remove_sqlite(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}
