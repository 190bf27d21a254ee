//! Node stories: registration, drains and eligibility, outages.

use std::collections::{BTreeSet, VecDeque};

use super::model::{Eval, Node, NodeEvent};
use super::{Generator, Outcome, Step};

/// Datacenters nodes are spread over.
const DATACENTERS: [&str; 3] = ["dc1", "dc1", "dc2"];

impl Generator {
    /// The node with this ID, if it still exists.
    fn node_mut(&mut self, id: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// Records a node event and bumps the node's indexes.
    fn touch_node(&mut self, id: &str, message: Option<(&'static str, &'static str)>) {
        let (index, now) = (self.index, self.now);
        if let Some(node) = self.node_mut(id) {
            node.modify_index = index;
            if let Some((message, subsystem)) = message {
                node.events.push_back(NodeEvent {
                    message,
                    subsystem,
                    time: now,
                    create_index: index,
                });
                while node.events.len() > 10 {
                    node.events.pop_front();
                }
            }
        }
    }

    /// The events of one node, after a change, as a one-event entry.
    fn node_frame(&self, event_type: &str, id: &str) -> Outcome {
        match self.nodes.iter().find(|n| n.id == id) {
            Some(node) => Outcome::Frame(vec![self.node_event(event_type, node)]),
            None => Outcome::Skip,
        }
    }

    /// `NodeRegistration`: a new client joins, still initializing.
    pub(super) fn node_register(&mut self) -> Outcome {
        self.node_seq += 1;
        let seq = self.node_seq;
        let id = self.uuid();
        let cores = [4, 8, 8, 16][self.rng.usize(..4)];
        let ip = format!("10.0.{}.{}", seq % 4 + 1, self.rng.u8(10..250));
        self.nodes.push(Node {
            name: format!("ip-{}", ip.replace('.', "-")),
            address: format!("{ip}:4646"),
            id: id.clone(),
            datacenter: DATACENTERS[(seq % 3) as usize],
            pool: "default",
            class: if cores >= 16 { "large" } else { "standard" },
            cpu_shares: cores * 2600,
            cores,
            memory_mb: cores * 4 * 1024,
            disk_mb: 100 * 1024,
            status: "initializing",
            eligible: true,
            drain_started: None,
            busy: true,
            status_updated_at: self.now / 1_000_000_000,
            events: VecDeque::new(),
            create_index: self.index,
            modify_index: self.index,
        });
        self.touch_node(&id, Some(("Node registered", "Cluster")));
        self.pending.push(Step::NodeReady(id.clone()));
        self.node_frame("NodeRegistration", &id)
    }

    /// `NodeStreamEvent`: the client's first heartbeat makes it ready.
    pub(super) fn node_ready(&mut self, id: &str) -> Outcome {
        let now = self.now;
        let Some(node) = self.node_mut(id) else {
            return Outcome::Skip;
        };
        node.status = "ready";
        node.busy = false;
        node.status_updated_at = now / 1_000_000_000;
        self.touch_node(id, None);
        self.node_frame("NodeStreamEvent", id)
    }

    /// `NodeDrain`: an operator starts draining a node.
    pub(super) fn node_drain(&mut self, id: &str) -> Outcome {
        let now = self.now;
        let Some(node) = self.node_mut(id) else {
            return Outcome::Skip;
        };
        if node.status != "ready" || node.drain_started.is_some() {
            return Outcome::Skip;
        }
        node.drain_started = Some(now);
        node.eligible = false;
        node.busy = true;
        self.touch_node(id, Some(("Node drain strategy set", "Drain")));
        self.pending.push(Step::NodeMigrate(id.to_string()));
        self.node_frame("NodeDrain", id)
    }

    /// `AllocationUpdateDesiredStatus`: the drainer marks the node's
    /// allocations for migration and creates an evaluation per job.
    pub(super) fn node_migrate(&mut self, id: &str) -> Outcome {
        let ids: Vec<String> = self
            .allocs
            .values()
            .filter(|a| a.node_id == id && a.desired == "run" && !a.is_terminal())
            .map(|a| a.id.clone())
            .collect();
        self.pending.push(Step::NodeDrainDone(id.to_string()));
        self.mark_for_migration(&ids, "node-drain", None)
    }

    /// Sets `DesiredTransition.Migrate` on allocations and creates one
    /// evaluation per job: the entry behind a drain or `nomad alloc stop`.
    pub(super) fn mark_for_migration(
        &mut self,
        ids: &[String],
        triggered_by: &'static str,
        node_id: Option<&str>,
    ) -> Outcome {
        let (index, now) = (self.index, self.now);
        let mut events = Vec::new();
        let mut jobs = BTreeSet::new();
        for id in ids {
            if let Some(a) = self.allocs.get_mut(id) {
                a.migrate = true;
                a.modify_index = index;
                a.modify_time = now;
                jobs.insert(a.job_id.clone());
            }
            if let Some(a) = self.allocs.get(id) {
                events.push(self.alloc_event("AllocationUpdateDesiredStatus", a));
            }
        }
        for job_id in jobs {
            if let Some(eval) = self.new_eval(&job_id, triggered_by, node_id) {
                events.push(self.eval_event("AllocationUpdateDesiredStatus", &eval));
                self.pending.push(Step::Schedule(eval.id.clone()));
                self.evals.insert(eval.id.clone(), eval);
            }
        }
        if events.is_empty() {
            Outcome::Skip
        } else {
            Outcome::Frame(events)
        }
    }

    /// `NodeDrain`: the drain completes once nothing runs on the node.
    pub(super) fn node_drain_done(&mut self, id: &str) -> Outcome {
        let busy = self
            .allocs
            .values()
            .any(|a| a.node_id == id && !a.is_terminal());
        if busy {
            return Outcome::Retry;
        }
        let Some(node) = self.node_mut(id) else {
            return Outcome::Skip;
        };
        node.drain_started = None;
        self.touch_node(id, Some(("Node drain complete", "Drain")));
        self.pending.push(Step::NodeEligible(id.to_string()));
        self.node_frame("NodeDrain", id)
    }

    /// `NodeEligibility`: after maintenance the node is made eligible again.
    pub(super) fn node_eligible(&mut self, id: &str) -> Outcome {
        let Some(node) = self.node_mut(id) else {
            return Outcome::Skip;
        };
        node.eligible = true;
        node.busy = false;
        self.touch_node(
            id,
            Some(("Node marked as eligible for scheduling", "Cluster")),
        );
        self.node_frame("NodeEligibility", id)
    }

    /// `NodeStreamEvent`: the node misses its heartbeats and goes down.
    pub(super) fn node_down(&mut self, id: &str) -> Outcome {
        let now = self.now;
        let Some(node) = self.node_mut(id) else {
            return Outcome::Skip;
        };
        if node.status != "ready" {
            return Outcome::Skip;
        }
        node.status = "down";
        node.busy = true;
        node.status_updated_at = now / 1_000_000_000;
        self.touch_node(id, Some(("Node heartbeat missed", "Cluster")));
        self.pending.push(Step::NodeLost(id.to_string()));
        self.node_frame("NodeStreamEvent", id)
    }

    /// `EvaluationUpdated`: evaluations for every job that had work on the lost node.
    pub(super) fn node_lost(&mut self, id: &str) -> Outcome {
        let jobs: BTreeSet<String> = self
            .allocs
            .values()
            .filter(|a| a.node_id == id && !a.is_terminal())
            .map(|a| a.job_id.clone())
            .collect();
        self.pending.push(Step::NodeUp(id.to_string()));
        let mut events = Vec::new();
        for job_id in jobs {
            if let Some(eval) = self.new_eval(&job_id, "node-update", Some(id)) {
                events.push(self.eval_event("EvaluationUpdated", &eval));
                self.pending.push(Step::Schedule(eval.id.clone()));
                self.evals.insert(eval.id.clone(), eval);
            }
        }
        Outcome::Frame(events)
    }

    /// `NodeStreamEvent`: the node comes back.
    pub(super) fn node_up(&mut self, id: &str) -> Outcome {
        let pending_lost = self
            .allocs
            .values()
            .any(|a| a.node_id == id && !a.is_terminal());
        if pending_lost {
            return Outcome::Retry;
        }
        let now = self.now;
        let Some(node) = self.node_mut(id) else {
            return Outcome::Skip;
        };
        node.status = "ready";
        node.busy = false;
        node.status_updated_at = now / 1_000_000_000;
        self.touch_node(id, Some(("Node reregistered by heartbeat", "Cluster")));
        self.node_frame("NodeStreamEvent", id)
    }

    /// A pending evaluation for a job, or `None` if the job is gone.
    pub(super) fn new_eval(
        &mut self,
        job_id: &str,
        triggered_by: &'static str,
        node_id: Option<&str>,
    ) -> Option<Eval> {
        let id = self.uuid();
        let job = self.jobs.iter().find(|j| j.id == job_id)?;
        Some(Eval {
            id,
            namespace: job.namespace,
            job_id: job.id.clone(),
            kind: job.kind,
            priority: job.priority,
            triggered_by,
            job_modify_index: job.job_modify_index,
            node_id: node_id.map(str::to_string),
            deployment_id: None,
            status: "pending",
            status_description: String::new(),
            previous_eval: None,
            blocked_eval: None,
            failed: None,
            queued: Vec::new(),
            create_index: self.index,
            modify_index: self.index,
            create_time: self.now,
            modify_time: self.now,
        })
    }
}
