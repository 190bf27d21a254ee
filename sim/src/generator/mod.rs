//! A deterministic generator of realistic Nomad history: nodes, node pools, jobs, evaluations, allocations, deployments.
//!
//! The generator keeps a small simulated cluster and advances it one raft
//! entry at a time. Each entry comes from a queued step of some "story" (a
//! job rollout, a node drain, an outage…); stories interleave, as they do on a
//! real cluster, but every object's own steps stay in order, so the history is
//! coherent: allocations reference existing jobs, nodes, evaluations and
//! deployments, and every snapshot is a full object as Nomad sends it.

mod client;
mod jobs;
mod model;
mod nodes;
mod pools;
mod purge;
mod render;
mod scheduler;

use std::collections::BTreeMap;

use super::frame::{SimEvent, SimFrame};
use model::{Alloc, Deployment, Eval, Job, Node, NodePool, START_NS};

/// The first raft index a generated history uses (a fresh cluster has a few entries already).
const FIRST_INDEX: u64 = 10;
/// Stories are started until at least this many steps are queued.
const MIN_PENDING: usize = 3;
/// Of 100 deregistrations, how many purge the running job (`nomad job stop -purge`).
const PURGE_PERCENT: u8 = 3;
/// Above this many allocations, terminal ones are forgotten (Nomad's GC; the stream never says).
const ALLOC_GC_AT: usize = 300;

/// A seeded generator of Nomad event-stream history.
///
/// The same seed always yields the same frames, byte for byte, so tests and
/// benchmarks can regenerate a history instead of storing it.
pub struct Generator {
    /// The only source of randomness.
    rng: fastrand::Rng,
    /// The raft index of the entry being built.
    index: u64,
    /// The wall-clock time of the entry being built, Unix ns.
    now: i64,
    /// How many times the usual time passes between entries ([`Generator::paced`]).
    pace: i64,
    /// How many nodes were ever registered, for names.
    node_seq: u64,
    /// Every client node, registered or down.
    nodes: Vec<Node>,
    /// Node pools an operator created (the built-in ones never change).
    pools: Vec<NodePool>,
    /// Jobs that still have a spec in the state store.
    jobs: Vec<Job>,
    /// Evaluations still referenced by a queued step.
    evals: BTreeMap<String, Eval>,
    /// Allocations, keyed by ID (ordered, so iteration is deterministic).
    allocs: BTreeMap<String, Alloc>,
    /// Deployments, keyed by ID.
    deployments: BTreeMap<String, Deployment>,
    /// Queued steps; the next entry comes from a random one of them.
    pending: Vec<Step>,
}

/// One thing that can happen next; each produces at most one raft entry.
#[derive(Clone, Debug)]
enum Step {
    NodeRegister,
    NodeReady(String),
    NodeDrain(String),
    NodeMigrate(String),
    NodeDrainDone(String),
    NodeEligible(String),
    NodeDown(String),
    NodeLost(String),
    NodeUp(String),
    /// Registers a new job, or a new version of the given one.
    JobRegister(Option<String>),
    JobDeregister(String),
    /// `nomad job stop -purge`, of a running job or of one stopped earlier.
    JobPurge(String),
    /// Nomad's job garbage collection reaps a stopped job whose allocations
    /// all ended (`JobBatchDeregistered`, the job deleted).
    JobGc(String),
    NodePoolUpsert,
    AllocStop(String),
    Schedule(String),
    EvalDone(String),
    Unblock(String),
    Client(String),
    DeploymentDone(String),
}

/// What running a step did.
enum Outcome {
    /// It produced the events of one raft entry.
    Frame(Vec<SimEvent>),
    /// Not yet possible (e.g. a deployment still waiting for health): queue it again.
    Retry,
    /// Nothing to do any more (the object went away).
    Skip,
}

impl Generator {
    /// A generator whose whole history is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            index: FIRST_INDEX - 1,
            now: START_NS,
            pace: 1,
            node_seq: 0,
            nodes: Vec::new(),
            pools: Vec::new(),
            jobs: Vec::new(),
            evals: BTreeMap::new(),
            allocs: BTreeMap::new(),
            deployments: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// The same history, its entries `pace` times as far apart in time (a
    /// quiet cluster's, or hours of history from a few thousand entries).
    pub fn paced(mut self, pace: u32) -> Self {
        self.pace = i64::from(pace.max(1));
        self
    }

    /// The next raft entry; indexes strictly increase and sometimes skip
    /// numbers (entries without events), times advance by 0.2–5 s (times
    /// the pace).
    pub fn next_frame(&mut self) -> SimFrame {
        self.index += 1;
        if self.rng.u8(..10) < 3 {
            self.index += self.rng.u64(1..4);
        }
        let step = self.rng.i64(200_000_000..5_000_000_000);
        self.now = self.now.saturating_add(step.saturating_mul(self.pace));
        if self.nodes.is_empty() && self.pending.is_empty() {
            for _ in 0..self.rng.usize(4..8) {
                self.pending.push(Step::NodeRegister);
            }
        }
        let mut attempts = 0;
        let events = loop {
            attempts += 1;
            let step = if attempts > 50 {
                // Everything queued is waiting on something: a new rollout always produces an entry.
                Step::JobRegister(None)
            } else if self.pending.len() < MIN_PENDING || self.rng.u8(..100) < 4 {
                self.new_story()
            } else {
                let i = self.rng.usize(..self.pending.len());
                self.pending.swap_remove(i)
            };
            match self.run(step.clone()) {
                Outcome::Frame(events) if !events.is_empty() => break events,
                Outcome::Frame(_) | Outcome::Skip => {}
                Outcome::Retry => self.pending.push(step),
            }
        };
        self.collect_garbage();
        SimFrame {
            index: self.index,
            events,
        }
    }

    /// Frames until they hold at least `events` events in total.
    pub fn frames(&mut self, events: usize) -> Vec<SimFrame> {
        let mut out = Vec::new();
        let mut total = 0;
        while total < events {
            let frame = self.next_frame();
            total += frame.events.len();
            out.push(frame);
        }
        out
    }

    /// Picks what starts next on the cluster.
    fn new_story(&mut self) -> Step {
        let live: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| !self.jobs[i].stop)
            .collect();
        let ready: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                n.status == "ready" && n.eligible && !n.busy
            })
            .collect();
        let pick_job = |g: &mut Self| live.get(g.rng.usize(..live.len().max(1))).copied();
        let roll = self.rng.u8(..100);
        match roll {
            _ if self.nodes.len() < 3 => Step::NodeRegister,
            0..=29 if live.len() < 14 => Step::JobRegister(None),
            30..=59 if !live.is_empty() => {
                let job = pick_job(self).map(|i| self.jobs[i].id.clone());
                Step::JobRegister(job)
            }
            60..=67 if live.len() > 6 => match pick_job(self) {
                Some(i) if self.rng.u8(..100) < PURGE_PERCENT => {
                    Step::JobPurge(self.jobs[i].id.clone())
                }
                Some(i) => Step::JobDeregister(self.jobs[i].id.clone()),
                None => Step::JobRegister(None),
            },
            68..=73 if ready.len() >= 3 => {
                let i = ready[self.rng.usize(..ready.len())];
                Step::NodeDrain(self.nodes[i].id.clone())
            }
            74..=76 if ready.len() >= 3 => {
                let i = ready[self.rng.usize(..ready.len())];
                Step::NodeDown(self.nodes[i].id.clone())
            }
            77..=78 if self.nodes.len() < 12 => Step::NodeRegister,
            79..=84 => {
                let running: Vec<&String> = self
                    .allocs
                    .values()
                    .filter(|a| a.client == "running" && a.desired == "run" && !a.migrate)
                    .map(|a| &a.id)
                    .collect();
                match running.get(self.rng.usize(..running.len().max(1))) {
                    Some(id) => Step::AllocStop((*id).clone()),
                    None => Step::JobRegister(None),
                }
            }
            85 => Step::NodePoolUpsert,
            _ if live.len() < 14 => Step::JobRegister(None),
            _ => {
                let job = pick_job(self).map(|i| self.jobs[i].id.clone());
                Step::JobRegister(job)
            }
        }
    }

    /// Runs one step against the cluster state.
    fn run(&mut self, step: Step) -> Outcome {
        match step {
            Step::NodeRegister => self.node_register(),
            Step::NodeReady(id) => self.node_ready(&id),
            Step::NodeDrain(id) => self.node_drain(&id),
            Step::NodeMigrate(id) => self.node_migrate(&id),
            Step::NodeDrainDone(id) => self.node_drain_done(&id),
            Step::NodeEligible(id) => self.node_eligible(&id),
            Step::NodeDown(id) => self.node_down(&id),
            Step::NodeLost(id) => self.node_lost(&id),
            Step::NodeUp(id) => self.node_up(&id),
            Step::JobRegister(id) => self.job_register(id.as_deref()),
            Step::JobDeregister(id) => self.job_deregister(&id),
            Step::JobPurge(id) => self.job_purge(&id),
            Step::JobGc(id) => self.job_gc(&id),
            Step::NodePoolUpsert => self.node_pool_upsert(),
            Step::AllocStop(id) => self.alloc_stop(&id),
            Step::Schedule(id) => self.schedule(&id),
            Step::EvalDone(id) => self.eval_done(&id),
            Step::Unblock(id) => self.unblock(&id),
            Step::Client(id) => self.client_update(&id),
            Step::DeploymentDone(id) => self.deployment_done(&id),
        }
    }

    /// A UUID-shaped ID from the generator's randomness, as Nomad's `uuid.Generate` makes.
    fn uuid(&mut self) -> String {
        let a = self.rng.u128(..);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 96,
            (a >> 80) & 0xffff,
            (a >> 64) & 0xffff,
            (a >> 48) & 0xffff,
            a & 0xffff_ffff_ffff
        )
    }

    /// An Allocation event of this entry.
    fn alloc_event(&self, event_type: &str, a: &Alloc) -> SimEvent {
        let keys = vec![
            a.job_id.clone(),
            a.deployment_id.clone().unwrap_or_default(),
        ];
        SimEvent::new(
            "Allocation",
            event_type,
            a.id.as_str(),
            a.namespace,
            keys,
            self.index,
            render::alloc(a),
        )
    }

    /// An Evaluation event of this entry.
    fn eval_event(&self, event_type: &str, e: &Eval) -> SimEvent {
        let keys = vec![
            e.job_id.clone(),
            e.deployment_id.clone().unwrap_or_default(),
        ];
        SimEvent::new(
            "Evaluation",
            event_type,
            e.id.as_str(),
            e.namespace,
            keys,
            self.index,
            render::eval(e),
        )
    }

    /// A Deployment event of this entry.
    fn deployment_event(&self, event_type: &str, d: &Deployment) -> SimEvent {
        SimEvent::new(
            "Deployment",
            event_type,
            d.id.as_str(),
            d.namespace,
            vec![d.job_id.clone()],
            self.index,
            render::deployment(d),
        )
    }

    /// A Job event of this entry.
    fn job_event(&self, event_type: &str, j: &Job) -> SimEvent {
        SimEvent::new(
            "Job",
            event_type,
            j.id.as_str(),
            j.namespace,
            Vec::new(),
            self.index,
            render::job(j),
        )
    }

    /// The Job event of a purge (`JobDeregistered`) or of the job garbage
    /// collection (`JobBatchDeregistered`): the job as it was, flagged
    /// `Deleted`.
    fn purged_job_event(&self, event_type: &str, j: &Job) -> SimEvent {
        SimEvent::new(
            "Job",
            event_type,
            j.id.as_str(),
            j.namespace,
            Vec::new(),
            self.index,
            render::purged_job(j),
        )
    }

    /// A NodePool event of this entry; pools are cluster-wide, so the namespace is empty.
    fn node_pool_event(&self, p: &NodePool) -> SimEvent {
        SimEvent::new(
            "NodePool",
            "NodePoolUpserted",
            p.name,
            "",
            Vec::new(),
            self.index,
            render::node_pool(p),
        )
    }

    /// A Node event of this entry.
    fn node_event(&self, event_type: &str, n: &Node) -> SimEvent {
        SimEvent::new(
            "Node",
            event_type,
            n.id.as_str(),
            "",
            Vec::new(),
            self.index,
            render::node(n),
        )
    }

    /// Forgets old terminal allocations and finished deployments, so memory stays bounded.
    fn collect_garbage(&mut self) {
        if self.allocs.len() > ALLOC_GC_AT {
            let mut done: Vec<(u64, String)> = self
                .allocs
                .values()
                .filter(|a| a.is_terminal() && !a.step_pending)
                .map(|a| (a.create_index, a.id.clone()))
                .collect();
            done.sort();
            let excess = self.allocs.len() - ALLOC_GC_AT * 2 / 3;
            for (_, id) in done.into_iter().take(excess) {
                self.allocs.remove(&id);
            }
        }
        if self.deployments.len() > 60 {
            let mut done: Vec<(u64, String)> = self
                .deployments
                .values()
                .filter(|d| d.status != "running")
                .map(|d| (d.create_index, d.id.clone()))
                .collect();
            done.sort();
            for (_, id) in done.into_iter().take(20) {
                self.deployments.remove(&id);
            }
        }
    }
}
