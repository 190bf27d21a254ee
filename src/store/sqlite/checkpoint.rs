//! WAL checkpoints off the writer's path.
//!
//! In WAL mode every committed page is written twice: appended to the WAL at
//! commit, then copied into the database file by a checkpoint, which also
//! `fsync`s both files. SQLite's automatic checkpoint runs inside the commit
//! that crosses its threshold, so the writer stood still for it: about a
//! third of commit time during a fast import. Ingest connections therefore
//! open with `wal_autocheckpoint=0`, and the writer's lease starts a PASSIVE
//! checkpoint on another pooled connection (another SQLite thread) after
//! each commit that added enough, while the next batch goes on being
//! written.
//!
//! A checkpoint that runs beside the writer never finds the WAL's end, so
//! the WAL would only grow: SQLite starts it over only when a write begins
//! with every frame already copied. Once the WAL holds more than
//! [`RESTART_FRAMES`], the next commit therefore first waits for the
//! checkpoint in flight (the batch before it is all it has left to copy),
//! and SQLite then starts the WAL over. A reader holding an old snapshot
//! (a long `serve` or `replay`) keeps frames from being copied, exactly as
//! with automatic checkpoints: the WAL grows until it lets go.

use futures_util::FutureExt;
use sqlx::SqlitePool;
use tokio::task::JoinHandle;

/// Event bytes committed before another checkpoint is started: about the
/// WAL size at which SQLite's automatic checkpoint would run (1,000 pages).
const CHECKPOINT_AFTER_BYTES: usize = 8 * 1024 * 1024;

/// Commits before another checkpoint is started, however small they were:
/// each commit writes a dozen pages (the table's last page, each index's,
/// the checkpoint row) even for one event, so a quiet cluster committing
/// every second would otherwise fill the WAL with ~11 frames per event.
const CHECKPOINT_AFTER_COMMITS: u32 = 64;

/// WAL frames (16 KiB pages) past which the next commit waits for the
/// checkpoint in flight, so that SQLite can start the WAL over: 64 MiB.
const RESTART_FRAMES: i64 = 4096;

/// Commits, and event bytes, after which the WAL is started over whatever
/// the last finished checkpoint counted. That count is as old as the
/// checkpoint: one that waits seconds for `fsync` on a busy disk reports
/// long after the commits that followed it, and the WAL grew to 116 MiB of
/// one-event commits before the count caught up. 256 commits of a dozen
/// pages are 48 MiB; 64 MiB of events are about 77 MiB of WAL.
const RESTART_AFTER_COMMITS: u32 = 256;
const RESTART_AFTER_BYTES: usize = 64 * 1024 * 1024;

/// What `PRAGMA wal_checkpoint` reports (its columns `log` and
/// `checkpointed`; `busy` is not needed).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Outcome {
    /// Frames in the WAL.
    #[sqlx(rename = "log")]
    frames: i64,
    /// Frames of those copied into the database.
    #[sqlx(rename = "checkpointed")]
    copied: i64,
}

/// The checkpoints of one writer.
pub struct Checkpoints {
    /// Where a checkpoint finds a connection of its own.
    pool: SqlitePool,
    /// The checkpoint in flight; awaited before the next is started, and
    /// aborted with the lease.
    running: Option<JoinHandle<Option<Outcome>>>,
    /// Event bytes committed since the last checkpoint was started.
    pending_bytes: usize,
    /// Commits since the last checkpoint was started.
    pending_commits: u32,
    /// Frames in the WAL as of the last checkpoint that finished.
    wal_frames: i64,
    /// Commits and event bytes since the WAL was last started over.
    commits_since_restart: u32,
    bytes_since_restart: usize,
}

impl Checkpoints {
    /// Checkpoints on connections of `pool`, which the writer's own
    /// connection is not one of while it holds it.
    pub fn new(pool: SqlitePool) -> Self {
        Checkpoints {
            pool,
            running: None,
            pending_bytes: 0,
            pending_commits: 0,
            wal_frames: 0,
            commits_since_restart: 0,
            bytes_since_restart: 0,
        }
    }

    /// Before a commit: once the WAL is long, lets a checkpoint copy
    /// everything committed so far, so that this commit starts the WAL over.
    /// The checkpoint in flight has copied all but the last batch or so.
    pub async fn before_commit(&mut self) {
        self.collect_finished();
        let overdue = self.commits_since_restart >= RESTART_AFTER_COMMITS
            || self.bytes_since_restart >= RESTART_AFTER_BYTES;
        if self.wal_frames < RESTART_FRAMES && !overdue {
            return;
        }
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
        self.pending_bytes = 0;
        self.pending_commits = 0;
        self.commits_since_restart = 0;
        self.bytes_since_restart = 0;
        self.wal_frames = match checkpoint(&self.pool).await {
            // Nothing was committed since it started: the next write starts
            // the WAL over.
            Some(outcome) if outcome.copied >= outcome.frames => 0,
            // A reader still needs frames; the WAL goes on until it lets go.
            Some(outcome) => outcome.frames,
            None => self.wal_frames,
        };
    }

    /// After a commit of `bytes` event bytes: starts a checkpoint when
    /// enough was added and none is in flight.
    pub fn after_commit(&mut self, bytes: usize) {
        self.pending_bytes += bytes;
        self.pending_commits += 1;
        self.bytes_since_restart += bytes;
        self.commits_since_restart += 1;
        if self.pending_bytes < CHECKPOINT_AFTER_BYTES
            && self.pending_commits < CHECKPOINT_AFTER_COMMITS
        {
            return;
        }
        self.collect_finished();
        if self.running.is_some() {
            return;
        }
        self.pending_bytes = 0;
        self.pending_commits = 0;
        let pool = self.pool.clone();
        self.running = Some(tokio::spawn(async move { checkpoint(&pool).await }));
    }

    /// Takes the outcome of a checkpoint that has finished, without waiting.
    /// Commits may have followed it, so only its count of frames is known
    /// to be current.
    fn collect_finished(&mut self) {
        if !self.running.as_ref().is_some_and(JoinHandle::is_finished) {
            return;
        }
        if let Some(finished) = self.running.take() {
            if let Some(outcome) = finished.now_or_never().and_then(Result::ok).flatten() {
                self.wal_frames = self.wal_frames.max(outcome.frames);
            }
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

/// One PASSIVE checkpoint: copies what no reader still needs, without
/// waiting for anyone. A failure is only logged; the next one tries again,
/// and SQLite checkpoints when the last connection closes.
async fn checkpoint(pool: &SqlitePool) -> Option<Outcome> {
    match sqlx::query_as::<_, Outcome>("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
    {
        Ok(outcome) => Some(outcome),
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    use super::*;

    #[tokio::test]
    async fn a_checkpoint_reports_the_frames_in_the_wal_and_those_copied() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("wal.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .expect("open");
        for sql in ["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        let outcome = checkpoint(&pool).await.expect("a checkpoint outcome");
        assert!(outcome.frames > 0, "{outcome:?}");
        assert_eq!(outcome.copied, outcome.frames, "nothing held frames back");
        pool.close().await;
    }
}
