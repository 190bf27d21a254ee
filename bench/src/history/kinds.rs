//! The queries `bench history` times: one entry per kind, with the CLI
//! arguments that ask it about the archive's [`Subjects`].

use anyhow::Context;

use super::subjects::Subjects;

/// One kind of query: its name (for `--only`), how the table shows it, and
/// its arguments after `nomad-chronicle --db URL query`; `None` when the
/// archive has nothing for it to ask about.
pub struct Kind {
    pub name: &'static str,
    pub shown: &'static str,
    pub args: fn(&Subjects) -> Option<Vec<String>>,
}

/// Every query kind, in the table's order. Add a row here to time another
/// query; each takes the arguments that exist on the CLI it is built with.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "snapshot",
        shown: "`query snapshot`, newest moment, whole cluster",
        args: |s| {
            Some(strings(&[
                "snapshot",
                "--at-index",
                &s.last_index.to_string(),
            ]))
        },
    },
    Kind {
        name: "snapshot-job",
        shown: "`query snapshot --job J`",
        args: |s| {
            let (ns, job) = s.job.as_ref()?;
            let at = s.last_index.to_string();
            Some(strings(&[
                "snapshot",
                "--at-index",
                &at,
                "--job",
                job,
                "--namespace",
                ns,
            ]))
        },
    },
    Kind {
        name: "snapshot-node",
        shown: "`query snapshot --node N`",
        args: |s| {
            let at = s.last_index.to_string();
            Some(strings(&[
                "snapshot",
                "--at-index",
                &at,
                "--node",
                s.node.as_ref()?,
            ]))
        },
    },
    Kind {
        name: "state-alloc",
        shown: "`query state Allocation A`",
        args: |s| {
            let at = s.last_index.to_string();
            Some(strings(&[
                "state",
                "Allocation",
                s.alloc.as_ref()?,
                "--at-index",
                &at,
            ]))
        },
    },
    Kind {
        name: "state-job",
        shown: "`query state Job J`",
        args: |s| {
            let (ns, job) = s.job.as_ref()?;
            let at = s.last_index.to_string();
            Some(strings(&[
                "state",
                "Job",
                job,
                "--at-index",
                &at,
                "--namespace",
                ns,
            ]))
        },
    },
    Kind {
        name: "job",
        shown: "`query job J` (timeline)",
        args: |s| {
            let (ns, job) = s.job.as_ref()?;
            Some(strings(&["job", job, "--namespace", ns]))
        },
    },
    Kind {
        name: "alloc",
        shown: "`query alloc A` (timeline)",
        args: |s| Some(strings(&["alloc", s.alloc.as_ref()?])),
    },
    Kind {
        name: "node",
        shown: "`query node N` (timeline)",
        args: |s| Some(strings(&["node", s.node.as_ref()?])),
    },
    Kind {
        name: "events-indexes",
        shown: "`query events --from-index` the newest 1,000 indexes",
        args: |s| {
            let from = s.last_index.saturating_sub(999).to_string();
            Some(strings(&["events", "--from-index", &from]))
        },
    },
    Kind {
        name: "events-since",
        shown: "`query events --since` the newest hour",
        args: |s| {
            Some(strings(&[
                "events",
                "--since",
                s.hour_before_newest.as_ref()?,
            ]))
        },
    },
];

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// The kinds `--only` names (all of them when it names none).
pub fn selected(only: &[String]) -> anyhow::Result<Vec<&'static Kind>> {
    if only.is_empty() {
        return Ok(KINDS.iter().collect());
    }
    only.iter()
        .map(|name| {
            KINDS.iter().find(|k| k.name == name).with_context(|| {
                let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
                format!("unknown query kind `{name}`: use {}", names.join(", "))
            })
        })
        .collect()
}
