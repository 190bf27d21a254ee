//! A running child's stderr, read as it comes and kept, so that a wait on
//! the child that runs out can say what the child logged meanwhile.

use std::sync::{Arc, Mutex};

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

    /// Polls `condition` as [`super::eventually`] does, failing the test
    /// with the child's log if it never holds.
    pub async fn eventually<F, Fut>(&self, what: &str, condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let log = || format!("; the child's log:\n{}", self.text());
        super::eventually_or(what, condition, log).await
    }
}
