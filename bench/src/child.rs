//! Child processes timed from spawn to exit, with their peak resident memory.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
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

/// Runs `cmd` to completion with stdin empty and stdout discarded; fails
/// with the end of its stderr when it does not exit 0.
pub fn run_measured(cmd: &mut Command) -> anyhow::Result<Run> {
    cmd.stdin(Stdio::null());
    Running::spawn(cmd)?.wait()
}

/// A child process being measured: started with stdout discarded and stderr
/// kept for the error message; its stdin is what the caller set.
pub struct Running {
    child: Child,
    /// The command line, for errors.
    shown: String,
    started: Instant,
    /// Reads stderr to its end, so the child never blocks on a full pipe.
    stderr: JoinHandle<String>,
}

impl Running {
    /// Starts `cmd`; the clock starts now.
    pub fn spawn(cmd: &mut Command) -> anyhow::Result<Running> {
        let shown = format!("{cmd:?}");
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        let stderr = read_stderr(&mut child);
        Ok(Running {
            child,
            shown,
            started,
            stderr,
        })
    }

    /// The child's stdin, when it was started with `Stdio::piped()`.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for the child, sampling its peak RSS; fails with the end of its
    /// stderr when it does not exit 0.
    pub fn wait(mut self) -> anyhow::Result<Run> {
        let pid = self.child.id();
        let mut peak_rss = None;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if let Some(hwm) = vm_hwm(pid) {
                peak_rss = Some(peak_rss.map_or(hwm, |p: u64| p.max(hwm)));
            }
            std::thread::sleep(RSS_POLL);
        };
        let wall = self.started.elapsed();
        let stderr = self.stderr.join().unwrap_or_default();
        if !status.success() {
            bail!("{} failed ({status}):\n{}", self.shown, tail(&stderr));
        }
        Ok(Run { wall, peak_rss })
    }
}

/// Reads the child's stderr to its end in a thread of its own, so the child
/// never blocks on a full pipe.
fn read_stderr(child: &mut Child) -> JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    })
}

/// Runs `cmd` to completion with stdin empty, handing each line of its
/// stdout to `each` as it comes (a large output is never held whole); fails
/// with the end of its stderr when it does not exit 0.
pub fn for_each_line(cmd: &mut Command, mut each: impl FnMut(&[u8])) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let stderr = read_stderr(&mut child);
    if let Some(stdout) = child.stdout.take() {
        let mut stdout = BufReader::with_capacity(1 << 16, stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            if stdout.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            each(&line);
        }
    }
    let status = child.wait()?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!("{shown} failed ({status}):\n{}", tail(&stderr));
    }
    Ok(())
}

/// The last lines of a child's stderr, for an error message.
pub fn tail(stderr: &str) -> String {
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    tail.join("\n")
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
