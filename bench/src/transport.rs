//! The transport limit: how fast the simulator's stream can merely be read,
//! with nothing parsed or stored.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;

/// Reads `url` with reqwest (nomad-chronicle's own HTTP client) until `lines`
/// newlines have arrived, discarding the bytes; the time from the request to
/// the last of them.
pub async fn reqwest_reader(url: &str, lines: usize) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .context("cannot reach the simulator")?;
    let mut body = response.bytes_stream();
    let mut seen = 0;
    while seen < lines {
        let Some(chunk) = body.next().await else {
            bail!("the stream ended after {seen} of {lines} lines");
        };
        seen += memchr::memchr_iter(b'\n', &chunk.context("reading the stream")?).count();
    }
    Ok(started.elapsed())
}

/// Reads `url` with `curl -sN` until `lines` newlines have arrived on its
/// standard output, then stops it: `curl -N … > /dev/null`.
pub fn curl(url: &str, lines: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new("curl")
        .args(["-sN", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start curl")?;
    let mut out = child.stdout.take().context("curl's output")?;
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = 0;
    let result = loop {
        if seen >= lines {
            break Ok(started.elapsed());
        }
        match out.read(&mut buf) {
            Ok(0) => {
                break Err(anyhow::anyhow!(
                    "curl stopped after {seen} of {lines} lines"
                ));
            }
            Ok(n) => seen += memchr::memchr_iter(b'\n', &buf[..n]).count(),
            Err(e) => break Err(e.into()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}
