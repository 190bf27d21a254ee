//! Statements whose values are bound by number (`?N` on SQLite, `$N` on
//! PostgreSQL), so one value can be used several times, with the planner
//! hints SQLite needs where it has no statistics to choose by. The
//! keyframe and moment statements are written with it, once for both
//! backends.

use super::statement::{Bind, Placeholders, Statement};

/// Values bound by number (`?N` on SQLite, `$N` on PostgreSQL), so a
/// statement can use one several times.
#[derive(Debug)]
pub struct Params {
    style: Placeholders,
    values: Vec<Bind>,
}

impl Params {
    pub fn new(style: Placeholders) -> Self {
        Params {
            style,
            values: Vec::new(),
        }
    }

    /// Binds `value`; returns its placeholder.
    pub fn int(&mut self, value: i64) -> String {
        self.push(Bind::Int(value))
    }

    pub fn push(&mut self, value: Bind) -> String {
        self.values.push(value);
        let n = self.values.len();
        match self.style {
            Placeholders::Question => format!("?{n}"),
            Placeholders::Numbered => format!("${n}"),
        }
    }

    /// SQLite's hint to read events in stream order: without statistics it
    /// could take the key index (led by the topic) through every event of
    /// the topics asked for.
    pub fn stream_order(&self) -> &'static str {
        match self.style {
            Placeholders::Question => " INDEXED BY event_log_stream_order",
            Placeholders::Numbered => "",
        }
    }

    /// SQLite's hint to read the marker changes by time (migration 0028):
    /// it would rather read the window's stretch of the stream by the
    /// table's key.
    pub fn changes_by_time(&self) -> &'static str {
        match self.style {
            Placeholders::Question => " INDEXED BY marker_changes_by_time",
            Placeholders::Numbered => "",
        }
    }

    /// SQLite's unary `+` before a column, which hides the column from its
    /// planner: it then neither reads an index by it nor carries a bound on
    /// it over to the column it is joined with. Nothing on PostgreSQL.
    pub fn hidden(&self) -> &'static str {
        match self.style {
            Placeholders::Question => "+",
            Placeholders::Numbered => "",
        }
    }

    /// SQLite's hint to read events by their time (migration 0011): it
    /// would rather walk the cluster's events in another order.
    pub fn by_time(&self) -> &'static str {
        match self.style {
            Placeholders::Question => " INDEXED BY event_log_by_time",
            Placeholders::Numbered => "",
        }
    }

    /// SQLite's hint to look an object's events up by key: without
    /// statistics it would rather read every event of the index range
    /// through the identity index.
    pub fn by_key(&self) -> &'static str {
        match self.style {
            Placeholders::Question => " INDEXED BY event_log_by_key",
            Placeholders::Numbered => "",
        }
    }

    /// SQLite's hint to read allocations' lives rows by the range of their
    /// last index: without statistics it would walk them from the first,
    /// where those that end in or after a recent window are few.
    pub fn lives_by_last(&self) -> &'static str {
        match self.style {
            Placeholders::Question => " INDEXED BY allocation_lives_by_last",
            Placeholders::Numbered => "",
        }
    }

    /// SQLite's hint to read the lives rows of long-lived allocations by
    /// their last index (migration 0026), which it takes only when a query
    /// states the index's condition.
    pub fn long_lives(&self) -> &'static str {
        match self.style {
            Placeholders::Question => " INDEXED BY allocation_lives_long",
            Placeholders::Numbered => "",
        }
    }

    /// How the latest events of a set of objects (`l`, a handful) are
    /// joined to their rows: SQLite's `CROSS JOIN` keeps `l` the outer
    /// loop. Without statistics its planner would otherwise walk every
    /// event of the cluster and probe `l` for each (seconds at a million
    /// events, and growing with history).
    pub fn join_rows(&self) -> &'static str {
        match self.style {
            Placeholders::Question => "CROSS JOIN",
            Placeholders::Numbered => "JOIN",
        }
    }

    /// `event_log AS e` joined to each row of the set before it by `on`
    /// (every condition on `e`: none is pushed into PostgreSQL's subquery),
    /// an index lookup per row of the set on both backends: SQLite's
    /// `CROSS JOIN` keeps the set the outer loop; on PostgreSQL a `LATERAL`
    /// subquery (kept whole by `OFFSET 0`) is run for each row of the set,
    /// where a join could be planned as a read of every event, from an
    /// estimate of a set it cannot know the size of (a window's
    /// allocations crossing its ends: tens, estimated at tens of
    /// thousands).
    pub fn events_of_each(&self, on: &str) -> String {
        match self.style {
            Placeholders::Question => {
                format!(
                    "{} event_log AS e{} ON {on}",
                    self.join_rows(),
                    self.by_key()
                )
            }
            Placeholders::Numbered => {
                format!(
                    "CROSS JOIN LATERAL (SELECT * FROM event_log AS e WHERE {on} OFFSET 0) AS e"
                )
            }
        }
    }

    pub fn statement(self, sql: String) -> Statement {
        Statement {
            sql,
            binds: self.values,
        }
    }
}
