//! The swimlane view of a time window: one lane per job (grouped by
//! namespace) or per node, each allocation a bar from its placement to its
//! terminal client status, job versions and deployments as markers, node
//! down and drain periods and recorded gaps as bands. Built from events
//! fed in stream order, without I/O; past [`MAX_BARS`] allocations, new
//! ones are only counted per lane and time bucket, so an answer stays a
//! few MB however long the window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

/// Bars drawn at most; beyond them allocations are aggregated.
pub const MAX_BARS: usize = 10_000;

/// Time buckets per lane once a view is aggregated.
pub const BUCKETS: usize = 240;

/// Which objects the lanes stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Job,
    Node,
}

/// One lane.
#[derive(Debug, Clone, Serialize)]
pub struct Lane {
    /// `namespace/job` or the node ID.
    pub id: String,
    /// What the page writes beside it: the job ID or the node's name.
    pub label: String,
    /// The namespace (by job) or `nodes` (by node), for grouping.
    pub group: String,
}

/// One allocation, from its first event (or the window's start) to its
/// terminal client status (or still running: `end` is `null`).
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub alloc: String,
    pub name: String,
    pub lane: String,
    pub job: String,
    pub namespace: String,
    pub node: String,
    /// Unix ms by Nomad's clock.
    pub start: i64,
    pub end: Option<i64>,
    /// The client status last reported.
    pub status: String,
    /// Whether it was already placed when the window starts.
    pub before: bool,
}

/// A point on a lane: a job version registered, a deployment's status.
#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    pub lane: String,
    pub at: i64,
    /// `version` or `deployment`.
    pub kind: &'static str,
    pub label: String,
}

/// A period: a node down or draining (on its lane), or a recorded gap
/// (`lane` is `null`: it covers every lane).
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    pub lane: Option<String>,
    /// `down`, `drain` or `gap`.
    pub kind: &'static str,
    pub from: i64,
    /// `null` while it lasts past the window.
    pub to: Option<i64>,
    pub label: String,
}

/// Allocations placed per time bucket on one lane, once aggregated.
#[derive(Debug, Clone, Serialize)]
pub struct Density {
    pub lane: String,
    pub counts: Vec<u32>,
}

/// The answer of `/api/v1/timeline`.
#[derive(Debug, Serialize)]
pub struct Lanes {
    pub cluster: String,
    pub by: By,
    pub from: i64,
    pub to: i64,
    pub lanes: Vec<Lane>,
    pub bars: Vec<Bar>,
    pub markers: Vec<Marker>,
    pub bands: Vec<Band>,
    /// Whether allocations past [`MAX_BARS`] were counted, not drawn.
    pub aggregated: bool,
    pub density: Vec<Density>,
    /// Whether the window held more events than one answer reads.
    pub truncated: bool,
}

/// The fields of an event's payload the lanes use.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Object {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    #[serde(rename = "JobID")]
    job_id: String,
    namespace: String,
    #[serde(rename = "NodeID")]
    node_id: String,
    node_name: String,
    client_status: String,
    version: Option<u64>,
    job_version: Option<u64>,
    status: String,
    scheduling_eligibility: String,
    drain_strategy: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(default)]
    payload: HashMap<String, Object>,
}

/// What a node was last seen doing, for its bands.
#[derive(Debug, Default)]
struct NodeState {
    down_since: Option<i64>,
    drain_since: Option<i64>,
}

/// Builds [`Lanes`] from events in stream order.
pub struct Builder {
    by: By,
    from: i64,
    to: i64,
    lanes: BTreeMap<String, Lane>,
    bars: HashMap<String, Bar>,
    /// Hashes of the allocations counted in `density`, not drawn.
    counted: HashSet<u64>,
    density: HashMap<String, Vec<u32>>,
    markers: Vec<Marker>,
    bands: Vec<Band>,
    versions: HashMap<String, u64>,
    deployments: HashMap<String, String>,
    nodes: HashMap<String, NodeState>,
    hasher: std::collections::hash_map::RandomState,
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "complete" | "failed" | "lost")
}

impl Builder {
    pub fn new(by: By, from: i64, to: i64) -> Self {
        Builder {
            by,
            from,
            to,
            lanes: BTreeMap::new(),
            bars: HashMap::new(),
            counted: HashSet::new(),
            density: HashMap::new(),
            markers: Vec::new(),
            bands: Vec::new(),
            versions: HashMap::new(),
            deployments: HashMap::new(),
            nodes: HashMap::new(),
            hasher: Default::default(),
        }
    }

    /// Takes in one event's object: `topic` is the event's topic, `raw`
    /// its archived JSON, `at` its time; `before` marks an object read
    /// from the moment the window starts at. Unparsable events are skipped.
    pub fn add(&mut self, topic: &str, raw: &str, at: i64, before: bool) {
        let Ok(mut envelope) = serde_json::from_str::<Envelope>(raw) else {
            return;
        };
        let Some(object) = envelope.payload.remove(topic) else {
            return;
        };
        let at = at.max(self.from);
        match topic {
            "Allocation" => self.allocation(object, at, before),
            "Job" => self.job(object, at, before),
            "Deployment" => self.deployment(object, at, before),
            "Node" => self.node(object, at),
            _ => {}
        }
    }

    /// The lane an allocation goes on, created on first use.
    fn lane_of(&mut self, alloc: &Object) -> String {
        let lane = match self.by {
            By::Job => Lane {
                id: format!("{}/{}", alloc.namespace, alloc.job_id),
                label: alloc.job_id.clone(),
                group: alloc.namespace.clone(),
            },
            By::Node => Lane {
                id: alloc.node_id.clone(),
                label: if alloc.node_name.is_empty() {
                    alloc.node_id.clone()
                } else {
                    alloc.node_name.clone()
                },
                group: "nodes".to_owned(),
            },
        };
        let id = lane.id.clone();
        self.lanes.entry(id.clone()).or_insert(lane);
        id
    }

    fn allocation(&mut self, alloc: Object, at: i64, before: bool) {
        if let Some(bar) = self.bars.get_mut(&alloc.id) {
            if is_terminal(&alloc.client_status) {
                bar.end.get_or_insert(at);
            } else {
                bar.end = None;
            }
            bar.status = alloc.client_status;
            return;
        }
        let lane = self.lane_of(&alloc);
        if self.bars.len() >= MAX_BARS {
            return self.count(&alloc.id, lane, at);
        }
        let bar = Bar {
            end: is_terminal(&alloc.client_status).then_some(at),
            alloc: alloc.id.clone(),
            name: alloc.name,
            lane,
            job: alloc.job_id,
            namespace: alloc.namespace,
            node: alloc.node_id,
            start: at,
            status: alloc.client_status,
            before,
        };
        self.bars.insert(alloc.id, bar);
    }

    /// Counts an allocation beyond [`MAX_BARS`] once, in its time bucket.
    fn count(&mut self, alloc: &str, lane: String, at: i64) {
        if !self.counted.insert(self.hasher.hash_one(alloc)) {
            return;
        }
        let span = (self.to - self.from).max(1) as i128;
        let bucket = ((at - self.from) as i128 * BUCKETS as i128 / span) as usize;
        let counts = self.density.entry(lane).or_insert_with(|| vec![0; BUCKETS]);
        counts[bucket.min(BUCKETS - 1)] += 1;
    }

    fn job(&mut self, job: Object, at: i64, before: bool) {
        let Some(version) = job.version else {
            return;
        };
        let lane = format!("{}/{}", job.namespace, job.id);
        let previous = self.versions.insert(lane.clone(), version);
        if before || previous == Some(version) || self.by != By::Job {
            return;
        }
        self.markers.push(Marker {
            lane,
            at,
            kind: "version",
            label: format!("version {version}"),
        });
    }

    fn deployment(&mut self, deployment: Object, at: i64, before: bool) {
        let previous = self
            .deployments
            .insert(deployment.id.clone(), deployment.status.clone());
        if before || previous.as_deref() == Some(&deployment.status) || self.by != By::Job {
            return;
        }
        let short: String = deployment.id.chars().take(8).collect();
        let version = deployment
            .job_version
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        self.markers.push(Marker {
            lane: format!("{}/{}", deployment.namespace, deployment.job_id),
            at,
            kind: "deployment",
            label: format!("deployment {short}{version} {}", deployment.status),
        });
    }

    fn node(&mut self, node: Object, at: i64) {
        if self.by == By::Node && !node.id.is_empty() {
            let label = if node.name.is_empty() {
                &node.id
            } else {
                &node.name
            };
            let lane = self.lanes.entry(node.id.clone()).or_insert_with(|| Lane {
                id: node.id.clone(),
                label: label.clone(),
                group: "nodes".to_owned(),
            });
            if !node.name.is_empty() {
                lane.label = node.name.clone();
            }
        }
        let state = self.nodes.entry(node.id.clone()).or_default();
        let down = node.status == "down";
        let drain = node.drain_strategy.as_ref().is_some_and(|d| !d.is_null())
            || node.scheduling_eligibility == "ineligible";
        let mut closed = Vec::new();
        match (down, state.down_since) {
            (true, None) => state.down_since = Some(at),
            (false, Some(since)) => {
                state.down_since = None;
                closed.push(("down", since));
            }
            _ => {}
        }
        match (drain, state.drain_since) {
            (true, None) => state.drain_since = Some(at),
            (false, Some(since)) => {
                state.drain_since = None;
                closed.push(("drain", since));
            }
            _ => {}
        }
        for (kind, since) in closed {
            self.band(&node.id, kind, since, Some(at));
        }
    }

    fn band(&mut self, node: &str, kind: &'static str, from: i64, to: Option<i64>) {
        let label = match kind {
            "down" => "node down",
            _ => "node draining or ineligible",
        };
        self.bands.push(Band {
            lane: Some(node.to_owned()),
            kind,
            from,
            to,
            label: label.to_owned(),
        });
    }

    /// A recorded gap between two event times.
    pub fn gap(&mut self, from: i64, to: i64, reason: &str) {
        self.bands.push(Band {
            lane: None,
            kind: "gap",
            from: from.max(self.from),
            to: Some(to.min(self.to)),
            label: format!("gap: {reason}"),
        });
    }

    /// The answer, bars in order of start.
    pub fn finish(mut self, cluster: &str, truncated: bool) -> Lanes {
        let open: Vec<(String, &'static str, i64)> = self
            .nodes
            .iter()
            .flat_map(|(id, s)| {
                let down = s.down_since.map(|at| (id.clone(), "down", at));
                let drain = s.drain_since.map(|at| (id.clone(), "drain", at));
                down.into_iter().chain(drain)
            })
            .collect();
        for (id, kind, at) in open {
            self.band(&id, kind, at, None);
        }
        if self.by == By::Job {
            self.bands.retain(|b| b.lane.is_none());
        }
        let mut bars: Vec<Bar> = self.bars.into_values().collect();
        bars.sort_by(|a, b| (a.start, &a.alloc).cmp(&(b.start, &b.alloc)));
        let mut density: Vec<Density> = self
            .density
            .into_iter()
            .map(|(lane, counts)| Density { lane, counts })
            .collect();
        density.sort_by(|a, b| a.lane.cmp(&b.lane));
        Lanes {
            cluster: cluster.to_owned(),
            by: self.by,
            from: self.from,
            to: self.to,
            lanes: self.lanes.into_values().collect(),
            bars,
            markers: self.markers,
            bands: self.bands,
            aggregated: !density.is_empty(),
            density,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests;
