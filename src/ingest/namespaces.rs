//! Watches `GET /v1/namespaces` beside the stream and reports namespaces
//! created after it started: since Nomad 1.9.6 a `namespace=*` subscription
//! covers only the namespaces that existed when it began, so each new one
//! means resubscribing (see ../shared/nomad-event-stream.md, point 7).
//!
//! The list is read once before the first subscription, so every namespace
//! in it is known to be covered; then it is a blocking query. A token that
//! may not list namespaces, or an agent without the endpoint, turns the
//! watch off with one warning saying what that costs; network trouble and
//! server errors are retried with backoff, and never touch the stream.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::nomad::{NamespaceList, NamespacesError, NomadClient};

/// How long a blocking query waits for a change (Nomad's default is 5 minutes).
const WAIT: Duration = Duration::from_secs(300);
/// How long the first, non-blocking read may take before the stream starts without it.
const FIRST_READ: Duration = Duration::from_secs(10);
/// A blocking query that comes back sooner than this without a change is
/// not blocking (a proxy, an old agent): pause this long before the next.
const MIN_ROUND: Duration = Duration::from_secs(1);

/// A namespace that appeared while the stream was running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNamespace {
    pub name: String,
    /// The raft index that created it: none of its events are older.
    pub create_index: u64,
}

/// The running watch: new namespaces arrive on its receiver.
pub struct NamespaceWatch {
    rx: mpsc::UnboundedReceiver<NewNamespace>,
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl NamespaceWatch {
    /// Reads the namespaces that exist now and starts watching for new
    /// ones. `None` when the list cannot be read at all (the warning said
    /// why) or shutdown came first.
    pub async fn start(client: &NomadClient, shutdown: &CancellationToken) -> Option<Self> {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return None,
            first = client.namespaces(0, FIRST_READ) => first,
        };
        let known = match first {
            Ok(list) => Some(Known::from(list)),
            Err(error) if error.is_retriable() => {
                tracing::debug!(error = %error, "Cannot list namespaces yet; the watch retries");
                None
            }
            Err(error) => {
                unwatchable(&error);
                return None;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = shutdown.child_token();
        let task = tokio::spawn(watch(client.clone(), known, tx, stop.clone()));
        Some(NamespaceWatch { rx, task, stop })
    }

    /// Where new namespaces arrive.
    pub fn receiver(&mut self) -> &mut mpsc::UnboundedReceiver<NewNamespace> {
        &mut self.rx
    }

    /// Stops watching and waits for the task.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(join) = self.task.await {
            if join.is_panic() {
                std::panic::resume_unwind(join.into_panic());
            }
        }
    }
}

/// The namespaces seen last and the index to wait on.
struct Known {
    index: u64,
    names: BTreeSet<String>,
}

impl From<NamespaceList> for Known {
    fn from(list: NamespaceList) -> Self {
        Known {
            index: list.index.max(1),
            names: list.namespaces.into_iter().map(|n| n.name).collect(),
        }
    }
}

/// The watch loop: one blocking query after another until stopped, the
/// receiver is dropped, or the list turns out to be unreadable.
async fn watch(
    client: NomadClient,
    mut known: Option<Known>,
    tx: mpsc::UnboundedSender<NewNamespace>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut failing = false;
    loop {
        let index = known.as_ref().map_or(0, |k| k.index);
        let asked = Instant::now();
        let answer = tokio::select! {
            _ = stop.cancelled() => return,
            answer = client.namespaces(index, WAIT) => answer,
        };
        let pause = match answer {
            Ok(list) => {
                backoff.reset();
                if std::mem::take(&mut failing) {
                    tracing::info!("Watching the namespace list again");
                }
                // An index that went backwards is another server's history:
                // read the list afresh, as Nomad's blocking-query docs advise.
                let went_back = list.index < index;
                if let Some(known) = &known {
                    for ns in list
                        .namespaces
                        .iter()
                        .filter(|n| !known.names.contains(&n.name))
                    {
                        tracing::info!(
                            namespace = %ns.name,
                            create_index = ns.create_index,
                            "New namespace; resubscribing so its events are archived"
                        );
                        let new = NewNamespace {
                            name: ns.name.clone(),
                            create_index: ns.create_index,
                        };
                        if tx.send(new).is_err() {
                            return;
                        }
                    }
                }
                let mut next = Known::from(list);
                if went_back {
                    next.index = 0;
                }
                let unchanged = next.index == index;
                known = Some(next);
                (unchanged && asked.elapsed() < MIN_ROUND).then_some(MIN_ROUND)
            }
            Err(error) if error.is_retriable() => {
                let delay = backoff.next_delay();
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %error, retry_in = ?delay, "Watching the namespace list failed; retrying (the stream is not affected)");
                } else {
                    tracing::debug!(error = %error, retry_in = ?delay, "Watching the namespace list failed again");
                }
                Some(delay)
            }
            Err(error) => {
                unwatchable(&error);
                return;
            }
        };
        if let Some(pause) = pause {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The one warning when the list cannot be watched: what it costs and the fix.
fn unwatchable(error: &NamespacesError) {
    if error.is_denied() {
        tracing::warn!(
            error = %error,
            "Cannot watch the namespace list: events of namespaces created from now on are not archived \
             until ingest restarts (hint: give the token a capability in every namespace, e.g. a policy \
             with `namespace \"*\" {{ policy = \"read\" }}`, or restart ingest after creating a namespace)"
        );
    } else {
        tracing::warn!(
            error = %error,
            "Cannot watch the namespace list: events of namespaces created from now on are not archived \
             until ingest restarts (hint: restart ingest after creating a namespace)"
        );
    }
}
