//! Object IDs as the archive stores them: each ID (an event's key, the job,
//! node, evaluation and deployment it references) once in the `names` table,
//! and events refer to it by integer (migration 0007, docs/schema.md).
//!
//! A writer resolves IDs to integers through a bounded cache of the IDs it
//! met recently; only the others are looked up (and added) in the database,
//! in the transaction that stores the batch. Entries of `names` are never
//! changed or deleted, so a cached integer stays right; the ones a failed
//! transaction added are forgotten with it, never cached.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

use super::StoreError;
use super::rows::EventRow;

/// IDs and their integers.
type Map<K> = HashMap<K, i64, RandomState>;

/// IDs remembered per generation; two generations are kept, so between
/// `GENERATION` and twice that many of the most recently used.
const GENERATION: usize = 32_768;

/// Recently used IDs and their integers: a two-generation cache (a lookup
/// that hits the older generation moves the entry to the newer one; when
/// the newer one is full it becomes the older one).
#[derive(Debug, Default)]
pub struct NameCache {
    current: Map<Box<str>>,
    previous: Map<Box<str>>,
}

impl NameCache {
    pub fn get(&mut self, name: &str) -> Option<i64> {
        if let Some(&id) = self.current.get(name) {
            return Some(id);
        }
        let (name, id) = self.previous.remove_entry(name)?;
        self.put(name, id);
        Some(id)
    }

    fn put(&mut self, name: Box<str>, id: i64) {
        if self.current.len() >= GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(name, id);
    }

    /// Remembers IDs that are now committed.
    pub fn remember(&mut self, resolved: Map<&str>) {
        for (name, id) in resolved {
            self.put(name.into(), id);
        }
    }
}

/// An event's references, as integers.
#[derive(Debug, Clone, Copy)]
pub struct RowRefs {
    pub key: i64,
    pub job: Option<i64>,
    pub node: Option<i64>,
    pub eval: Option<i64>,
    pub deployment: Option<i64>,
}

/// Resolving one batch's IDs: what the cache knew, and what the database
/// must be asked for.
pub struct BatchNames<'a> {
    /// IDs resolved for this batch, beyond the cache.
    pub resolved: Map<&'a str>,
    /// IDs neither the cache nor `resolved` knows yet, each once.
    pub missing: Vec<&'a str>,
    /// Each row's IDs (in [`names`] order) as the cache knew them, so that
    /// the cache is asked once per ID and row.
    cached: Vec<[Option<i64>; 5]>,
}

impl<'a> BatchNames<'a> {
    /// Collects the IDs of `rows` that the cache does not know.
    pub fn new(cache: &mut NameCache, rows: &[EventRow<'a>]) -> Self {
        let mut missing = Vec::new();
        let mut seen: HashSet<&'a str, RandomState> = HashSet::default();
        let mut cached = Vec::with_capacity(rows.len());
        for row in rows {
            let mut ids = [None; 5];
            for (id, name) in ids.iter_mut().zip(names(row)) {
                let Some(name) = name else { continue };
                *id = cache.get(name);
                if id.is_none() && seen.insert(name) {
                    missing.push(name);
                }
            }
            cached.push(ids);
        }
        // A stable order: two writers adding overlapping names lock them
        // in the same order. (A batch adds its details' texts after its IDs,
        // in order too, so two PostgreSQL writers that each add as an ID
        // what the other adds as a text can still deadlock; PostgreSQL ends
        // one, and its writer stores the batch again.)
        missing.sort_unstable();
        BatchNames {
            resolved: Map::with_capacity_and_hasher(missing.len(), RandomState::default()),
            missing,
            cached,
        }
    }

    /// Resolving `texts` (task events' texts, migration 0024) rather than
    /// rows' IDs: those the cache knows are resolved already.
    pub fn of_texts(cache: &mut NameCache, mut texts: Vec<&'a str>) -> Self {
        texts.sort_unstable();
        texts.dedup();
        let mut resolved = Map::default();
        texts.retain(|text| match cache.get(text) {
            Some(id) => {
                resolved.insert(*text, id);
                false
            }
            None => true,
        });
        BatchNames {
            resolved,
            missing: texts,
            cached: Vec::new(),
        }
    }

    /// The integer of `name`, one of the texts this was built from, once
    /// every one is resolved.
    pub fn id(&self, name: &str) -> Result<i64, StoreError> {
        self.resolved
            .get(name)
            .copied()
            .ok_or_else(|| unresolved(name))
    }

    /// The IDs still unresolved.
    pub fn unresolved(&self) -> Vec<&'a str> {
        self.missing
            .iter()
            .copied()
            .filter(|n| !self.resolved.contains_key(n))
            .collect()
    }

    /// Records what the database said an ID's integer is.
    pub fn found(&mut self, name: &str, id: i64) {
        if let Ok(at) = self.missing.binary_search(&name) {
            self.resolved.insert(self.missing[at], id);
        }
    }

    /// The integers of the references of `rows` (the rows this was built
    /// from), once every ID is resolved.
    pub fn refs(&self, rows: &[EventRow<'_>]) -> Result<Vec<RowRefs>, StoreError> {
        rows.iter()
            .zip(&self.cached)
            .map(|(row, cached)| {
                let names = names(row);
                let id = |i: usize| -> Result<Option<i64>, StoreError> {
                    match names[i] {
                        None => Ok(None),
                        Some(name) => cached[i]
                            .or_else(|| self.resolved.get(name).copied())
                            .map(Some)
                            .ok_or_else(|| unresolved(name)),
                    }
                };
                Ok(RowRefs {
                    key: id(0)?.ok_or_else(|| unresolved(&row.event.key))?,
                    job: id(1)?,
                    node: id(2)?,
                    eval: id(3)?,
                    deployment: id(4)?,
                })
            })
            .collect()
    }
}

/// The IDs a row stores: its key, then the job, node, evaluation and
/// deployment it references.
fn names<'a>(row: &EventRow<'a>) -> [Option<&'a str>; 5] {
    let ev = row.event;
    [
        Some(ev.key.as_str()),
        ev.job_id.as_deref(),
        ev.node_id.as_deref(),
        ev.eval_id.as_deref(),
        ev.deployment_id.as_deref(),
    ]
}

/// An ID that should have been resolved was not: the database did not
/// return the row it was asked to add.
pub fn unresolved(name: &str) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(format!(
        "the ID `{name}` was neither found nor added in `names`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_recently_used_ids_across_generations() {
        let mut cache = NameCache::default();
        let add = |cache: &mut NameCache, prefix: &str, n: usize| {
            for i in 0..n {
                let name = format!("{prefix}{i}");
                cache.remember(Map::from_iter([(name.as_str(), i as i64)]));
            }
        };
        cache.remember(Map::from_iter([("old", -1)]));
        add(&mut cache, "a", GENERATION);
        // "old" and the first `a`s are the older generation now; using
        // "old" brings it back into the newer one.
        assert_eq!(cache.get("old"), Some(-1));
        add(&mut cache, "b", GENERATION);
        assert_eq!(cache.get("old"), Some(-1));
        assert_eq!(cache.get("a0"), None, "not used for two generations");
    }
}
