//! Answers from the archive: the raw events behind a question ([`events`]),
//! an object's history as a timeline of transitions ([`timeline`], built by
//! [`describe`]), and any object as Nomad last described it at a point in
//! time ([`state`]), or the whole cluster at that time ([`snapshot`]);
//! the lists asked for after an incident (failed allocations, deployments,
//! blocked evaluations, jobs at a moment: [`lists`]).
//! IDs may be given as prefixes, as with the Nomad CLI ([`resolve`]); every
//! answer says which recorded gaps it overlaps ([`gaps`]); states and
//! snapshots after a gap use, and label, what Nomad's lists said then
//! ([`reconstructed`]); [`render`] writes table, JSON or NDJSON to any writer.
//!
//! Each answer is read from the store (`fetch`), built from what was read
//! without any I/O (`build`, unit-tested on hand-made events and gaps), and
//! written out (`render`).

pub mod change;
pub mod deployment_health;
pub mod describe;
pub mod events;
pub mod gaps;
pub mod json;
pub mod lists;
pub mod payload;
pub mod reconstructed;
pub mod render;
pub mod resolve;
pub mod sink;
pub mod snapshot;
pub mod state;
pub mod summary;
pub mod table;
pub mod timeline;

/// Why a query has no answer, or a wrong one: the CLI maps `NotFound` to
/// exit code 1 ("nothing found") and the rest to 2.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot write the answer: {0}")]
    Output(std::io::Error),
}

/// The archive's extent, for "not found" messages.
pub fn covers(span: Option<(u64, u64)>) -> String {
    match span {
        Some((first, last)) => format!("archive covers index {first}–{last}"),
        None => "the archive holds no events for this cluster".to_owned(),
    }
}

/// Topic names as Nomad spells them, whatever case the user typed; the
/// nouns the commands use (`alloc`, `eval`) name their topics too.
pub fn canonical_topic(topic: &str) -> String {
    const NOUNS: [(&str, &str); 4] = [
        ("alloc", "Allocation"),
        ("allocs", "Allocation"),
        ("eval", "Evaluation"),
        ("evals", "Evaluation"),
    ];
    if let Some((_, name)) = NOUNS.iter().find(|(n, _)| n.eq_ignore_ascii_case(topic)) {
        return (*name).to_owned();
    }
    const KNOWN: [&str; 14] = [
        "Job",
        "Evaluation",
        "Allocation",
        "Deployment",
        "Node",
        "NodePool",
        "Service",
        "ACLToken",
        "ACLPolicy",
        "ACLRole",
        "ACLAuthMethod",
        "ACLBindingRule",
        "HostVolume",
        "CSIVolume",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(topic))
        .map_or_else(|| topic.to_owned(), |k| (*k).to_owned())
}

#[cfg(test)]
mod tests {
    use super::canonical_topic;

    #[test]
    fn the_commands_nouns_name_their_topics() {
        let names = [
            "alloc",
            "EVAL",
            "node",
            "job",
            "deployment",
            "allocation",
            "Custom",
        ];
        let topics: Vec<String> = names.iter().map(|n| canonical_topic(n)).collect();
        assert_eq!(
            topics,
            [
                "Allocation",
                "Evaluation",
                "Node",
                "Job",
                "Deployment",
                "Allocation",
                "Custom"
            ]
        );
    }
}
