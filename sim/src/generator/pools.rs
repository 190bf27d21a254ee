//! Node pools an operator creates and updates: the events that carry no time at all.

use super::model::NodePool;
use super::{Generator, Outcome};

/// Pools an operator may create: name and description.
const POOLS: [(&str, &str); 4] = [
    ("gpu", "Nodes with NVIDIA GPUs"),
    ("spot", "Spot instances for batch work"),
    ("edge", "Edge locations"),
    ("pci", "Nodes in PCI DSS scope"),
];
/// Teams named in pool meta.
const OWNERS: [&str; 3] = ["platform", "data", "sre"];

impl Generator {
    /// `NodePoolUpserted`: a new pool, or a change to an existing one's meta
    /// or scheduler algorithm. Nomad's `NodePool` has no time field, so
    /// nothing in this entry says when it happened.
    pub(super) fn node_pool_upsert(&mut self) -> Outcome {
        let index = self.index;
        let create = self.pools.len() < POOLS.len() && (self.pools.is_empty() || self.rng.bool());
        let position = if create {
            let (name, description) = POOLS[self.pools.len()];
            self.pools.push(NodePool {
                name,
                description,
                meta: Vec::new(),
                algorithm: None,
                hash: [0; 32],
                create_index: index,
                modify_index: index,
            });
            self.pools.len() - 1
        } else {
            self.rng.usize(..self.pools.len())
        };
        let owner = OWNERS[self.rng.usize(..OWNERS.len())];
        let spread = self.rng.bool();
        let mut hash = [0; 32];
        self.rng.fill(&mut hash);
        let Some(pool) = self.pools.get_mut(position) else {
            return Outcome::Skip;
        };
        pool.meta = vec![("owner", owner.to_string())];
        pool.algorithm = spread.then_some("spread");
        pool.hash = hash;
        pool.modify_index = index;
        match self.pools.get(position) {
            Some(pool) => Outcome::Frame(vec![self.node_pool_event(pool)]),
            None => Outcome::Skip,
        }
    }
}
