//! What a read of a cluster's events asks for: a page of the stream, narrowed.

/// One page of a cluster's events in stream order, for replay and serve.
/// The filters narrow the read; exact Nomad matching (keys against
/// FilterKeys) is the caller's, with [`crate::nomad::Subscription`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PageQuery {
    /// Start after this (index, position); `None` starts at `from_index`.
    pub after: Option<(u64, u32)>,
    /// Lowest index, inclusive.
    pub from_index: u64,
    /// Highest index, inclusive.
    pub to_index: Option<u64>,
    /// Received at or after / before this Unix time in milliseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only these topics; `None` for all.
    pub topics: Option<Vec<String>>,
    /// Only this namespace and the namespace-less events; `None` for all.
    pub namespace: Option<String>,
    /// Only these event types; `None` for all.
    pub types: Option<Vec<String>>,
    /// Only events whose Key is this.
    pub key: Option<String>,
    /// Only events that reference these objects.
    pub refs: Vec<(RefColumn, String)>,
    /// Newest first (then `after` pages backwards).
    pub newest_first: bool,
    pub limit: u32,
}

impl PageQuery {
    /// Reads only raft indexes `first..=last` (`last: None` leaves the end
    /// open), within whatever range was asked for: with the span of a time
    /// window ([`Store::time_span`]), a read of the window goes through
    /// its stretch of the stream instead of the whole cluster.
    pub fn within(&mut self, first: u64, last: Option<u64>) {
        self.from_index = self.from_index.max(first);
        if let Some(last) = last {
            self.to_index = Some(self.to_index.map_or(last, |to| to.min(last)));
        }
    }
}

/// The kind of object an event references, for reading the events that
/// reference one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefColumn {
    Job,
    Alloc,
    Node,
    Eval,
    Deployment,
}
