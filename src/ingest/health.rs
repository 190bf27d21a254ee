//! Whether ingest is doing its job, as `/readyz` answers: subscribed and
//! committing while it holds the lease, or a healthy standby.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::metrics::LeaseState;

/// The parts of ingest's state that readiness depends on, set by the
/// service (lease), the follower (stream) and the writer (commits).
#[derive(Debug, Default)]
pub struct Health {
    /// `None` until the first attempt to take the lease.
    lease: Mutex<Option<LeaseState>>,
    /// Whether a subscription is open, or why not.
    stream: Mutex<Stream>,
    /// Since when, and why, commits have been failing.
    commits_failing: Mutex<Option<(Instant, String)>>,
    /// Since when the database has not answered `/readyz`'s probe.
    database_down: Mutex<Option<Instant>>,
}

/// The event stream, as far as readiness cares.
#[derive(Debug, Default)]
enum Stream {
    #[default]
    NotYet,
    Open,
    /// Closed, with the reason it is being reopened.
    Closed(String),
}

/// A ready answer's text, or the one-line reason it is not ready.
pub type Readiness = Result<String, String>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The values are replaced whole, so one a panicking thread left is
    // still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Health {
    /// A new state of the lease: standing by, there is no stream, and the
    /// commits that failed belonged to the lease before.
    pub fn set_lease(&self, state: LeaseState) {
        *lock(&self.lease) = Some(state);
        if state == LeaseState::Standby {
            *lock(&self.stream) = Stream::NotYet;
            *lock(&self.commits_failing) = None;
        }
    }

    pub fn stream_opened(&self) {
        *lock(&self.stream) = Stream::Open;
    }

    pub fn stream_closed(&self, reason: &str) {
        *lock(&self.stream) = Stream::Closed(reason.to_owned());
    }

    pub fn commit_failed(&self, error: &str) {
        let mut failing = lock(&self.commits_failing);
        let since = failing.as_ref().map_or_else(Instant::now, |(at, _)| *at);
        *failing = Some((since, error.to_owned()));
    }

    pub fn committed(&self) {
        *lock(&self.commits_failing) = None;
    }

    /// Whether ingest is ready, given whether the database answered just
    /// now (`Err` holds why not).
    pub fn readiness(&self, database: Result<(), String>) -> Readiness {
        let now = Instant::now();
        let down_since = {
            let mut down = lock(&self.database_down);
            match database {
                Ok(()) => {
                    *down = None;
                    None
                }
                Err(_) => Some(*down.get_or_insert(now)),
            }
        };
        if let Some(since) = down_since {
            return Err(format!("database unreachable for {}", secs(now - since)));
        }
        if let Some((since, error)) = lock(&self.commits_failing).as_ref() {
            return Err(format!(
                "commits failing for {}: {error}",
                secs(now - *since)
            ));
        }
        match *lock(&self.lease) {
            None => Err("starting: the writer lease is not taken yet".to_owned()),
            Some(LeaseState::Standby) => {
                Ok("standby: another ingester holds the writer lease".to_owned())
            }
            Some(LeaseState::Active) => match &*lock(&self.stream) {
                Stream::Open => Ok("active: subscribed and committing".to_owned()),
                Stream::NotYet => Err("not subscribed to the event stream yet".to_owned()),
                Stream::Closed(reason) => {
                    Err(format!("not subscribed to the event stream: {reason}"))
                }
            },
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_ingester_is_ready_once_subscribed() {
        let health = Health::default();
        assert_eq!(
            health.readiness(Ok(())),
            Err("starting: the writer lease is not taken yet".to_owned())
        );
        health.set_lease(LeaseState::Active);
        assert_eq!(
            health.readiness(Ok(())),
            Err("not subscribed to the event stream yet".to_owned())
        );
        health.stream_opened();
        assert_eq!(
            health.readiness(Ok(())),
            Ok("active: subscribed and committing".to_owned())
        );
        health.stream_closed("the server closed the stream");
        assert_eq!(
            health.readiness(Ok(())),
            Err("not subscribed to the event stream: the server closed the stream".to_owned())
        );
    }

    #[test]
    fn a_standby_is_ready_while_the_database_answers() {
        let health = Health::default();
        health.set_lease(LeaseState::Standby);
        assert!(health.readiness(Ok(())).is_ok());
        assert_eq!(
            health.readiness(Err("connection refused".to_owned())),
            Err("database unreachable for 0s".to_owned())
        );
        assert!(health.readiness(Ok(())).is_ok());
    }

    #[test]
    fn failing_commits_make_it_unready_until_one_succeeds() {
        let health = Health::default();
        health.set_lease(LeaseState::Active);
        health.stream_opened();
        health.commit_failed("database is locked");
        assert_eq!(
            health.readiness(Ok(())),
            Err("commits failing for 0s: database is locked".to_owned())
        );
        health.committed();
        assert!(health.readiness(Ok(())).is_ok());
    }

    #[test]
    fn commits_that_failed_under_a_lost_lease_are_forgotten() {
        let health = Health::default();
        health.set_lease(LeaseState::Active);
        health.stream_opened();
        health.commit_failed("connection reset");
        health.set_lease(LeaseState::Standby);
        health.set_lease(LeaseState::Active);
        health.stream_opened();
        assert_eq!(
            health.readiness(Ok(())),
            Ok("active: subscribed and committing".to_owned())
        );
    }
}
