//! Job stories: registrations and new versions, stops, evaluations and the scheduler's plans.

use super::model::{Group, Job, JobKind, Task};
use super::{Generator, Outcome, Step};

/// Service jobs: name, image (a tag is added), port label, target port.
const SERVICES: [(&str, &str, u64); 10] = [
    ("web", "nginx", 80),
    ("api", "ghcr.io/acme/api", 8080),
    ("checkout", "ghcr.io/acme/checkout", 8080),
    ("payments", "ghcr.io/acme/payments", 8443),
    ("search", "opensearchproject/opensearch", 9200),
    ("redis", "redis", 6379),
    ("auth", "ghcr.io/acme/auth", 9000),
    ("gateway", "traefik", 8080),
    ("notifications", "ghcr.io/acme/notify", 8080),
    ("grafana", "grafana/grafana", 3000),
];
/// Batch jobs: name and image.
const BATCHES: [(&str, &str); 6] = [
    ("etl-nightly", "ghcr.io/acme/etl"),
    ("db-backup", "postgres"),
    ("thumbnailer", "ghcr.io/acme/thumbs"),
    ("report-gen", "ghcr.io/acme/reports"),
    ("ml-train", "pytorch/pytorch"),
    ("cache-warmer", "ghcr.io/acme/warmer"),
];
/// Namespaces jobs live in; `default` is the busiest.
const NAMESPACES: [&str; 5] = ["default", "default", "platform", "analytics", "platform"];
/// Teams named in job meta.
const TEAMS: [&str; 4] = ["storefront", "payments", "data", "sre"];

impl Generator {
    /// A random `MAJOR.MINOR.PATCH` tag.
    fn tag(&mut self) -> String {
        format!(
            "{}.{}.{}",
            self.rng.u8(1..4),
            self.rng.u8(0..30),
            self.rng.u8(0..20)
        )
    }

    /// A fresh job spec at version 0.
    fn new_job(&mut self) -> Job {
        let kind = if self.rng.u8(..10) < 7 {
            JobKind::Service
        } else {
            JobKind::Batch
        };
        let namespace = NAMESPACES[self.rng.usize(..NAMESPACES.len())];
        let (base, image, port) = match kind {
            JobKind::Service => {
                let (name, image, to) = SERVICES[self.rng.usize(..SERVICES.len())];
                (name, image, Some(("http", to)))
            }
            JobKind::Batch => {
                let (name, image) = BATCHES[self.rng.usize(..BATCHES.len())];
                (name, image, None)
            }
        };
        let mut id = base.to_string();
        let mut n = 1;
        // Unique across namespaces, so the generator can look jobs up by ID alone.
        while self.jobs.iter().any(|j| j.id == id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        let groups = (0..if self.rng.u8(..10) < 8 { 1 } else { 2 })
            .map(|g| {
                let mut tasks = vec![Task {
                    name: if g == 0 {
                        base.to_string()
                    } else {
                        format!("{base}-worker")
                    },
                    driver: "docker",
                    image: format!("{image}:{}", self.tag()),
                    args: match kind {
                        JobKind::Batch => vec![
                            "--date".into(),
                            "2026-01-01".into(),
                            "--workers".into(),
                            self.rng.u8(2..9).to_string(),
                        ],
                        JobKind::Service => Vec::new(),
                    },
                    cpu: [100, 250, 500, 1000][self.rng.usize(..4)],
                    memory_mb: [128, 256, 512, 1024][self.rng.usize(..4)],
                    env: vec![
                        ("LOG_LEVEL", "info".into()),
                        ("REGION", "eu-west-1".into()),
                        ("PORT", "${NOMAD_PORT_http}".into()),
                    ],
                }];
                if self.rng.u8(..10) < 3 {
                    tasks.push(Task {
                        name: "log-shipper".into(),
                        driver: "docker",
                        image: "grafana/alloy:v1.5.0".into(),
                        args: vec!["run".into(), "/local/config.alloy".into()],
                        cpu: 50,
                        memory_mb: 64,
                        env: Vec::new(),
                    });
                }
                Group {
                    name: if g == 0 {
                        base.to_string()
                    } else {
                        "worker".to_string()
                    },
                    count: match kind {
                        JobKind::Service => self.rng.u64(1..5),
                        JobKind::Batch => self.rng.u64(1..4),
                    },
                    tasks,
                    port: if g == 0 { port } else { None },
                }
            })
            .collect();
        let team = TEAMS[self.rng.usize(..TEAMS.len())];
        let sha = format!("{:010x}", self.rng.u64(..1 << 40));
        Job {
            id,
            namespace,
            kind,
            priority: [50, 50, 50, 70, 30][self.rng.usize(..5)],
            datacenters: if self.rng.bool() {
                vec!["dc1"]
            } else {
                vec!["dc1", "dc2"]
            },
            groups,
            meta: vec![("team", team.to_string()), ("git_sha", sha)],
            version: 0,
            status: "pending",
            stop: false,
            submit_time: self.now,
            create_index: self.index,
            modify_index: self.index,
            job_modify_index: self.index,
            deployment: None,
        }
    }

    /// `JobRegistered`: a new job, or a new version of an existing one, and its evaluation.
    pub(super) fn job_register(&mut self, existing: Option<&str>) -> Outcome {
        let id = match existing {
            Some(id) => {
                let (index, now) = (self.index, self.now);
                let change = self.rng.u8(..10);
                let tag = self.tag();
                let count = self.rng.u64(1..5);
                let sha = format!("{:010x}", self.rng.u64(..1 << 40));
                let Some(job) = self.jobs.iter_mut().find(|j| j.id == id && !j.stop) else {
                    return Outcome::Skip;
                };
                if change < 6 {
                    for task in job.groups.iter_mut().flat_map(|g| g.tasks.iter_mut()) {
                        if let Some((image, _)) = task
                            .image
                            .rsplit_once(':')
                            .filter(|_| task.name != "log-shipper")
                        {
                            task.image = format!("{image}:{tag}");
                        }
                    }
                } else if change < 8 {
                    if let Some(group) = job.groups.first_mut() {
                        group.count = count;
                    }
                }
                job.meta = vec![job.meta[0].clone(), ("git_sha", sha)];
                job.version += 1;
                job.submit_time = now;
                job.modify_index = index;
                job.job_modify_index = index;
                job.id.clone()
            }
            None => {
                let job = self.new_job();
                let id = job.id.clone();
                self.jobs.push(job);
                id
            }
        };
        self.register_entry(&id, "JobRegistered", "job-register")
    }

    /// `JobDeregistered`: `nomad job stop` (without purge).
    pub(super) fn job_deregister(&mut self, id: &str) -> Outcome {
        let (index, now) = (self.index, self.now);
        let Some(job) = self.jobs.iter_mut().find(|j| j.id == id && !j.stop) else {
            return Outcome::Skip;
        };
        job.stop = true;
        job.version += 1;
        job.submit_time = now;
        job.modify_index = index;
        job.job_modify_index = index;
        self.register_entry(id, "JobDeregistered", "job-deregister")
    }

    /// A Job event plus a new pending evaluation, both of `event_type`.
    ///
    /// Nomad commits the evaluation in a second transaction at the same raft
    /// index, so it streams two frames with one `Index`; the generator keeps
    /// both events in one frame, as its indexes strictly increase.
    fn register_entry(&mut self, job_id: &str, event_type: &str, trigger: &'static str) -> Outcome {
        let Some(eval) = self.new_eval(job_id, trigger, None) else {
            return Outcome::Skip;
        };
        let Some(job) = self.jobs.iter().find(|j| j.id == job_id) else {
            return Outcome::Skip;
        };
        let events = vec![
            self.job_event(event_type, job),
            self.eval_event(event_type, &eval),
        ];
        self.pending.push(Step::Schedule(eval.id.clone()));
        self.evals.insert(eval.id.clone(), eval);
        Outcome::Frame(events)
    }

    /// `AllocationUpdateDesiredStatus`: `nomad alloc stop` on one allocation.
    pub(super) fn alloc_stop(&mut self, id: &str) -> Outcome {
        match self.allocs.get(id) {
            Some(a) if a.desired == "run" && !a.is_terminal() && !a.migrate => {
                self.mark_for_migration(&[id.to_string()], "alloc-stop", None)
            }
            _ => Outcome::Skip,
        }
    }

    /// `EvaluationUpdated`: the evaluation completes, with a blocked follow-up if placements failed.
    pub(super) fn eval_done(&mut self, eval_id: &str) -> Outcome {
        let (index, now) = (self.index, self.now);
        let Some(mut eval) = self.evals.remove(eval_id) else {
            return Outcome::Skip;
        };
        eval.status = "complete";
        eval.modify_index = index;
        eval.modify_time = now;
        let mut events = Vec::new();
        if let Some((group, n)) = eval.failed.clone() {
            if let Some(mut blocked) = self.new_eval(&eval.job_id, eval.triggered_by, None) {
                blocked.status = "blocked";
                blocked.status_description = "created to place remaining allocations".into();
                blocked.previous_eval = Some(eval.id.clone());
                blocked.queued = vec![(group.clone(), n)];
                eval.blocked_eval = Some(blocked.id.clone());
                eval.queued = vec![(group, n)];
                events.push(self.eval_event("EvaluationUpdated", &eval));
                events.push(self.eval_event("EvaluationUpdated", &blocked));
                self.pending.push(Step::Unblock(blocked.id.clone()));
                self.evals.insert(blocked.id.clone(), blocked);
                return Outcome::Frame(events);
            }
        }
        events.push(self.eval_event("EvaluationUpdated", &eval));
        Outcome::Frame(events)
    }

    /// `EvaluationUpdated`: capacity freed up, so the blocked evaluation is requeued.
    pub(super) fn unblock(&mut self, eval_id: &str) -> Outcome {
        let (index, now) = (self.index, self.now);
        let Some(eval) = self.evals.get_mut(eval_id) else {
            return Outcome::Skip;
        };
        eval.status = "pending";
        eval.status_description.clear();
        eval.triggered_by = "queued-allocs";
        eval.modify_index = index;
        eval.modify_time = now;
        self.pending.push(Step::Schedule(eval_id.to_string()));
        match self.evals.get(eval_id) {
            Some(e) => Outcome::Frame(vec![self.eval_event("EvaluationUpdated", e)]),
            None => Outcome::Skip,
        }
    }
}
