//! A running child's stderr, read as it comes and kept, so that a wait on
//! the child that runs out can say what the child logged meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;

/// Everything the child has written to stderr so far.
#[derive(Clone)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// Starts reading `stderr` until the child closes it.
    pub fn of(mut stderr: ChildStderr) -> Log {
        let log = Log(Arc::default());
        let kept = log.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf).await {
                kept.0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        log
    }

    /// The log so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Polls `condition` every 20 ms for up to 60 s, failing the test with
    /// the child's log if it never holds.
    pub async fn eventually<F, Fut>(&self, what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !condition().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; the child's log:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
