//! Allocation lifecycles as clients report them, and deployments finishing.

use std::collections::VecDeque;

use super::model::{Alloc, JobKind, TaskEvent, TaskState};
use super::{Generator, Outcome, Step};

/// Restarts a task gets before it fails (the job's restart policy).
const RESTART_ATTEMPTS: u64 = 2;
/// Of 100 stopped jobs, how many an operator purges after they finished.
const PURGE_STOPPED_PERCENT: u8 = 5;
/// Checks of a deployment before it fails on its progress deadline.
const DEPLOYMENT_CHECKS: u32 = 400;

/// How a running task ends up at its next report.
enum Fate {
    Healthy,
    Exits(i64),
    OomKilled,
}

/// Appends a task event, keeping the client's last 10.
fn push_event(state: &mut TaskState, event: TaskEvent) {
    state.events.push_back(event);
    while state.events.len() > 10 {
        state.events.pop_front();
    }
}

/// A `Terminated` event for an exit code, with Nomad's details and display message.
fn terminated(time: i64, exit_code: i64, oom: bool) -> TaskEvent {
    let mut e = TaskEvent::new("Terminated", time, format!("Exit Code: {exit_code}"));
    e.exit_code = exit_code;
    e.details = vec![
        ("exit_code", exit_code.to_string()),
        ("signal", "0".into()),
        ("oom_killed", oom.to_string()),
    ];
    if oom {
        e.message = "OOM Killed".into();
        e.display = format!("Exit Code: {exit_code}, Exit Message: \"OOM Killed\"");
        e.details.push(("exit_message", "OOM Killed".into()));
    }
    e
}

/// Stops every task of an allocation, as the client does for `DesiredStatus: stop`.
fn stop_tasks(a: &mut Alloc, now: i64) {
    if a.task_states.is_empty() {
        a.task_states = a
            .tasks
            .iter()
            .map(|t| (t.name.clone(), new_state()))
            .collect();
    }
    for (_, s) in &mut a.task_states {
        if s.state == "dead" {
            continue;
        }
        if s.state == "running" {
            let mut killing = TaskEvent::new(
                "Killing",
                now,
                "Sent interrupt. Waiting 5s before force killing",
            );
            killing.kill_timeout = 5_000_000_000;
            push_event(s, killing);
            push_event(s, terminated(now + 80_000_000, 0, false));
        }
        push_event(
            s,
            TaskEvent::new("Killed", now + 90_000_000, "Task successfully killed"),
        );
        s.state = "dead";
        s.finished_at = Some(now + 90_000_000);
    }
    a.client = "complete";
    a.client_description = "All tasks have completed";
}

/// A task state before anything happened.
fn new_state() -> TaskState {
    TaskState {
        state: "pending",
        failed: false,
        restarts: 0,
        last_restart: None,
        started_at: None,
        finished_at: None,
        events: VecDeque::new(),
    }
}

impl Generator {
    /// `AllocationUpdated`: the client reports the next step of an allocation's life.
    pub(super) fn client_update(&mut self, id: &str) -> Outcome {
        let (index, now) = (self.index, self.now);
        let node_down =
            |g: &Self, node: &str| g.nodes.iter().any(|n| n.id == node && n.status == "down");
        let Some(a) = self.allocs.get(id) else {
            return Outcome::Skip;
        };
        if a.is_terminal() || node_down(self, &a.node_id) {
            if let Some(a) = self.allocs.get_mut(id) {
                a.step_pending = false;
            }
            return Outcome::Skip;
        }
        let fate = match self.rng.u8(..100) {
            0..=7 => Fate::Exits(1),
            8..=11 => Fate::OomKilled,
            _ => Fate::Healthy,
        };
        let delay = self.rng.u64(10..30);
        let Some(a) = self.allocs.get_mut(id) else {
            return Outcome::Skip;
        };
        a.step_pending = false;
        let mut again = true;
        if a.desired != "run" {
            stop_tasks(a, now);
            again = false;
        } else if a.task_states.is_empty() {
            a.task_states = a
                .tasks
                .iter()
                .map(|t| (t.name.clone(), new_state()))
                .collect();
            for ((_, s), task) in a.task_states.iter_mut().zip(&a.tasks) {
                push_event(
                    s,
                    TaskEvent::new("Received", now, "Task received by client"),
                );
                push_event(
                    s,
                    TaskEvent::new("Task Setup", now + 2_000_000, "Building Task Directory"),
                );
                if task.driver == "docker" {
                    let mut pull = TaskEvent::new(
                        "Driver",
                        now + 40_000_000,
                        format!("Downloading image {}", task.image),
                    );
                    pull.details = vec![("image", task.image.clone())];
                    push_event(s, pull);
                }
            }
        } else if a.task_states.iter().any(|(_, s)| s.state == "pending") {
            for (_, s) in a
                .task_states
                .iter_mut()
                .filter(|(_, s)| s.state == "pending")
            {
                push_event(s, TaskEvent::new("Started", now, "Task started by client"));
                s.state = "running";
                s.started_at.get_or_insert(now);
            }
            a.client = "running";
            a.client_description = "Tasks are running";
        } else {
            let batch = a.kind == JobKind::Batch;
            let Some((_, main)) = a.task_states.first_mut() else {
                return Outcome::Skip;
            };
            match fate {
                Fate::Healthy if batch => {
                    push_event(main, terminated(now, 0, false));
                    main.state = "dead";
                    main.finished_at = Some(now);
                    stop_tasks(a, now);
                    again = false;
                }
                Fate::Healthy => {
                    a.healthy = Some(true);
                    a.health_time = now;
                    again = false;
                }
                Fate::Exits(code) => {
                    push_event(main, terminated(now, code, false));
                    again = restart_or_fail(a, now, delay);
                }
                Fate::OomKilled => {
                    push_event(main, terminated(now, 137, true));
                    again = restart_or_fail(a, now, delay);
                }
            }
        }
        a.modify_index = index;
        a.modify_time = now;
        let done = a.is_terminal();
        if again && !done {
            a.step_pending = true;
            self.pending.push(Step::Client(id.to_string()));
        }
        let Some(a) = self.allocs.get(id) else {
            return Outcome::Skip;
        };
        let event = self.alloc_event("AllocationUpdated", a);
        if done {
            let job_id = a.job_id.clone();
            self.forget_stopped_job(&job_id);
        }
        Outcome::Frame(vec![event])
    }

    /// Once none of a stopped job's allocations is still running, Nomad's
    /// job garbage collection reaps it later, or now and then an operator
    /// purges it first.
    pub(super) fn forget_stopped_job(&mut self, job_id: &str) {
        let stopped = self.jobs.iter().any(|j| j.id == job_id && j.stop);
        let active = self
            .allocs
            .values()
            .any(|a| a.job_id == job_id && !a.is_terminal());
        if !stopped || active {
            return;
        }
        let step = if self.rng.u8(..100) < PURGE_STOPPED_PERCENT {
            Step::JobPurge(job_id.to_string())
        } else {
            Step::JobGc(job_id.to_string())
        };
        self.pending.push(step);
    }

    /// `DeploymentStatusUpdate`: the deployment succeeds once every placed
    /// allocation is healthy, or fails on the first unhealthy one.
    pub(super) fn deployment_done(&mut self, id: &str) -> Outcome {
        let (index, now) = (self.index, self.now);
        let Some(d) = self.deployments.get(id).filter(|d| d.status == "running") else {
            return Outcome::Skip;
        };
        let mut counts = Vec::new();
        for g in &d.groups {
            let mine = || {
                self.allocs
                    .values()
                    .filter(|a| a.deployment_id.as_deref() == Some(id) && a.group == g.name)
            };
            let healthy = mine()
                .filter(|a| a.healthy == Some(true) && a.desired == "run")
                .count() as u64;
            let unhealthy = mine().filter(|a| a.healthy == Some(false)).count() as u64;
            counts.push((healthy, unhealthy));
        }
        let Some(d) = self.deployments.get_mut(id) else {
            return Outcome::Skip;
        };
        d.checks += 1;
        for (g, (healthy, unhealthy)) in d.groups.iter_mut().zip(&counts) {
            g.healthy = *healthy;
            g.unhealthy = *unhealthy;
        }
        let all_healthy = d.groups.iter().all(|g| g.healthy >= g.desired);
        let (status, description) = if d.groups.iter().any(|g| g.unhealthy > 0) {
            ("failed", "Failed due to unhealthy allocations")
        } else if all_healthy {
            ("successful", "Deployment completed successfully")
        } else if d.checks > DEPLOYMENT_CHECKS {
            ("failed", "Failed due to progress deadline")
        } else {
            return Outcome::Retry;
        };
        d.status = status;
        d.status_description = description;
        d.modify_index = index;
        d.modify_time = now;
        let job_id = d.job_id.clone();
        if let Some(job) = self
            .jobs
            .iter_mut()
            .find(|j| j.id == job_id && j.deployment.as_deref() == Some(id))
        {
            job.deployment = None;
        }
        match self.deployments.get(id) {
            Some(d) => Outcome::Frame(vec![self.deployment_event("DeploymentStatusUpdate", d)]),
            None => Outcome::Skip,
        }
    }
}

/// After a task exit: restart within the policy, or fail the task and the allocation.
/// Returns whether the allocation has more to report.
fn restart_or_fail(a: &mut Alloc, now: i64, delay_s: u64) -> bool {
    let Some((_, main)) = a.task_states.first_mut() else {
        return false;
    };
    if main.restarts < RESTART_ATTEMPTS {
        let mut restarting = TaskEvent::new(
            "Restarting",
            now + 1_000_000,
            format!("Task restarting in {delay_s}s"),
        );
        restarting.restart_reason = "Restart within policy";
        restarting.start_delay = delay_s as i64 * 1_000_000_000;
        push_event(main, restarting);
        main.restarts += 1;
        main.last_restart = Some(now);
        main.state = "pending";
        a.client = "pending";
        a.client_description = "No tasks have started";
        return true;
    }
    let mut give_up = TaskEvent::new(
        "Not Restarting",
        now + 1_000_000,
        "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"",
    );
    give_up.fails_task = true;
    give_up.restart_reason = "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"";
    push_event(main, give_up);
    main.state = "dead";
    main.failed = true;
    main.finished_at = Some(now);
    for (_, sibling) in a
        .task_states
        .iter_mut()
        .skip(1)
        .filter(|(_, s)| s.state != "dead")
    {
        let mut killing = TaskEvent::new(
            "Killing",
            now + 2_000_000,
            "Sent interrupt. Waiting 5s before force killing",
        );
        killing.kill_timeout = 5_000_000_000;
        push_event(sibling, killing);
        push_event(
            sibling,
            TaskEvent::new("Killed", now + 60_000_000, "Task successfully killed"),
        );
        sibling.state = "dead";
        sibling.finished_at = Some(now + 60_000_000);
    }
    a.client = "failed";
    a.client_description = "Failed tasks";
    if a.deployment_id.is_some() {
        a.healthy = Some(false);
        a.health_time = now;
    }
    false
}
