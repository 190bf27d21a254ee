//! Job purges (`nomad job stop -purge`): the job leaves the state store, and
//! its allocations and deployments go with it without a word on the stream.

use super::{Generator, Outcome, Step};

impl Generator {
    /// `JobDeregistered` with `"Deleted": true`: the job as it was before the
    /// purge, each of its pending evaluations completed by the deletion, and
    /// the deregistration's own pending evaluation.
    ///
    /// Nomad deletes the job's allocations and deployments in the same
    /// entry and sends nothing for them: they simply stop being updated.
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
        let mut events = vec![self.purged_job_event(&job)];
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
        self.allocs.retain(|_, a| a.job_id != id);
        self.deployments.retain(|_, d| d.job_id != id);
        events.push(self.eval_event("JobDeregistered", &eval));
        self.pending.push(Step::Schedule(eval.id.clone()));
        self.evals.insert(eval.id.clone(), eval);
        Outcome::Frame(events)
    }
}
