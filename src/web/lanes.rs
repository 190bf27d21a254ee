//! The swimlane view of a time window: one lane per job (grouped by
//! namespace) or per node, each allocation a bar from its placement to its
//! terminal client status, job versions and deployments as markers, node
//! down and drain periods, recorded gaps and pruned history as bands.
//! Built without I/O ([`Builder`]) from what [`super::window`] reads; an
//! allocation whose bar would be thinner than a pixel of the page is
//! counted per lane and time bucket instead of drawn ([`pixels`]), so an
//! answer stays a few hundred KB however long the window. Written as
//! `/api/v1/timeline` answers it by [`json`].

mod builder;
pub mod json;
mod pixels;

pub use builder::{Builder, Sighting, Topic};
pub use pixels::{BUCKET_PX, Grid, MAX_BARS, MAX_MARKERS, MAX_WIDTH, MIN_WIDTH};

/// Which objects the lanes stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Job,
    Node,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Job => "job",
            By::Node => "node",
        }
    }
}

/// One lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// `namespace/job` or the node ID.
    pub id: String,
    /// What the page writes beside it: the job ID or the node's name.
    pub label: String,
    /// The namespace (by job) or `nodes` (by node), for grouping.
    pub group: String,
}

/// One allocation, from its first event (or the window's start) to its
/// terminal client status (or still running: `end` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub alloc: String,
    pub lane: String,
    pub job: String,
    pub namespace: String,
    pub task_group: String,
    pub node: String,
    pub node_name: String,
    /// Unix ms by Nomad's clock.
    pub start: i64,
    pub end: Option<i64>,
    /// The client status last reported.
    pub status: String,
    /// Whether it was already placed when the window starts.
    pub before: bool,
}

/// What a marker or a band stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A job's version changed (a marker).
    Version,
    /// A deployment's status changed (a marker).
    Deployment,
    /// A node was down (a band on its lane).
    Down,
    /// A node was draining or ineligible (a band on its lane).
    Drain,
    /// A recorded gap: events may be missing (a band across every lane).
    Gap,
    /// History given up by retention (a band across every lane).
    Pruned,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Version => "version",
            Kind::Deployment => "deployment",
            Kind::Down => "down",
            Kind::Drain => "drain",
            Kind::Gap => "gap",
            Kind::Pruned => "pruned",
        }
    }
}

/// A point on a lane: a job version registered, a deployment's status.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub lane: String,
    pub at: i64,
    pub kind: Kind,
    pub label: String,
    /// Earlier changes within its bucket of pixels it stands for (the
    /// label says so).
    pub hidden: u32,
}

/// A period: a node down or draining (on its lane), a recorded gap or
/// pruned history (`lane` is `None`: it covers every lane).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub lane: Option<String>,
    pub kind: Kind,
    pub from: i64,
    /// `None` while it lasts past the window.
    pub to: Option<i64>,
    pub label: String,
}

/// Allocations counted per time bucket on one lane, instead of drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Density {
    pub lane: String,
    /// One count per bucket of [`Lanes::grid`], from its first.
    pub counts: Vec<u32>,
}

/// The answer of `/api/v1/timeline`.
#[derive(Debug, PartialEq)]
pub struct Lanes {
    pub cluster: String,
    pub by: By,
    /// The window, Unix ms by Nomad's clock: `[from, to)`.
    pub from: i64,
    pub to: i64,
    /// The pixels of the page's time axis the answer is fitted to.
    pub width: u32,
    pub lanes: Vec<Lane>,
    pub bars: Vec<Bar>,
    pub markers: Vec<Marker>,
    pub bands: Vec<Band>,
    /// The time buckets of [`Density`].
    pub grid: Grid,
    /// Allocations counted in `density` rather than drawn.
    pub counted: u64,
    pub density: Vec<Density>,
    /// Whether the window held more events than one answer reads.
    pub truncated: bool,
}

#[cfg(test)]
mod tests;
