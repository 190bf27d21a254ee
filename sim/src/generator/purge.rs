//! Job purges (`nomad job stop -purge`) and the job garbage collection: the
//! job leaves the state store with its deployments (nomad/state
//! `DeleteJobTxn`); its allocations stay, and the scheduler stops them, as
//! for any job that no longer exists.

use super::{Generator, Outcome, Step};

impl Generator {
    /// `JobDeregistered` with `"Deleted": true`: the job as it was before the
    /// purge, each of its pending evaluations completed by the deletion, and
    /// the deregistration's own pending evaluation.
    ///
    /// Nomad deletes the job's deployments in the same entry and sends
    /// nothing for them; the deregistration's evaluation then stops the
    /// job's allocations ([`Generator::schedule`]).
    /// (Nomad streams the new evaluation as a second frame of the same index;
    /// here it closes the one frame, as in [`Generator::job_register`].)
    pub(super) fn job_purge(&mut self, id: &str) -> Outcome {
        let index = self.index;
        let Some(position) = self.jobs.iter().position(|j| j.id == id) else {
            return Outcome::Skip;
        };
        let Some(mut eval) = self.new_eval(id, "job-deregister", None) else {
            return Outcome::Skip;
        };
        eval.job_modify_index = index;
        let job = self.jobs.remove(position);
        let mut events = vec![self.purged_job_event("JobDeregistered", &job)];
        let evals: Vec<String> = self
            .evals
            .values()
            .filter(|e| e.job_id == id)
            .map(|e| e.id.clone())
            .collect();
        for eval_id in evals {
            // Pending ones are completed by the deletion (which changes only these
            // two fields, not the modify index or time); blocked ones wait in vain.
            if let Some(mut done) = self
                .evals
                .remove(&eval_id)
                .filter(|e| e.status == "pending")
            {
                done.status = "complete";
                done.status_description = format!("job {id} deleted");
                events.push(self.eval_event("JobDeregistered", &done));
            }
        }
        self.deployments.retain(|_, d| d.job_id != id);
        events.push(self.eval_event("JobDeregistered", &eval));
        self.pending.push(Step::Schedule(eval.id.clone()));
        self.evals.insert(eval.id.clone(), eval);
        Outcome::Frame(events)
    }
}

impl Generator {
    /// `JobBatchDeregistered` with `"Deleted": true`: Nomad's core scheduler
    /// reaps a stopped job once its allocations are terminal (`Job.BatchDeregister` with purge, in nomad/core_sched.go),
    /// after its GC threshold; the state store's deletion of the job is
    /// streamed like a purge's, under the batch's type, with no evaluation.
    pub(super) fn job_gc(&mut self, id: &str) -> Outcome {
        let Some(position) = self.jobs.iter().position(|j| j.id == id && j.stop) else {
            return Outcome::Skip;
        };
        if self
            .allocs
            .values()
            .any(|a| a.job_id == id && !a.is_terminal())
        {
            return Outcome::Retry;
        }
        let job = self.jobs.remove(position);
        self.allocs.retain(|_, a| a.job_id != id);
        self.deployments.retain(|_, d| d.job_id != id);
        Outcome::Frame(vec![self.purged_job_event("JobBatchDeregistered", &job)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Generator;
    use super::*;

    /// A generator some way into its history, with running jobs and allocations.
    fn busy() -> Generator {
        let mut g = Generator::new(3);
        g.frames(2000);
        g
    }

    /// The job with the most allocations in the model.
    fn busiest_job(g: &Generator) -> String {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for a in g.allocs.values() {
            *counts.entry(a.job_id.as_str()).or_default() += 1;
        }
        let best = counts.into_iter().max_by_key(|(_, n)| *n);
        best.map(|(id, _)| id.to_string())
            .expect("a job with allocations")
    }

    #[test]
    fn a_purged_job_leaves_the_model_with_its_deployments_and_its_allocations_are_stopped() {
        let mut g = busy();
        let id = busiest_job(&g);
        g.index += 1;
        let Outcome::Frame(events) = g.job_purge(&id) else {
            panic!("the purge produced no entry");
        };
        assert_eq!(events[0].topic, "Job");
        assert!(events[0].json.contains(r#""Deleted":true"#));
        assert!(events.iter().all(|e| e.event_type == "JobDeregistered"));
        assert!(g.jobs.iter().all(|j| j.id != id));
        assert!(
            g.allocs
                .values()
                .any(|a| a.job_id == id && !a.is_terminal())
        );
        assert!(g.deployments.values().all(|d| d.job_id != id));
        assert!(
            g.evals
                .values()
                .filter(|e| e.job_id == id)
                .all(|e| e.triggered_by == "job-deregister"),
            "only the deregistration's own evaluation is left to run"
        );
        'history: for frame in g.frames(3000) {
            for e in &frame.events {
                if e.topic == "Job" && e.key == id {
                    break 'history; // a new job took the name
                }
                // The scheduler stops the allocations; nothing is placed.
                let stops = e.topic == "Allocation" && e.json.contains(r#""DesiredStatus":"stop""#);
                assert!(
                    e.topic == "Evaluation" || stops || e.filter_keys.first() != Some(&id),
                    "{} after the purge: {}",
                    e.topic,
                    e.json
                );
            }
        }
        assert!(
            g.allocs.values().all(|a| a.job_id != id || a.is_terminal()),
            "an allocation of the purged job still runs"
        );
    }

    #[test]
    fn the_deregistrations_evaluation_completes_though_the_job_is_gone() {
        let mut g = busy();
        let id = busiest_job(&g);
        g.index += 1;
        let Outcome::Frame(events) = g.job_purge(&id) else {
            panic!("the purge produced no entry");
        };
        let eval = events.last().map(|e| e.key.clone()).expect("an evaluation");
        let completed = g.frames(3000).into_iter().any(|f| {
            f.events.iter().any(|e| {
                e.key == eval
                    && e.event_type == "EvaluationUpdated"
                    && e.json.contains(r#""Status":"complete""#)
            })
        });
        assert!(completed, "evaluation `{eval}` never completed");
    }

    #[test]
    fn purging_a_job_that_is_gone_does_nothing() {
        let mut g = busy();
        assert!(matches!(g.job_purge("no-such-job"), Outcome::Skip));
    }
}
