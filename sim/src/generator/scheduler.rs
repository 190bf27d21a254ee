//! The scheduler's plans: stop what a job no longer wants, place what is missing, roll out deployments.

use super::model::{Alloc, Deployment, DeploymentGroup, JobKind};
use super::{Generator, Outcome, SimEvent, Step};

impl Generator {
    /// `PlanResult`: the scheduler stops what is no longer wanted and places what is missing.
    pub(super) fn schedule(&mut self, eval_id: &str) -> Outcome {
        let (index, now) = (self.index, self.now);
        let Some(eval) = self.evals.get(eval_id).filter(|e| e.status == "pending") else {
            return Outcome::Skip;
        };
        let Some(job_pos) = self.jobs.iter().position(|j| j.id == eval.job_id) else {
            // The job was purged: its allocations are stopped, as a stopped
            // job's are, and the evaluation completes.
            let job_id = eval.job_id.clone();
            self.pending.push(Step::EvalDone(eval_id.to_string()));
            return self.stop_orphans(&job_id);
        };
        let job_id = eval.job_id.clone();
        let may_fail = eval.triggered_by != "queued-allocs";
        let registered = eval.triggered_by == "job-register";
        let mut events = Vec::new();

        // Stop what the current job version no longer wants.
        let (stop, version) = (self.jobs[job_pos].stop, self.jobs[job_pos].version);
        let (stopped, mut replaced) = self.stop_unwanted(&job_id, stop, Some(version));
        events.extend(stopped);

        // What is missing per group.
        let job = &self.jobs[job_pos];
        let mut needs: Vec<(usize, u64)> = Vec::new();
        for (g, group) in job.groups.iter().enumerate() {
            let have = self
                .allocs
                .values()
                .filter(|a| a.job_id == job_id && a.group == group.name && a.job_version == version)
                .filter(|a| {
                    (a.desired == "run" && !a.is_terminal())
                        || (a.kind == JobKind::Batch && a.client == "complete")
                })
                .count() as u64;
            let want = if stop { 0 } else { group.count };
            if want > have {
                needs.push((g, want - have));
            }
        }
        let nodes: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].status == "ready" && self.nodes[i].eligible)
            .collect();
        let total: u64 = needs.iter().map(|(_, n)| n).sum();
        let mut failed = None;
        if let Some(&(g, n)) = needs.last() {
            let group = job.groups[g].name.clone();
            if nodes.is_empty() {
                failed = Some((group, n));
            } else if may_fail && total >= 2 && self.rng.u8(..100) < 8 {
                failed = Some((group, 1));
            }
        }

        // A service rollout gets a deployment for the new version.
        let mut deployment = job.deployment.clone().filter(|d| {
            self.deployments
                .get(d)
                .is_some_and(|d| d.status == "running" && d.job_version == version)
        });
        if deployment.is_none() && job.kind == JobKind::Service && !stop && total > 0 && registered
        {
            if let Some(old) = job
                .deployment
                .clone()
                .and_then(|d| self.deployments.get_mut(&d))
                .filter(|d| d.status == "running")
            {
                old.status = "cancelled";
                old.status_description = "Cancelled due to newer version of job";
                old.modify_index = index;
                old.modify_time = now;
            }
            if let Some(old) = job
                .deployment
                .as_ref()
                .and_then(|d| self.deployments.get(d))
                .filter(|d| d.status == "cancelled" && d.modify_index == index)
            {
                events.push(self.deployment_event("PlanResult", old));
            }
            let id = self.uuid();
            let job = &self.jobs[job_pos];
            let groups = job
                .groups
                .iter()
                .map(|g| DeploymentGroup {
                    name: g.name.clone(),
                    desired: g.count,
                    placed: 0,
                    healthy: 0,
                    unhealthy: 0,
                })
                .collect();
            self.deployments.insert(
                id.clone(),
                Deployment {
                    id: id.clone(),
                    namespace: job.namespace,
                    job_id: job_id.clone(),
                    job_version: version,
                    job_modify_index: job.job_modify_index,
                    job_create_index: job.create_index,
                    priority: job.priority,
                    status: "running",
                    status_description: "Deployment is running",
                    groups,
                    checks: 0,
                    create_index: index,
                    modify_index: index,
                    create_time: now,
                    modify_time: now,
                },
            );
            self.jobs[job_pos].deployment = Some(id.clone());
            self.pending.push(Step::DeploymentDone(id.clone()));
            deployment = Some(id);
        }

        // Place the missing allocations.
        for (g, mut n) in needs {
            if let Some((group, k)) = &failed {
                if *group == self.jobs[job_pos].groups[g].name {
                    n -= (*k).min(n);
                }
            }
            for _ in 0..n {
                let Some(&node) = nodes.get(self.rng.usize(..nodes.len().max(1))) else {
                    break;
                };
                let previous = replaced
                    .iter()
                    .position(|(group, _)| *group == self.jobs[job_pos].groups[g].name)
                    .map(|i| replaced.swap_remove(i).1);
                let alloc = self.new_alloc(
                    job_pos,
                    g,
                    node,
                    eval_id,
                    deployment.clone(),
                    previous.clone(),
                );
                if let Some(old) = previous.and_then(|p| self.allocs.get_mut(&p)) {
                    old.next = Some(alloc.id.clone());
                }
                if let Some(d) = deployment
                    .as_ref()
                    .and_then(|d| self.deployments.get_mut(d))
                {
                    if let Some(dg) = d.groups.iter_mut().find(|dg| dg.name == alloc.group) {
                        dg.placed += 1;
                    }
                }
                events.push(self.alloc_event("PlanResult", &alloc));
                self.pending.push(Step::Client(alloc.id.clone()));
                self.allocs.insert(alloc.id.clone(), alloc);
            }
        }
        if let Some(d) = deployment
            .as_ref()
            .and_then(|d| self.deployments.get_mut(d))
        {
            d.modify_index = index;
            d.modify_time = now;
        }
        if let Some(d) = deployment.as_ref().and_then(|d| self.deployments.get(d)) {
            events.push(self.deployment_event("PlanResult", d));
        }
        if !stop && total > 0 {
            self.jobs[job_pos].status = "running";
        }
        if let Some(e) = self.evals.get_mut(eval_id) {
            e.deployment_id = deployment;
            e.failed = failed;
            e.queued = self.jobs[job_pos]
                .groups
                .iter()
                .map(|g| (g.name.clone(), 0))
                .collect();
        }
        self.pending.push(Step::EvalDone(eval_id.to_string()));
        if stop {
            // A stopped job with nothing left running (none placed, or all
            // lost just now) is collected like one whose last one finished.
            self.forget_stopped_job(&job_id);
        }
        if events.is_empty() {
            Outcome::Skip
        } else {
            Outcome::Frame(events)
        }
    }

    /// `PlanResult` for a job that no longer exists (Nomad's scheduler reads
    /// a missing job as stopped): every allocation still wanted is stopped.
    fn stop_orphans(&mut self, job_id: &str) -> Outcome {
        let (events, _) = self.stop_unwanted(job_id, true, None);
        if events.is_empty() {
            Outcome::Skip
        } else {
            Outcome::Frame(events)
        }
    }

    /// Stops the job's allocations it no longer wants: all of them when it
    /// is stopped (or gone), else those of another version than `version`,
    /// those being migrated and those on a node that is down (lost, as is
    /// one already being stopped there). Returns their `PlanResult` events
    /// and the (group, ID) of those to replace.
    fn stop_unwanted(
        &mut self,
        job_id: &str,
        stop: bool,
        version: Option<u64>,
    ) -> (Vec<SimEvent>, Vec<(String, String)>) {
        let (index, now) = (self.index, self.now);
        let down: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.status == "down")
            .map(|n| n.id.clone())
            .collect();
        let stopping: Vec<String> = self
            .allocs
            .values()
            .filter(|a| a.job_id == job_id && !a.is_terminal())
            .filter(|a| {
                let on_down = down.contains(&a.node_id);
                let unwanted =
                    stop || a.migrate || on_down || version.is_some_and(|v| a.job_version != v);
                (a.desired == "run" && unwanted) || (a.desired != "run" && on_down)
            })
            .map(|a| a.id.clone())
            .collect();
        let (mut events, mut replaced) = (Vec::new(), Vec::new());
        for id in &stopping {
            let Some(a) = self.allocs.get_mut(id) else {
                continue;
            };
            let was_stopping = a.desired != "run";
            a.desired = "stop";
            a.modify_index = index;
            a.alloc_modify_index = index;
            a.modify_time = now;
            if down.contains(&a.node_id) {
                mark_lost(a);
                if !was_stopping {
                    replaced.push((a.group.clone(), a.id.clone()));
                }
            } else if a.migrate {
                a.desired_description = "alloc is being migrated";
                replaced.push((a.group.clone(), a.id.clone()));
            } else if stop {
                a.desired_description = "alloc not needed due to job update";
            } else {
                a.desired_description = "alloc is being updated due to job update";
            }
            if !a.is_terminal() && !a.step_pending {
                a.step_pending = true;
                self.pending.push(Step::Client(id.clone()));
            }
            if let Some(a) = self.allocs.get(id) {
                events.push(self.alloc_event("PlanResult", a));
            }
        }
        (events, replaced)
    }

    /// A new pending allocation of group `g` of job `job_pos` on node `node`.
    fn new_alloc(
        &mut self,
        job_pos: usize,
        g: usize,
        node: usize,
        eval_id: &str,
        deployment: Option<String>,
        previous: Option<String>,
    ) -> Alloc {
        let id = self.uuid();
        let port_value = self.rng.u64(20000..32000);
        let job = &self.jobs[job_pos];
        let group = &job.groups[g];
        let used: Vec<&str> = self
            .allocs
            .values()
            .filter(|a| a.job_id == job.id && a.group == group.name && !a.is_terminal())
            .map(|a| a.name.as_str())
            .collect();
        let slot = (0..)
            .find(|i| !used.contains(&format!("{}.{}[{i}]", job.id, group.name).as_str()))
            .unwrap_or(0);
        let node = &self.nodes[node];
        Alloc {
            id,
            namespace: job.namespace,
            name: format!("{}.{}[{slot}]", job.id, group.name),
            job_id: job.id.clone(),
            job_version: job.version,
            kind: job.kind,
            group: group.name.clone(),
            tasks: group.tasks.clone(),
            port: group.port.map(|(label, to)| (label, to, port_value)),
            node_id: node.id.clone(),
            node_name: node.name.clone(),
            nodes_evaluated: self.nodes.len() as u64,
            eval_id: eval_id.to_string(),
            deployment_id: deployment,
            desired: "run",
            desired_description: "",
            migrate: false,
            client: "pending",
            client_description: "",
            task_states: Vec::new(),
            healthy: None,
            health_time: 0,
            previous,
            next: None,
            step_pending: true,
            create_index: self.index,
            modify_index: self.index,
            alloc_modify_index: self.index,
            create_time: self.now,
            modify_time: self.now,
        }
    }
}

/// An allocation whose node is down is lost, as Nomad's scheduler marks it.
fn mark_lost(a: &mut Alloc) {
    a.client = "lost";
    a.desired_description = "alloc is lost since its node is down";
    a.client_description = "alloc is lost since its node is down";
}
