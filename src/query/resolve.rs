//! ID prefixes, as the Nomad CLI takes them: an exact ID, or a unique prefix
//! of at least [`MIN_PREFIX`] characters; an ambiguous prefix is an error that
//! lists the candidates.

use super::gaps::whole_stream_note;
use super::{QueryError, covers};
use crate::archive::{Cluster, PageQuery};
use crate::store::Store;

/// The shortest prefix accepted.
pub const MIN_PREFIX: usize = 4;
/// Candidates listed for an ambiguous prefix.
const SHOWN: u32 = 10;

/// The full key of `topic` that `given` names.
pub async fn resolve(
    store: &dyn Store,
    cluster: &Cluster,
    topic: &str,
    given: &str,
) -> Result<String, QueryError> {
    let noun = noun(topic);
    // A whole ID is found through the (topic, key) index at once.
    let exact = PageQuery {
        topics: Some(vec![topic.to_owned()]),
        key: Some(given.to_owned()),
        limit: 1,
        ..PageQuery::default()
    };
    if !store.page(cluster, &exact).await?.is_empty() {
        return Ok(given.to_owned());
    }
    if given.chars().count() < MIN_PREFIX {
        let span = store.span(cluster).await?;
        return Err(QueryError::NotFound(format!(
            "no events for {noun} `{given}` ({}); an ID prefix needs at least {MIN_PREFIX} characters{}",
            covers(span),
            whole_stream_note(store, cluster).await?
        )));
    }
    let candidates = store
        .keys_with_prefix(cluster, topic, given, SHOWN + 1)
        .await?;
    match candidates.as_slice() {
        [] => {
            let span = store.span(cluster).await?;
            Err(QueryError::NotFound(format!(
                "no events for {noun} `{given}` ({}){}",
                covers(span),
                whole_stream_note(store, cluster).await?
            )))
        }
        [only] => Ok(only.clone()),
        many => {
            let shown: Vec<&str> = many
                .iter()
                .take(SHOWN as usize)
                .map(String::as_str)
                .collect();
            let more = if many.len() > SHOWN as usize {
                ", …"
            } else {
                ""
            };
            Err(QueryError::Ambiguous(format!(
                "the prefix `{given}` matches several {noun}s: {}{more}; give more characters",
                shown.join(", ")
            )))
        }
    }
}

/// How an object of `topic` is called in messages.
pub fn noun(topic: &str) -> String {
    match topic {
        "Allocation" => "allocation".to_owned(),
        "Evaluation" => "evaluation".to_owned(),
        other => other.to_lowercase(),
    }
}

/// The full ID of the job `given` names: its ID, or a unique prefix; a
/// name that is neither is taken as given, for the answer to say what it
/// found of it (nothing, in which namespace).
pub async fn job(store: &dyn Store, cluster: &Cluster, given: &str) -> Result<String, QueryError> {
    match resolve(store, cluster, "Job", given).await {
        Err(QueryError::NotFound(_)) => Ok(given.to_owned()),
        other => other,
    }
}

/// The full ID of the node `given` names: the name of exactly one node,
/// else its ID or a unique prefix.
pub async fn node(store: &dyn Store, cluster: &Cluster, given: &str) -> Result<String, QueryError> {
    match store.node_ids_named(cluster, given).await?.as_slice() {
        [one] => Ok(one.clone()),
        [] => resolve(store, cluster, "Node", given).await,
        many => Err(QueryError::Ambiguous(format!(
            "several nodes were called `{given}`: {}; give the node ID",
            many.join(", ")
        ))),
    }
}
