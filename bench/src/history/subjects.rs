//! What `bench history`'s queries ask about, picked from the archive through
//! the CLI's own `query snapshot --output ndjson` at its newest index, so
//! that every run on the same archive asks the same questions. The snapshot
//! is read line by line and tallied: it can be large.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::child::for_each_line;

/// The newest moment of the archive and live objects at it.
#[derive(Debug, Default)]
pub struct Subjects {
    /// The archive's checkpoint: "now" for snapshots and states.
    pub last_index: u64,
    /// The live job with the most live allocations: (namespace, ID).
    pub job: Option<(String, String)>,
    /// The live node with the most live allocations.
    pub node: Option<String>,
    /// The most recently described allocation of that job (of any job when
    /// it has none).
    pub alloc: Option<String>,
    /// An hour before the newest time the snapshot shows, RFC 3339.
    pub hour_before_newest: Option<String>,
}

/// (namespace, job ID)
type JobId = (String, String);

/// The snapshot, reduced to what choosing needs.
#[derive(Default)]
struct Tally {
    jobs: Vec<JobId>,
    nodes: Vec<String>,
    allocs_of_job: HashMap<JobId, usize>,
    allocs_on_node: HashMap<String, usize>,
    /// (index, key) of each job's most recently described allocation.
    newest_of_job: HashMap<JobId, (u64, String)>,
    newest_alloc: Option<(u64, String)>,
    newest_time: String,
}

/// Whether allocation `a` was described after `b` (ties: the lower key).
fn newer(a: &(u64, String), b: &(u64, String)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

impl Tally {
    /// Counts one line of the snapshot; lines that are not objects are skipped.
    fn add(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let (Some(topic), Some(key)) = (text(&v["Topic"]), text(&v["Key"])) else {
            return;
        };
        let namespace = text(&v["Namespace"]).unwrap_or_default();
        if let Some(time) = text(&v["Time"]).filter(|t| *t > self.newest_time) {
            self.newest_time = time;
        }
        match topic.as_str() {
            "Job" => self.jobs.push((namespace, key)),
            "Node" => self.nodes.push(key),
            "Allocation" => {
                let described = (v["Index"].as_u64().unwrap_or(0), key);
                if let Some(node) = text(&v["Object"]["NodeID"]) {
                    *self.allocs_on_node.entry(node).or_default() += 1;
                }
                if let Some(job) = text(&v["Object"]["JobID"]) {
                    let job = (namespace, job);
                    *self.allocs_of_job.entry(job.clone()).or_default() += 1;
                    let newest = self.newest_of_job.entry(job).or_insert(described.clone());
                    if newer(&described, newest) {
                        *newest = described.clone();
                    }
                }
                if self
                    .newest_alloc
                    .as_ref()
                    .is_none_or(|n| newer(&described, n))
                {
                    self.newest_alloc = Some(described);
                }
            }
            _ => {}
        }
    }

    /// The busiest live job and node, that job's newest allocation, and the
    /// hour before the newest time; ties go to the lowest ID.
    fn choose(self, last_index: u64) -> Subjects {
        let job = busiest(&self.jobs, &self.allocs_of_job);
        let node = busiest(&self.nodes, &self.allocs_on_node);
        let alloc = job
            .as_ref()
            .and_then(|j| self.newest_of_job.get(j))
            .or(self.newest_alloc.as_ref())
            .map(|(_, key)| key.clone());
        Subjects {
            last_index,
            job,
            node,
            alloc,
            hour_before_newest: hour_before(&self.newest_time),
        }
    }
}

/// The one of `ids` with the highest count (ties: the lowest ID).
fn busiest<K: Clone + Ord + std::hash::Hash>(ids: &[K], counts: &HashMap<K, usize>) -> Option<K> {
    ids.iter()
        .map(|id| (std::cmp::Reverse(counts.get(id).copied().unwrap_or(0)), id))
        .min()
        .map(|(_, id)| id.clone())
}

/// Reads the snapshot at `last_index` and picks the subjects from it.
pub fn pick(bin: &Path, url: &str, last_index: u64) -> anyhow::Result<Subjects> {
    let mut tally = Tally::default();
    for_each_line(
        Command::new(bin.join("nomad-chronicle"))
            .args(["--db", url, "query", "snapshot", "--output", "ndjson"])
            .args(["--at-index", &last_index.to_string()]),
        |line| tally.add(line),
    )?;
    Ok(tally.choose(last_index))
}

/// The RFC 3339 time an hour before `time`.
fn hour_before(time: &str) -> Option<String> {
    let at = humantime::parse_rfc3339_weak(time).ok()?;
    let earlier = at.checked_sub(Duration::from_secs(3600))?;
    Some(humantime::format_rfc3339_millis(earlier).to_string())
}

/// The subjects, for the report.
pub fn describe(s: &Subjects) -> String {
    let mut parts = vec![format!("at index `{}`", s.last_index)];
    if let Some((ns, job)) = &s.job {
        parts.push(format!("job `{job}` in `{ns}`"));
    }
    let named = [
        ("node", &s.node),
        ("alloc", &s.alloc),
        ("since", &s.hour_before_newest),
    ];
    for (what, value) in named {
        if let Some(value) = value {
            parts.push(format!("{what} `{value}`"));
        }
    }
    parts.join(", ")
}
