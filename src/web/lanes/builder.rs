//! Builds [`Lanes`] from what the window's objects did: the objects
//! present when it starts, then each allocation of the window summed up
//! once, then the other events in stream order, each as a [`Sighting`]
//! (the few fields the lanes use, read from the details stored beside an
//! event or from a decoded object).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Band, Bar, By, Kind, Lane, Lanes, Marker, pixels};

/// The topics the lanes are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Allocation,
    Job,
    Deployment,
    Node,
}

impl Topic {
    pub fn parse(topic: &str) -> Option<Self> {
        match topic {
            "Allocation" => Some(Topic::Allocation),
            "Job" => Some(Topic::Job),
            "Deployment" => Some(Topic::Deployment),
            "Node" => Some(Topic::Node),
            _ => None,
        }
    }
}

/// One object as an event (or the window's starting moment) shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sighting {
    /// The object's ID.
    pub id: String,
    pub namespace: String,
    /// An allocation's or a deployment's job.
    pub job_id: String,
    /// An allocation's node, its name, its task group.
    pub node_id: String,
    /// An allocation's NodeName or a node's Name.
    pub node_name: String,
    pub task_group: String,
    /// An allocation's client status, a deployment's or a node's status.
    pub status: String,
    /// When an allocation summed up over the window reached its terminal
    /// `status` (`None`: at `at`, where a single event shows it).
    pub ended: Option<i64>,
    /// A job's version, a deployment's job version.
    pub version: Option<i64>,
    /// A node draining or ineligible.
    pub draining: bool,
    /// A job's version or a deployment's status already found changed
    /// (and thinned) before it got here: the earlier changes within its
    /// bucket of pixels it stands for. `None`: the builder decides whether it
    /// changed.
    pub thinned: Option<u32>,
}

/// What a node was last seen doing, for its bands.
#[derive(Debug, Default)]
struct NodeState {
    down_since: Option<i64>,
    drain_since: Option<i64>,
}

/// Builds [`Lanes`] from sightings: per object, in stream order.
pub struct Builder {
    by: By,
    from: i64,
    to: i64,
    lanes: BTreeMap<String, Lane>,
    /// The allocations present when the window starts, by ID: their row
    /// in the window (if any) may still end them.
    seeded: HashMap<String, Bar>,
    /// Decides which of the window's allocations are drawn.
    fit: pixels::Fitter,
    markers: Vec<Marker>,
    bands: Vec<Band>,
    /// Each job's version last seen, by lane ID.
    versions: HashMap<String, i64>,
    /// Each deployment's status last seen.
    deployments: HashMap<String, String>,
    nodes: HashMap<String, NodeState>,
    /// The lanes per node a Node sighting of their own named.
    node_named: HashSet<String>,
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "complete" | "failed" | "lost")
}

impl Builder {
    /// A builder for the window `[from, to)`, fitted to a time axis
    /// `width` pixels wide (`0`: the default).
    pub fn new(by: By, from: i64, to: i64, width: u32) -> Self {
        Builder {
            by,
            from,
            to,
            lanes: BTreeMap::new(),
            seeded: HashMap::new(),
            fit: pixels::Fitter::new((from, to), width),
            markers: Vec::new(),
            bands: Vec::new(),
            versions: HashMap::new(),
            deployments: HashMap::new(),
            nodes: HashMap::new(),
            node_named: HashSet::new(),
        }
    }

    /// How the lanes are laid out.
    pub fn by(&self) -> By {
        self.by
    }

    /// The pixels of the time axis the answer is fitted to, and the time
    /// buckets allocations are counted in.
    pub fn pixels(&self) -> (u32, pixels::Grid) {
        self.fit.pixels()
    }

    /// Takes in `count` allocations of the window counted before they got
    /// here (as [`Builder::add`] would count them: thinner than a pixel,
    /// placed after the window starts), on the lane of `alloc` in
    /// `bucket`.
    pub fn add_counted(&mut self, alloc: &Sighting, bucket: u32, count: u32) {
        let lane = self.lane_of(alloc);
        self.fit.count(lane, bucket, count);
    }

    /// Takes in one object of `topic` seen at `at`; `before` marks an
    /// object present when the window starts. An allocation of the window
    /// itself is taken in once, summed up over the window (`at` its first
    /// event, `status` its last, `ended` when it got there), and drawn or
    /// counted at once.
    pub fn add(&mut self, topic: Topic, object: Sighting, at: i64, before: bool) {
        let at = at.max(self.from);
        match topic {
            Topic::Allocation => self.allocation(object, at, before),
            Topic::Job => self.job(object, at, before),
            Topic::Deployment => self.deployment(object, at, before),
            Topic::Node => self.node(object, at),
        }
    }

    /// The lane an allocation goes on, created on first use. A lane per
    /// node that no Node sighting of its own named (at the window's start
    /// or in it) is labelled with the least of the node names its
    /// allocations carry (the node's ID while none does), whatever order
    /// they come in.
    fn lane_of(&mut self, alloc: &Sighting) -> String {
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
        let label = lane.label.clone();
        let kept = self.lanes.entry(id.clone()).or_insert(lane);
        let named =
            self.by == By::Node && !alloc.node_name.is_empty() && !self.node_named.contains(&id);
        if named && (kept.label == kept.id || label < kept.label) {
            kept.label = label;
        }
        id
    }

    /// A bar from the allocation's first sighting to its first terminal
    /// client status after its last other one.
    fn allocation(&mut self, alloc: Sighting, at: i64, before: bool) {
        let end = is_terminal(&alloc.status).then(|| alloc.ended.unwrap_or(at).max(self.from));
        if let Some(bar) = self.seeded.get_mut(&alloc.id) {
            bar.end = end;
            bar.status = alloc.status;
            return;
        }
        let lane = self.lane_of(&alloc);
        let bar = Bar {
            end,
            alloc: alloc.id.clone(),
            lane,
            job: alloc.job_id,
            namespace: alloc.namespace,
            task_group: alloc.task_group,
            node: alloc.node_id,
            node_name: alloc.node_name,
            start: at,
            status: alloc.status,
            before,
        };
        if before {
            self.seeded.insert(alloc.id, bar);
        } else {
            self.fit.take(bar);
        }
    }

    fn job(&mut self, job: Sighting, at: i64, before: bool) {
        let Some(version) = job.version else {
            return;
        };
        let lane = format!("{}/{}", job.namespace, job.id);
        let previous = self.versions.insert(lane.clone(), version);
        let changed = job.thinned.is_some() || previous != Some(version);
        if before || !changed || self.by != By::Job {
            return;
        }
        self.markers.push(Marker {
            lane,
            at,
            kind: Kind::Version,
            label: format!("version {version}"),
            hidden: job.thinned.unwrap_or(0),
        });
    }

    fn deployment(&mut self, deployment: Sighting, at: i64, before: bool) {
        let previous = self
            .deployments
            .insert(deployment.id.clone(), deployment.status.clone());
        let changed =
            deployment.thinned.is_some() || previous.as_deref() != Some(&deployment.status);
        if before || !changed || self.by != By::Job {
            return;
        }
        let short: String = deployment.id.chars().take(8).collect();
        let version = deployment
            .version
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        self.markers.push(Marker {
            lane: format!("{}/{}", deployment.namespace, deployment.job_id),
            at,
            kind: Kind::Deployment,
            label: format!("deployment {short}{version} {}", deployment.status),
            hidden: deployment.thinned.unwrap_or(0),
        });
    }

    /// A node's lane (by node) and its down and drain periods.
    fn node(&mut self, node: Sighting, at: i64) {
        if self.by == By::Node && !node.id.is_empty() {
            let lane = self.lanes.entry(node.id.clone()).or_insert_with(|| Lane {
                id: node.id.clone(),
                label: node.id.clone(),
                group: "nodes".to_owned(),
            });
            if !node.node_name.is_empty() {
                lane.label = node.node_name.clone();
                self.node_named.insert(node.id.clone());
            }
        }
        let state = self.nodes.entry(node.id.clone()).or_default();
        let mut closed = Vec::new();
        for (kind, now, since) in [
            (Kind::Down, node.status == "down", &mut state.down_since),
            (Kind::Drain, node.draining, &mut state.drain_since),
        ] {
            match (now, *since) {
                (true, None) => *since = Some(at),
                (false, Some(began)) => {
                    *since = None;
                    closed.push((kind, began));
                }
                _ => {}
            }
        }
        for (kind, since) in closed {
            self.node_band(&node.id, kind, since, Some(at));
        }
    }

    fn node_band(&mut self, node: &str, kind: Kind, from: i64, to: Option<i64>) {
        let label = match kind {
            Kind::Down => "node down",
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

    /// A band across every lane (a gap, pruned history), clamped to the
    /// window; `to: None` lasts past it.
    pub fn across(&mut self, kind: Kind, from: i64, to: Option<i64>, label: String) {
        let to = to.filter(|to| *to < self.to);
        self.bands.push(Band {
            lane: None,
            kind,
            from: from.max(self.from),
            to,
            label,
        });
    }

    /// The answer; bars in order of start.
    pub fn finish(mut self, cluster: &str, truncated: bool) -> Lanes {
        let open: Vec<(String, Kind, i64)> = self
            .nodes
            .iter()
            .flat_map(|(id, s)| {
                let down = s.down_since.map(|at| (id.clone(), Kind::Down, at));
                let drain = s.drain_since.map(|at| (id.clone(), Kind::Drain, at));
                down.into_iter().chain(drain)
            })
            .collect();
        for (id, kind, at) in open {
            self.node_band(&id, kind, at, None);
        }
        if self.by == By::Job {
            self.bands.retain(|b| b.lane.is_none());
        }
        self.bands
            .sort_by(|a, b| (a.from, a.kind.as_str()).cmp(&(b.from, b.kind.as_str())));
        let mut seeded: Vec<Bar> = self.seeded.into_values().collect();
        seeded.sort_by(|a, b| a.alloc.cmp(&b.alloc));
        for bar in seeded {
            self.fit.take(bar);
        }
        let pixels = self.fit.bucket_pixels();
        let fitted = self.fit.finish();
        let markers = pixels::thin_markers(self.markers, fitted.grid, pixels);
        Lanes {
            cluster: cluster.to_owned(),
            by: self.by,
            from: self.from,
            to: self.to,
            width: fitted.width,
            lanes: self.lanes.into_values().collect(),
            bars: fitted.bars,
            markers,
            bands: self.bands,
            grid: fitted.grid,
            counted: fitted.counted,
            density: fitted.density,
            truncated,
        }
    }
}
