//! The queries `bench history` times, and the objects they ask about, picked
//! from the archive through the CLI's own JSON output so that every run on
//! the same archive asks the same questions.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::child::tail;

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

/// What the queries ask about: the newest moment of the archive and live
/// objects at it.
#[derive(Debug, Default)]
pub struct Subjects {
    /// The archive's checkpoint: "now" for snapshots and states.
    pub last_index: u64,
    /// The live job with the most live allocations: (namespace, ID).
    pub job: Option<(String, String)>,
    /// The live node with the most live allocations.
    pub node: Option<String>,
    /// The most recently described allocation of that job.
    pub alloc: Option<String>,
    /// An hour before the newest time the snapshot shows, RFC 3339.
    pub hour_before_newest: Option<String>,
}

/// One object of `query snapshot --output ndjson`.
struct Live {
    topic: String,
    key: String,
    namespace: String,
    index: u64,
    time: String,
    job: Option<String>,
    node: Option<String>,
}

impl Live {
    fn parse(line: &str) -> Option<Live> {
        let v: Value = serde_json::from_str(line).ok()?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Some(Live {
            topic: text(&v["Topic"])?,
            key: text(&v["Key"])?,
            namespace: text(&v["Namespace"]).unwrap_or_default(),
            index: v["Index"].as_u64().unwrap_or(0),
            time: text(&v["Time"]).unwrap_or_default(),
            job: text(&v["Object"]["JobID"]),
            node: text(&v["Object"]["NodeID"]),
        })
    }
}

/// Reads the snapshot at `last_index` and picks the subjects from it.
pub fn pick(bin: &Path, url: &str, last_index: u64) -> anyhow::Result<Subjects> {
    let out = Command::new(bin.join("nomad-chronicle"))
        .args(["--db", url, "query", "snapshot", "--output", "ndjson"])
        .args(["--at-index", &last_index.to_string()])
        .output()
        .context("cannot run `nomad-chronicle query snapshot`")?;
    if !out.status.success() {
        bail!(
            "`query snapshot --output ndjson` failed ({}):\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr))
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let live: Vec<Live> = text.lines().filter_map(Live::parse).collect();
    Ok(choose(&live, last_index))
}

/// The busiest job and node, that job's newest allocation, and the hour
/// before the newest time; ties go to the lowest ID.
fn choose(live: &[Live], last_index: u64) -> Subjects {
    let allocs: Vec<&Live> = live.iter().filter(|l| l.topic == "Allocation").collect();
    let busiest = |topic: &str, count: &dyn Fn(&Live) -> usize| {
        live.iter()
            .filter(|l| l.topic == topic)
            .map(|l| {
                (
                    std::cmp::Reverse(count(l)),
                    (l.namespace.clone(), l.key.clone()),
                )
            })
            .min()
            .map(|(_, id)| id)
    };
    let job = busiest("Job", &|j| {
        allocs
            .iter()
            .filter(|a| a.namespace == j.namespace && a.job.as_deref() == Some(&j.key))
            .count()
    });
    let node = busiest("Node", &|n| {
        allocs
            .iter()
            .filter(|a| a.node.as_deref() == Some(&n.key))
            .count()
    })
    .map(|(_, id)| id);
    let newest_alloc = |of_job: bool| {
        allocs
            .iter()
            .filter(|a| {
                !of_job
                    || job
                        .as_ref()
                        .is_some_and(|(ns, id)| &a.namespace == ns && a.job.as_ref() == Some(id))
            })
            .max_by(|a, b| a.index.cmp(&b.index).then(b.key.cmp(&a.key)))
            .map(|a| a.key.clone())
    };
    let alloc = newest_alloc(true).or_else(|| newest_alloc(false));
    let newest = live.iter().map(|l| l.time.as_str()).max().unwrap_or("");
    Subjects {
        last_index,
        job,
        node,
        alloc,
        hour_before_newest: hour_before(newest),
    }
}

/// The RFC 3339 time an hour before `time`.
fn hour_before(time: &str) -> Option<String> {
    let at = humantime::parse_rfc3339_weak(time).ok()?;
    let earlier = at.checked_sub(Duration::from_secs(3600))?;
    Some(humantime::format_rfc3339_millis(earlier).to_string())
}

/// The subjects, for the report.
pub fn describe(s: &Subjects) -> String {
    let mut parts = vec![format!("at index `{}`", s.last_index)];
    if let Some((ns, job)) = &s.job {
        parts.push(format!("job `{job}` in `{ns}`"));
    }
    let named = [
        ("node", &s.node),
        ("alloc", &s.alloc),
        ("since", &s.hour_before_newest),
    ];
    for (what, value) in named {
        if let Some(value) = value {
            parts.push(format!("{what} `{value}`"));
        }
    }
    parts.join(", ")
}
