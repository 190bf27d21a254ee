//! What the web timeline's lanes read of a time window without decoding
//! a single event, from the details stored beside the events (migration
//! 0015): each allocation of the window summed up in one row (its first
//! event, its last client status, when it ended), in order of its first
//! event, then the window's Job and Deployment events or its Node events
//! ([`Others`]) one row each, in stream order. Two statements
//! ([`statements`]), each in the order an index gives or over one row per
//! allocation, rather than one sorted union; written once for both
//! backends. A window's allocations come from their lives rows
//! (migration 0022, [`super::lives`]), in [`PARTS`] statements; those
//! thinner than a pixel of the page are then counted by the database per
//! lane and time bucket, in the statement that reads them (one read of the
//! archive per allocation, however an ingester changes the lives rows
//! meanwhile: [`parts`]), rather than returned one row each.

mod markers;
mod others;
mod parts;
mod slots;

use self::parts::{PARTS, share};
use super::keyframe::Params;
use super::lives;
use super::statement::{Placeholders, Statement};
use super::to_i64;

/// The stretch of a cluster's stream a window reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneWindow {
    /// Raft indexes read, inclusive (from [`super::Store::time_span`]).
    pub from_index: u64,
    pub to_index: u64,
    /// Nomad's time window, `[since, until)` in Unix ms.
    pub since: i64,
    pub until: i64,
    /// Read the allocations whose every event lies in the window from
    /// their lives rows rather than summing their events (the cheaper way
    /// for every width measured; finding the allocations that cross its
    /// ends reads the lives rows that end in it or within [`LONG_LIFE`]
    /// indexes after it, and those of the long lives that end after it).
    pub by_lives: bool,
    /// The topics besides Allocation the lanes are drawn from, and so
    /// whether the lanes are per job ([`Others::Markers`]) or per node.
    pub others: Others,
    /// How the page's pixels cut the window, for the lives rows thinner
    /// than one of them to be counted instead of read and the markers to
    /// be thinned; `None`: every event is read.
    pub fit: Option<Fit>,
}

/// The page's time axis a window is fitted to: an allocation whose bar
/// would be shorter than a pixel is counted in the bucket where it starts
/// on its lane, as `web::lanes` counts the allocations it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Pixels of the time axis.
    pub width: u32,
    /// The time buckets (`web::lanes::Grid`): the first starts at `origin`
    /// (Unix ms, at or before the window's start), each `bucket_ms` long.
    pub origin: i64,
    pub bucket_ms: i64,
    /// The window's starting moment: only allocations whose first event
    /// comes after this raft index are counted (those of the moment are
    /// drawn from its start), and only changes after it are markers (the
    /// moment's versions are where the page starts from).
    pub after_index: u64,
}

/// What the lanes draw besides allocations, by how they are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    /// Lanes per job: its versions and deployments (Job and Deployment
    /// events).
    Markers,
    /// Lanes per node: its names, down and drain periods (Node events).
    Nodes,
}

/// One event of a window, or one allocation of it, by the details stored
/// beside its events. Which columns are set depends on its topic.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LaneRow {
    /// The event's place; an allocation's first event in the window.
    pub raft_index: i64,
    pub position: i32,
    pub topic: String,
    pub namespace: String,
    /// The event's key: the object's ID.
    pub key: String,
    /// The job and node it concerns (an allocation's).
    pub job_id: Option<String>,
    pub node_id: Option<String>,
    /// Unix ms by Nomad's clock (or receipt, for an event without a time).
    pub event_at: i64,
    /// An allocation's client status (its last in the window), a
    /// deployment's or a node's status.
    pub status: Option<String>,
    /// When an allocation whose last status is terminal got there: its
    /// first terminal event after its last other one in the window.
    pub ended_at: Option<i64>,
    /// An allocation's NodeName, a node's Name.
    pub node_name: Option<String>,
    /// An allocation's TaskGroup.
    pub task_group: Option<String>,
    /// A job's Version, a deployment's JobVersion.
    pub version: Option<i64>,
    /// A node's SchedulingEligibility and Drain.
    pub eligibility: Option<String>,
    pub drain: Option<bool>,
    /// A job's version or a deployment's status the database found
    /// changed and thinned ([`LaneWindow::fit`]): the number of earlier
    /// changes within its bucket it stands for. `None` on every other row.
    pub hidden: Option<i64>,
    /// On a row of allocations counted rather than read ([`Fit`]): the
    /// bucket their bars start in and how many they are, all of one lane
    /// (`namespace` and `job_id` name a job's, `node_id` and `node_name` a
    /// node's; the others are empty). Its `raft_index` and `event_at` are
    /// the earliest first event among them.
    pub bucket: Option<i64>,
    pub count: Option<i64>,
}

/// The columns of a [`LaneRow`] that is neither a thinned marker nor a
/// count.
const NOT_COUNTED: &str =
    "CAST(NULL AS BIGINT) AS hidden, CAST(NULL AS BIGINT) AS bucket, CAST(NULL AS BIGINT) AS count";

/// The statements [`super::Store::lane_rows`] reads one after the other,
/// each later one started while those before it are read
/// ([`super::ahead`]), so that the database works on them at once: the
/// window's allocations, one row each in order of their first event in
/// it (read from their lives rows in [`PARTS`] statements, each of a share
/// of the allocations), then its [`Others`] events in stream order.
pub fn statements(cluster_id: i64, window: &LaneWindow, style: Placeholders) -> Vec<Statement> {
    let mut statements: Vec<Statement> = if window.by_lives {
        (0..PARTS)
            .map(|part| allocations(cluster_id, window, style, part))
            .collect()
    } else {
        vec![from_events(cluster_id, window, style)]
    };
    statements.push(others::statement(cluster_id, window, style));
    statements
}

/// The bound values and conditions a statement's parts share.
struct Bounds {
    p: Params,
    c: String,
    /// The window's raft indexes, inclusive.
    lo: String,
    hi: String,
    since: String,
    until: String,
    /// The window's events, on alias `e`.
    within: String,
    /// The lives rows (alias `l`) of the statement's share of the
    /// allocations ([`PARTS`]).
    share: String,
}

impl Bounds {
    /// The bounds of a statement reading the allocations of `part`, or
    /// every allocation (`None`).
    fn new(cluster_id: i64, window: &LaneWindow, style: Placeholders, part: Option<i64>) -> Self {
        let mut p = Params::new(style);
        let c = p.int(cluster_id);
        let lo = p.int(to_i64(window.from_index));
        let hi = p.int(to_i64(window.to_index));
        let (since, until) = (p.int(window.since), p.int(window.until));
        // SQLite would rather walk the index by time than the stretch of
        // the stream: `+` hides the time from its planner.
        let plus = p.hidden();
        let within = format!(
            "e.cluster_id = {c} AND e.raft_index >= {lo} AND e.raft_index <= {hi} \
             AND {plus}e.event_at >= {since} AND {plus}e.event_at < {until}"
        );
        let share = match part {
            Some(part) => share(&mut p, window, part),
            None => "1 = 1".to_owned(),
        };
        Bounds {
            p,
            c,
            lo,
            hi,
            since,
            until,
            within,
            share,
        }
    }
}

/// The window's allocations of `part` ([`PARTS`]), one row each in order
/// of their first event in it: those whose every event lies in it as
/// their lives row (migration 0022) has them, but for those counted
/// ([`counted_rows`]), the others (crossing an end of the window, or
/// inexact) summed from their events in it ([`from_events`]).
fn allocations(cluster_id: i64, window: &LaneWindow, style: Placeholders, part: i64) -> Statement {
    let mut b = Bounds::new(cluster_id, window, style, Some(part));
    let c = b.c.clone();
    let whole = whole(&b);
    let (read, counted) = match usable_fit(window) {
        Some(fit) => {
            let thin = counted(&mut b, window, &fit);
            (
                format!("{whole} AND NOT ({thin})"),
                format!(" UNION ALL {}", counted_rows(&mut b, window, &fit, &thin)),
            )
        }
        None => (whole.clone(), String::new()),
    };
    let by_last = b.p.lives_by_last();
    let crossing = crossing(&mut b, window);
    let lived = format!(
        "SELECT l.first_index AS raft_index, l.first_position AS position, \
           'Allocation' AS topic, l.namespace, \
           (SELECT k.name FROM names AS k WHERE k.id = l.key_ref) AS key, j.name AS job_id, \
           n.name AS node_id, l.first_at AS event_at, {} AS status, {} AS ended_at, \
           l.node_name, l.task_group, CAST(NULL AS BIGINT) AS version, \
           CAST(NULL AS TEXT) AS eligibility, CAST(NULL AS BOOLEAN) AS drain, \
           {NOT_COUNTED} \
         FROM allocation_lives AS l{by_last} \
         LEFT JOIN names AS j ON j.id = l.job_ref \
         LEFT JOIN names AS n ON n.id = l.node_ref \
         WHERE l.cluster_id = {c} AND {} AND {read}",
        lives::status_name("l.last_status"),
        ended("l", &b),
        b.share,
    );
    let summed = summed_rows(&mut b, Some(&crossing));
    b.p.statement(format!(
        "{lived} UNION ALL {summed}{counted} ORDER BY raft_index, position"
    ))
}

/// Raft indexes from an allocation's first event to its last from which
/// its life is long: its lives row is then in the index of migration 0026,
/// whose condition says the same number.
const LONG_LIFE: i64 = 16_384;

/// The allocations of the window whose lives row is not whole in it
/// (`key_ref, namespace`), to be summed from their events in it: those
/// ending in its stretch of the stream, and those starting at or before
/// its last index and ending after it. The latter are found without
/// reading every lives row that ends after the window: a life shorter than
/// [`LONG_LIFE`] ends within that many indexes after the window, and the
/// longer ones have an index of their own (migration 0026).
fn crossing(b: &mut Bounds, window: &LaneWindow) -> String {
    // The last index a short life crossing the window's end may end at,
    // bound as a value so that the sum cannot overflow in the database.
    let reach =
        b.p.int(to_i64(window.to_index).saturating_add(LONG_LIFE - 1));
    let (c, lo, hi, share) = (&b.c, &b.lo, &b.hi, &b.share);
    let (by_last, long) = (b.p.lives_by_last(), b.p.long_lives());
    let whole = whole(b);
    let span = "l.last_index - l.first_index";
    format!(
        "SELECT l.key_ref, l.namespace FROM allocation_lives AS l{by_last} \
         WHERE l.cluster_id = {c} AND l.last_index >= {lo} AND l.last_index <= {hi} \
           AND {share} AND NOT ({whole}) \
         UNION ALL SELECT l.key_ref, l.namespace FROM allocation_lives AS l{by_last} \
         WHERE l.cluster_id = {c} AND l.last_index > {hi} \
           AND l.last_index <= {reach} AND l.first_index <= {hi} \
           AND {span} < {LONG_LIFE} AND {share} \
         UNION ALL SELECT l.key_ref, l.namespace FROM allocation_lives AS l{long} \
         WHERE l.cluster_id = {c} AND l.last_index > {hi} AND l.first_index <= {hi} \
           AND {span} >= {LONG_LIFE} AND {share}"
    )
}

/// The allocations of the window counted rather than read
/// ([`LaneWindow::fit`]), one row per lane (job or node, as
/// [`LaneWindow::others`] lays them out) and time bucket: of those whose
/// lives row lies wholly in the window, the ones thinner than a pixel
/// (`counted`, the condition [`counted`] writes). The lane's job or node
/// name is looked up row by row: joined, PostgreSQL merged the whole of
/// `names` (139,000 rows at 1.2M events) with the few thousand counts, a
/// cost that grew with the history.
fn counted_rows(b: &mut Bounds, window: &LaneWindow, fit: &Fit, counted: &str) -> String {
    let (whole, c) = (whole(b), b.c.clone());
    let bucket = bucket(b, fit, "l.first_at");
    let lane = CountedLane::of(window.others, &bucket);
    let by_last = b.p.lives_by_last();
    format!(
        "SELECT v.first_index AS raft_index, 0 AS position, 'Allocation' AS topic, {}, \
           v.first_at AS event_at, \
           CAST(NULL AS TEXT) AS status, CAST(NULL AS BIGINT) AS ended_at, {}, \
           CAST(NULL AS TEXT) AS task_group, CAST(NULL AS BIGINT) AS version, \
           CAST(NULL AS TEXT) AS eligibility, CAST(NULL AS BOOLEAN) AS drain, \
           CAST(NULL AS BIGINT) AS hidden, v.bucket, v.count \
         FROM (SELECT {}, {bucket} AS bucket, COUNT(*) AS count, \
                 MIN(l.first_index) AS first_index, MIN(l.first_at) AS first_at \
               FROM allocation_lives AS l{by_last} \
               WHERE l.cluster_id = {c} AND {} AND {whole} AND {counted} \
               GROUP BY {}) AS v",
        lane.names, lane.node_name, lane.kept, b.share, lane.groups
    )
}

/// What a row of counted allocations keeps of its lane: the job's
/// namespace and ID on a lane per job, the node's ID and name on a lane
/// per node, and nothing else (the page lays a count out by its lane
/// alone), so that the rows the database sorts to group them are narrow.
struct CountedLane {
    /// What the rows are grouped by: integers first, as the sort that
    /// groups them compares its first key most, and integers faster.
    groups: String,
    /// The grouped rows' columns that name the lane.
    kept: &'static str,
    /// The answer's `namespace`, `key`, `job_id` and `node_id`.
    names: &'static str,
    /// The answer's `node_name`.
    node_name: &'static str,
}

impl CountedLane {
    fn of(others: Others, bucket: &str) -> Self {
        match others {
            Others::Markers => CountedLane {
                groups: format!("l.job_ref, {bucket}, l.namespace"),
                kept: "l.namespace AS namespace, l.job_ref AS job_ref",
                names: "v.namespace, '' AS key, \
                        (SELECT j.name FROM names AS j WHERE j.id = v.job_ref) AS job_id, \
                        CAST(NULL AS TEXT) AS node_id",
                node_name: "CAST(NULL AS TEXT) AS node_name",
            },
            Others::Nodes => CountedLane {
                groups: format!("l.node_ref, {bucket}"),
                kept: "l.node_ref AS node_ref, MIN(NULLIF(l.node_name, '')) AS node_name",
                names: "'' AS namespace, '' AS key, CAST(NULL AS TEXT) AS job_id, \
                        (SELECT n.name FROM names AS n WHERE n.id = v.node_ref) AS node_id",
                node_name: "v.node_name",
            },
        }
    }
}

/// The lives rows (alias `l`) whose every event lies in the window.
fn whole(b: &Bounds) -> String {
    format!(
        "l.first_index >= {lo} AND l.last_index >= {lo} AND l.last_index <= {hi} \
         AND l.inexact = 0 AND l.min_at >= {since} AND l.max_at < {until}",
        lo = b.lo,
        hi = b.hi,
        since = b.since,
        until = b.until
    )
}

/// Of the lives rows wholly in the window (alias `l`), those counted: the
/// allocations placed after the window's starting moment whose bar, from
/// their first event to their terminal status or the window's end, is
/// shorter than a pixel (its length times the pixels under the window's).
/// The length is the lives row's `settled_ms` (migration 0030) where the
/// database could tell it from the row, as for nearly every allocation;
/// else it is worked out here.
fn counted(b: &mut Bounds, window: &LaneWindow, fit: &Fit) -> String {
    let after = b.p.int(to_i64(fit.after_index));
    let width = b.p.int(i64::from(fit.width));
    let span = b.p.int(span(window));
    let end = format!(
        "CASE WHEN {} THEN COALESCE({}, l.first_at) ELSE {} END",
        lives::is_terminal("l.last_status"),
        ended("l", b),
        b.until
    );
    format!(
        "l.first_index > {after} AND l.min_at > {} \
         AND CASE WHEN l.settled_ms IS NOT NULL THEN l.settled_ms * {width} < {span} \
           ELSE ({end} - l.first_at) * {width} < {span} END",
        b.since
    )
}

/// The bucket of `fit` the time `at` falls in, counted from the first: for
/// a time at or after the window's start (so at or after the first
/// bucket's), where dividing rounds down.
fn bucket(b: &mut Bounds, fit: &Fit, at: &str) -> String {
    let origin = b.p.int(fit.origin);
    let bucket_ms = b.p.int(fit.bucket_ms.max(1));
    format!("({at} - {origin}) / {bucket_ms}")
}

/// The window's length in ms, at least 1.
fn span(window: &LaneWindow) -> i64 {
    window.until.saturating_sub(window.since).max(1)
}

/// The window's fit, when the sums it takes cannot overflow: a length
/// within the window times the pixels, a time less the first bucket's
/// start.
fn usable_fit(window: &LaneWindow) -> Option<Fit> {
    window.fit.filter(|f| {
        span(window).checked_mul(i64::from(f.width)).is_some()
            && window.since.checked_sub(f.origin).is_some()
            && window.until.checked_sub(f.origin).is_some()
    })
}

/// Every allocation of the window summed from its events in it, one row
/// each in order of its first event there.
fn from_events(cluster_id: i64, window: &LaneWindow, style: Placeholders) -> Statement {
    let mut b = Bounds::new(cluster_id, window, style, None);
    let summed = summed_rows(&mut b, None);
    b.p.statement(format!("{summed} ORDER BY raft_index, position"))
}

/// When an allocation `g` (alias) whose last status is terminal got there:
/// its first terminal event after its last other one. When every terminal
/// event comes after the last other one (as Nomad sends them), that is
/// the earliest terminal event, known from the sums; otherwise its events
/// in the window are looked up again by its key.
fn ended(g: &str, b: &Bounds) -> String {
    let (c, since, until) = (&b.c, &b.since, &b.until);
    let by_key = b.p.by_key();
    let terminal = lives::is_terminal(&format!("{g}.last_status"));
    let terminal_names = lives::terminal();
    let again = format!(
        "(SELECT MIN(COALESCE(x.event_at, x.received_at)) FROM event_log AS x{by_key} \
          JOIN allocation_details AS xd ON xd.cluster_id = x.cluster_id \
            AND xd.raft_index = x.raft_index AND xd.position = x.position \
          WHERE x.topic = 'Allocation' AND x.key_ref = {g}.key_ref AND x.cluster_id = {c} \
            AND x.raft_index > {g}.live_index AND x.raft_index <= {g}.last_index \
            AND xd.client_status IN {terminal_names} \
            AND x.event_at >= {since} AND x.event_at < {until})"
    );
    format!(
        "CASE WHEN NOT ({terminal}) THEN CAST(NULL AS BIGINT) \
           WHEN {g}.live_index IS NULL OR {g}.first_terminal > {g}.live_index \
           THEN {g}.terminal_at ELSE {again} END"
    )
}

/// Allocations of the window summed from their events in it, one row
/// each: every one, or those `keys` (a statement selecting `key_ref,
/// namespace`) names, whose events are then looked up by key. Its first
/// event gives the start, its last the client status; its task group and
/// node name are the same in each event.
fn summed_rows(b: &mut Bounds, keys: Option<&str>) -> String {
    let (c, within) = (&b.c, &b.within);
    let join = b.p.join_rows();
    let source = match keys {
        None => "event_log AS e".to_owned(),
        Some(keys) => format!(
            "({keys}) AS w {}",
            b.p.events_of_each(&format!(
                "e.topic = 'Allocation' AND e.key_ref = w.key_ref AND e.cluster_id = {c} \
                 AND e.namespace = w.namespace AND {within}"
            ))
        ),
    };
    let number = lives::status_number("d.client_status");
    let terminal = lives::terminal();
    format!(
        "SELECT g.first_index AS raft_index, f.position, f.topic, g.namespace, \
           k.name AS key, j.name AS job_id, n.name AS node_id, \
           COALESCE(f.event_at, f.received_at) AS event_at, \
           {} AS status, {} AS ended_at, \
           g.node_name, g.task_group, CAST(NULL AS BIGINT) AS version, \
           CAST(NULL AS TEXT) AS eligibility, CAST(NULL AS BOOLEAN) AS drain, \
           {NOT_COUNTED} \
         FROM (SELECT e.key_ref, e.namespace, MIN(e.job_ref) AS job_ref, \
                 MIN(e.node_ref) AS node_ref, MIN(dn.name) AS node_name, \
                 MIN(dg.name) AS task_group, MIN(e.raft_index) AS first_index, \
                 MAX(e.raft_index) AS last_index, \
                 MAX(e.raft_index * 8 + {number}) AS last_status, \
                 MAX(CASE WHEN d.client_status IN {terminal} THEN NULL \
                     ELSE e.raft_index END) AS live_index, \
                 MIN(CASE WHEN d.client_status IN {terminal} THEN e.raft_index END) \
                   AS first_terminal, \
                 MIN(CASE WHEN d.client_status IN {terminal} \
                     THEN COALESCE(e.event_at, e.received_at) END) AS terminal_at \
               FROM {source} \
               JOIN allocation_details AS d ON d.cluster_id = e.cluster_id \
                 AND d.raft_index = e.raft_index AND d.position = e.position \
               LEFT JOIN names AS dn ON dn.id = d.node_name_ref \
               LEFT JOIN names AS dg ON dg.id = d.task_group_ref \
               WHERE {within} AND e.topic = 'Allocation' \
               GROUP BY e.key_ref, e.namespace) AS g \
         {join} event_log AS f ON f.cluster_id = {c} AND f.raft_index = g.first_index \
           AND f.topic = 'Allocation' AND f.namespace = g.namespace AND f.key_ref = g.key_ref \
         JOIN names AS k ON k.id = g.key_ref \
         LEFT JOIN names AS j ON j.id = g.job_ref \
         LEFT JOIN names AS n ON n.id = g.node_ref",
        lives::status_name("g.last_status"),
        ended("g", b)
    )
}

#[cfg(test)]
mod tests {
    use super::{Fit, LONG_LIFE, LaneWindow, Others, statements};
    use crate::store::statement::Placeholders;

    /// Every column of `allocation_lives` the window's allocations are
    /// read with (alias `l`) is in the index SQLite reads them by (migration
    /// 0030) or in the table's key, so the rows are read from the index
    /// alone: a column added to the statement needs adding there too.
    #[test]
    fn the_lives_index_holds_every_column_a_window_reads() {
        let window = LaneWindow {
            from_index: 10,
            to_index: 1_000,
            since: 1_000,
            until: 2_000,
            by_lives: true,
            others: Others::Markers,
            fit: Some(Fit {
                width: 1_000,
                origin: 0,
                bucket_ms: 4,
                after_index: 9,
            }),
        };
        let statements = statements(1, &window, Placeholders::Question);
        let key = ["cluster_id", "key_ref", "namespace"];
        for allocations in &statements[..statements.len() - 1] {
            let migration = include_str!("../../migrations/sqlite/0030_settled_lives.sql");
            let index = &migration[migration.find("CREATE INDEX").expect("an index")..];
            for column in allocations.sql.split("l.").skip(1) {
                let column: String = column
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                assert!(
                    key.contains(&column.as_str()) || index.contains(&column),
                    "`l.{column}` is not in the index: {index}"
                );
            }
        }
    }

    /// The lives rows' `settled_ms` (migration 0030) is set for the lives
    /// whose last status is one the statements take as terminal.
    #[test]
    fn a_settled_life_is_one_whose_last_status_is_terminal() {
        let terminal = super::lives::is_terminal("last_status");
        let regular = "(live_index IS NULL OR first_terminal > live_index)";
        for migration in [
            include_str!("../../migrations/sqlite/0030_settled_lives.sql"),
            include_str!("../../migrations/postgres/0030_settled_lives.sql"),
        ] {
            let settled = migration.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                settled.contains(&format!("CASE WHEN {terminal} AND {regular}")),
                "{migration}"
            );
        }
    }

    /// The index of long lives (migration 0026) is on the condition
    /// `crossing` states: with another number SQLite refuses the statement
    /// and PostgreSQL reads the lives without the index.
    #[test]
    fn the_index_of_long_lives_holds_the_lives_crossing_reads() {
        let condition = format!("WHERE last_index - first_index >= {LONG_LIFE};");
        for migration in [
            include_str!("../../migrations/sqlite/0026_long_lives.sql"),
            include_str!("../../migrations/postgres/0026_long_lives.sql"),
        ] {
            assert!(migration.contains(&condition), "{migration}");
        }
    }
}
