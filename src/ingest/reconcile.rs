//! Rebuilding state after a gap: the cluster's current objects read from
//! Nomad's list endpoints and stored as a labelled reconstruction at the
//! index Nomad reports (`X-Nomad-Index`), so `query state` and `query
//! snapshot` are right again after history the archive could not see.
//!
//! The transaction that records a gap also records one pending
//! reconstruction per topic ([`crate::store::reconstruction`]); this task,
//! running beside the reader and the writer, reads the lists and stores
//! them. It never holds up the stream: it has its own database connections
//! and its own HTTP requests, and a failure is logged and left behind (a
//! refused list is recorded as refused, the others are stored). Pending
//! reconstructions left by a process that stopped are completed by the next
//! one; a reconstruction is completed once, however often it is asked for.
//!
//! The lists return stubs for jobs, allocations and nodes, which carry what
//! `query snapshot` shows (an allocation's job, job version, node, desired
//! and client status; a node's status, eligibility and drain; a job's status
//! and stop flag), but not a job's version. Jobs whose last change fell
//! inside the gap are therefore read whole from `/v1/job/:id`: only those,
//! since the archive holds every other job's current spec already.

mod listed;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::archive::reconstruction::{ObjectRow, TOPICS, endpoint};
use crate::archive::{
    ClosedPart, Cluster, PartStatus, PendingPart, ReconcileScope, StoredPart, now_millis,
};
use crate::metrics::IngestMetrics;
use crate::nomad::{NomadClient, ReadError, Subscription};
use crate::store::{Store, StoreError};
pub use listed::parse_list;
use listed::{parse_object, path_segment};

/// Attempts at one list before it is recorded as failed.
const ATTEMPTS: u32 = 3;
/// Jobs read whole per reconstruction, at most; the rest keep their stubs.
const MAX_JOB_DETAILS: usize = 200;

/// What the reconciler needs besides the Nomad client.
#[derive(Clone)]
pub struct ReconcileConfig {
    /// The archive, for reading pending reconstructions and storing lists.
    pub store: Arc<dyn Store>,
    /// The topics and namespace the archive follows.
    pub scope: ReconcileScope,
    /// Where reconstructions stored and failed are counted.
    pub metrics: IngestMetrics,
}

/// The topics and namespace a subscription follows, as far as the lists can
/// reconstruct them. A topic followed only for some keys is left out: its
/// list would bring objects the archive never followed.
pub fn scope(subscription: &Subscription) -> ReconcileScope {
    let all = |(topic, key): &(String, String)| key == "*" && topic == "*";
    let topics = if subscription.topics.iter().any(all) {
        TOPICS.iter().map(|t| (*t).to_owned()).collect()
    } else {
        TOPICS
            .iter()
            .filter(|t| {
                subscription
                    .topics
                    .iter()
                    .any(|(topic, key)| topic == *t && key == "*")
            })
            .map(|t| (*t).to_owned())
            .collect()
    };
    ReconcileScope {
        topics,
        namespace: subscription.namespace.clone(),
    }
}

/// A running reconciler.
pub struct Reconciler {
    wake: Arc<Notify>,
    /// No more gaps will come: finish what is pending and stop.
    drain: CancellationToken,
    /// Stop at once.
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Reconciler {
    /// Starts the task; it first completes what earlier runs left pending.
    pub fn spawn(config: ReconcileConfig, client: NomadClient, cluster: Cluster) -> Self {
        let wake = Arc::new(Notify::new());
        let drain = CancellationToken::new();
        let stop = CancellationToken::new();
        let worker = Worker {
            store: config.store,
            client,
            cluster,
            metrics: config.metrics,
        };
        let task = tokio::spawn(run(worker, wake.clone(), drain.clone(), stop.clone()));
        Reconciler {
            wake,
            drain,
            stop,
            task,
        }
    }

    /// What the writer notifies after committing a gap.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Lets the task complete what is pending, for at most `grace`; what is
    /// still pending then is completed by the next run.
    pub async fn finish(mut self, grace: Duration) {
        self.drain.cancel();
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            tracing::warn!(
                grace = ?grace,
                "Stopped reconstructing state after a gap; the next run of ingest completes it"
            );
            self.stop.cancel();
            let _ = self.task.await;
        }
    }
}

async fn run(worker: Worker, wake: Arc<Notify>, drain: CancellationToken, stop: CancellationToken) {
    loop {
        let last = drain.is_cancelled();
        tokio::select! {
            _ = stop.cancelled() => return,
            done = worker.round(&stop) => {
                if let Err(error) = done {
                    tracing::warn!(%error, "Cannot reconstruct state after a gap; ingest goes on");
                }
            }
        }
        if last {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = drain.cancelled() => {}
            _ = wake.notified() => {}
        }
    }
}

struct Worker {
    store: Arc<dyn Store>,
    client: NomadClient,
    cluster: Cluster,
    metrics: IngestMetrics,
}

impl Worker {
    /// Reads every topic that has pending reconstructions once, stores it
    /// under the newest gap's, and marks older ones of the topic superseded.
    async fn round(&self, stop: &CancellationToken) -> Result<(), StoreError> {
        let pending = self.store.reconstructions().pending(&self.cluster).await?;
        let mut by_topic: BTreeMap<usize, Vec<PendingPart>> = BTreeMap::new();
        for part in pending {
            let order = TOPICS.iter().position(|t| *t == part.topic);
            by_topic
                .entry(order.unwrap_or(TOPICS.len()))
                .or_default()
                .push(part);
        }
        for (_, mut parts) in by_topic {
            let Some(newest) = parts.pop() else { continue };
            let superseded: Vec<ClosedPart> = parts
                .iter()
                .map(|older| ClosedPart {
                    id: older.id,
                    status: PartStatus::Superseded,
                    detail: format!(
                        "superseded by the reconstruction after the gap {}–{}",
                        newest.gap.from_index, newest.gap.to_index
                    ),
                })
                .collect();
            if !superseded.is_empty() {
                self.store.reconstructions().close(&superseded).await?;
            }
            self.reconstruct(&newest, stop).await?;
        }
        Ok(())
    }

    async fn reconstruct(
        &self,
        part: &PendingPart,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let path = endpoint(&part.topic);
        let (from, to) = (part.gap.from_index, part.gap.to_index);
        let listed = match self.list(part, stop).await {
            Ok(listed) => listed,
            Err(error) => {
                self.metrics.reconciliation_failures.inc();
                let refused = matches!(error, ReadError::Denied { .. });
                let (status, detail) = if refused {
                    let needs = capability(&part.topic);
                    tracing::warn!(
                        %error,
                        "Could not reconstruct {} after the gap {from}–{to}: the token needs {needs}; the other lists are stored",
                        noun(&part.topic)
                    );
                    (
                        PartStatus::Refused,
                        format!("{error}; the token needs {needs}"),
                    )
                } else {
                    tracing::warn!(
                        %error,
                        "Could not reconstruct {} after the gap {from}–{to}; ingest goes on",
                        noun(&part.topic)
                    );
                    (PartStatus::Failed, error.to_string())
                };
                let closed = ClosedPart {
                    id: part.id,
                    status,
                    detail,
                };
                return self.store.reconstructions().close(&[closed]).await;
            }
        };
        let (index, mut objects) = listed;
        if part.topic == "Job" {
            self.read_changed_jobs(part, &mut objects).await;
        }
        let count = objects.len();
        let stored = StoredPart {
            id: part.id,
            index,
            recorded_at: now_millis(),
            objects,
        };
        if self.store.reconstructions().store(&stored).await? {
            self.metrics.reconciliations.inc();
            tracing::info!(
                endpoint = path,
                index,
                objects = count,
                "Reconstructed {} after the gap {from}–{to}",
                noun(&part.topic)
            );
        }
        Ok(())
    }

    /// Reads one list, retrying passing faults; its index and objects.
    async fn list(
        &self,
        part: &PendingPart,
        stop: &CancellationToken,
    ) -> Result<(u64, Vec<ObjectRow>), ReadError> {
        let path = endpoint(&part.topic);
        let mut query = Vec::new();
        if part.topic != "Node" {
            query.push(("namespace", part.namespace.as_str()));
        }
        if part.topic == "Allocation" {
            // Task states repeat what the events said; a stub is enough here.
            query.push(("task_states", "false"));
        }
        let mut attempt = 1;
        let answer = loop {
            match self.client.read(path, &query).await {
                Ok(answer) => break answer,
                Err(e) if e.is_retriable() && attempt < ATTEMPTS => {
                    let delay = Duration::from_secs(1 << (attempt - 1));
                    tracing::debug!(error = %e, retry_in = ?delay, "Retrying a list");
                    tokio::select! {
                        _ = stop.cancelled() => return Err(e),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let objects = parse_list(&part.topic, &part.namespace, &answer.body).map_err(|detail| {
            ReadError::Unreadable {
                path: path.to_owned(),
                detail,
            }
        })?;
        Ok((answer.index, objects))
    }

    /// Replaces the stubs of jobs whose last change fell inside the gap with
    /// the whole job (a stub has no version), when Nomad still describes the
    /// same change; a job that changed again meanwhile keeps its stub, which
    /// is what it was at the list's index.
    async fn read_changed_jobs(&self, part: &PendingPart, objects: &mut [ObjectRow]) {
        let (from, to) = (part.gap.from_index, part.gap.to_index);
        let changed: Vec<usize> = objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.modify_index.is_some_and(|m| m > from && m < to))
            .map(|(i, _)| i)
            .collect();
        if changed.len() > MAX_JOB_DETAILS {
            tracing::warn!(
                changed = changed.len(),
                read = MAX_JOB_DETAILS,
                "Many jobs changed inside the gap; the rest keep their list stubs (no version)"
            );
        }
        for i in changed.into_iter().take(MAX_JOB_DETAILS) {
            let stub = &objects[i];
            let path = format!("/v1/job/{}", path_segment(&stub.key));
            let query = [("namespace", stub.namespace.as_str())];
            match self.client.read(&path, &query).await {
                Ok(answer) => match parse_object("Job", &stub.namespace, &answer.body) {
                    Ok(mut job) if job.key == stub.key && job.modify_index == stub.modify_index => {
                        job.shape = "Job";
                        objects[i] = job;
                    }
                    Ok(_) => {}
                    Err(detail) => {
                        tracing::debug!(%detail, job = %stub.key, "Unreadable job; keeping its stub");
                    }
                },
                Err(error) => {
                    tracing::debug!(%error, job = %stub.key, "Cannot read the job; keeping its stub");
                }
            }
        }
    }
}

/// The ACL capability a topic's list needs, as Nomad's API documents it.
fn capability(topic: &str) -> &'static str {
    match topic {
        "Job" => "namespace `list-jobs` (and `read-job` for the jobs read whole)",
        "Node" => "`node:read`",
        _ => "namespace `read-job`",
    }
}

/// How a topic's objects are called in messages.
fn noun(topic: &str) -> &'static str {
    match topic {
        "Job" => "jobs",
        "Allocation" => "allocations",
        "Evaluation" => "evaluations",
        "Deployment" => "deployments",
        _ => "nodes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_what_the_subscription_follows_for_every_key() {
        let mut sub = Subscription::everything(0);
        assert_eq!(scope(&sub).topics, TOPICS.map(str::to_owned));
        assert_eq!(scope(&sub).namespace, "*");
        sub.topics = vec![
            ("Allocation".into(), "*".into()),
            ("Job".into(), "web".into()),
            ("Node".into(), "*".into()),
        ];
        sub.namespace = "prod".into();
        let scoped = scope(&sub);
        assert_eq!(scoped.topics, vec!["Allocation", "Node"]);
        assert_eq!(scoped.namespace, "prod");
    }
}
