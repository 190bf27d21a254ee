//! The objects of a cluster at a moment, for `query snapshot`: the newest
//! [keyframe](super::keyframe) at or before it, overridden by the latest
//! event of each object after it (or after the start of the window of
//! terminal allocations shown, when that is earlier). Written once for both
//! backends; each streams the rows ([`super::Store::moment_objects`]).

use futures_util::stream::{BoxStream, Stream, StreamExt};

use super::blocks::{self, Loaded, ROWS_PER_LOAD};
use super::dictionaries::{Dictionaries, Source};
use super::filter::event_columns;
use super::keyframe::{self, Keyframe, OBJECT_TOPICS, Params, Run};
use super::records::EventRecord;
use super::statement::{Bind, Placeholders, Statement};
use super::terminal_counts;
use super::{StoreError, to_i64, to_u64};
use crate::archive::{ArchivedEvent, Cluster, RefColumn};
use crate::nomad::stamps::Presence;

/// The moment asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The state after every event up to this raft index.
    Index(u64),
    /// The state at this time by Nomad's clock (Unix ms): after the event
    /// with the newest time at or before it, and every event before that
    /// one in the stream.
    Time(i64),
}

/// A snapshot's question to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentQuery {
    pub point: Point,
    /// Terminal allocations whose last change is at most this long (ms)
    /// before the moment are shown; `None`: every one, ever (history is
    /// then read from its start).
    pub terminal_within: Option<i64>,
    /// Only objects whose latest event references one of these.
    pub refs: Vec<(RefColumn, String)>,
}

/// A moment resolved: where its objects are read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    /// The raft index of the moment.
    pub index: u64,
    /// Its time by Nomad's clock, when known.
    pub time: Option<i64>,
    /// The keyframe it starts from.
    pub keyframe: Option<Keyframe>,
    /// Events after this index (and up to [`Moment::index`]) are read.
    pub read_after: u64,
    /// Terminal allocations last changed at or after this time are shown;
    /// `None`: every one.
    pub terminal_since: Option<i64>,
    pub refs: Vec<(RefColumn, String)>,
}

/// Which rows of a moment to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// What a snapshot shows: present objects, and terminal allocations
    /// within the window.
    Shown,
    /// Every object read, whatever its presence (to overlay on a
    /// reconstruction, which decides first).
    Every,
}

/// One object at a moment: the event that last describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentObject {
    pub event: ArchivedEvent,
    pub presence: Option<Presence>,
    /// The event's time by Nomad's clock.
    pub event_at: Option<i64>,
}

impl MomentObject {
    /// Whether a snapshot at `moment` shows it.
    pub fn shown(&self, moment: &Moment) -> bool {
        match self.presence {
            Some(Presence::Present) => true,
            Some(Presence::Terminal) => match moment.terminal_since {
                None => true,
                Some(since) => self.event_at.is_some_and(|at| at >= since),
            },
            _ => false,
        }
    }
}

/// A row of [`objects`]: the event, and what it says of its object.
#[derive(Debug, sqlx::FromRow)]
pub struct MomentRecord {
    #[sqlx(flatten)]
    event: EventRecord,
    presence: Option<i32>,
    described_at: Option<i64>,
}

impl MomentRecord {
    /// The object, its event decoded with `dictionaries` or from its block
    /// in `blocks`.
    pub fn decode(
        self,
        cluster: &str,
        dictionaries: &Dictionaries,
        blocks: &Loaded,
    ) -> Result<MomentObject, StoreError> {
        Ok(MomentObject {
            event: dictionaries.decode(cluster, self.event, blocks)?,
            presence: self
                .presence
                .and_then(|code| Presence::from_code(code.into())),
            event_at: self.described_at,
        })
    }
}

/// Decodes the rows of [`objects`] as they stream, [`ROWS_PER_LOAD`] at a
/// time: the blocks a group's rows name are loaded (on another connection
/// of the pool, the stream holding one) before the group is decoded. The
/// cluster's dictionaries are loaded before the stream starts.
pub fn decode_rows<'a>(
    rows: impl Stream<Item = Result<MomentRecord, sqlx::Error>> + Send + 'a,
    store: &'a dyn Source,
    cluster: &'a Cluster,
) -> BoxStream<'a, Result<MomentObject, StoreError>> {
    rows.chunks(ROWS_PER_LOAD)
        .then(move |group| async move {
            let group = match group.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(group) => group,
                Err(e) => return vec![Err(StoreError::from(e))],
            };
            let ids = group.iter().map(|r| r.event.block_id);
            let loaded = match blocks::load(store.block_source(), ids).await {
                Ok(loaded) => loaded,
                Err(e) => return vec![Err(e)],
            };
            let dictionaries = store.dictionaries();
            group
                .into_iter()
                .map(|r| r.decode(&cluster.name, dictionaries, &loaded))
                .collect()
        })
        .flat_map(futures_util::stream::iter)
        .boxed()
}

/// Resolves `query`: the moment's index and time, its keyframe, and the
/// first event to read. `None` when the archive holds nothing at or
/// before it.
pub(super) async fn resolve(
    run: &mut dyn Run,
    cluster_id: i64,
    query: &MomentQuery,
) -> Result<Option<Moment>, StoreError> {
    let style = run.style();
    // Nomad's clock first: a receipt time (a frame without any time, an
    // old capture imported today) can be far from the events around it.
    let (index, time) = match query.point {
        Point::Index(index) => {
            let mut time = run.int(time_at(cluster_id, index, NOMAD, style)).await?;
            if time.is_none() {
                time = run.int(time_at(cluster_id, index, "", style)).await?;
            }
            (index, time)
        }
        Point::Time(time) => {
            let mut index = run.int(index_at(cluster_id, time, NOMAD, style)).await?;
            if index.is_none() {
                index = run.int(index_at(cluster_id, time, "", style)).await?;
            }
            match index {
                Some(index) => (to_u64(index), Some(time)),
                None => return Ok(None),
            }
        }
    };
    let Some(within) = query.terminal_within else {
        return Ok(Some(Moment {
            index,
            time,
            keyframe: None,
            read_after: 0,
            terminal_since: None,
            refs: query.refs.clone(),
        }));
    };
    let keyframe = run
        .keyframe(keyframe::newest(cluster_id, index, style))
        .await?;
    let since = time.map_or(i64::MAX, |t| t.saturating_sub(within));
    let first = run.int(first_since(cluster_id, since, style)).await?;
    let from_keyframe = keyframe.map_or(0, |k| k.index);
    let read_after = first.map_or(from_keyframe, |f| from_keyframe.min(to_u64(f - 1)));
    Ok(Some(Moment {
        index,
        time,
        keyframe,
        read_after,
        terminal_since: Some(since),
        refs: query.refs.clone(),
    }))
}

/// How many terminal allocations the moment's snapshot leaves out: those
/// terminal at the moment (the keyframe's count, adjusted by the events
/// since; or counted from the referencing events when `refs` narrow the
/// snapshot), less the ones it shows.
pub(super) async fn left_out(
    run: &mut dyn Run,
    cluster_id: i64,
    moment: &Moment,
) -> Result<u64, StoreError> {
    if moment.terminal_since.is_none() {
        return Ok(0);
    }
    let style = run.style();
    let terminal = if moment.refs.is_empty() {
        let from = moment.keyframe.map_or((-1, 0), |k| (k.id, k.index));
        let delta = keyframe::terminal_delta(cluster_id, from, moment.index, style);
        let before = moment.keyframe.map_or(0, |k| k.terminal_allocations);
        to_i64(before) + run.int(delta).await?.unwrap_or(0)
    } else {
        terminal_narrowed(run, cluster_id, moment).await?
    };
    let shown = run
        .int(objects(cluster_id, moment, Select::ShownTerminal, style))
        .await?
        .unwrap_or(0);
    Ok(to_u64(terminal - shown))
}

/// How many allocations referencing the moment's `refs` are terminal at
/// it: for one job or node, from its counts at the keyframes
/// ([`terminal_counts`]); for several, from the referencing events.
async fn terminal_narrowed(
    run: &mut dyn Run,
    cluster_id: i64,
    moment: &Moment,
) -> Result<i64, StoreError> {
    let style = run.style();
    let one = match moment.refs.as_slice() {
        [(column, id)] => terminal_counts::counted(*column).map(|column| (column, id)),
        _ => None,
    };
    let counted = match one {
        Some((column, id)) => terminal_counts::at(
            cluster_id,
            moment.keyframe.as_ref(),
            column,
            id,
            moment.index,
            style,
        ),
        None => terminal_referencing(cluster_id, moment, style),
    };
    Ok(run.int(counted).await?.unwrap_or(0))
}

/// `AND`ed to a condition on events: dated by Nomad's clock.
const NOMAD: &str = " AND time_source = 'nomad'";

/// The time of the newest event at or before `index` (meeting `only`).
fn time_at(cluster_id: i64, index: u64, only: &str, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, i) = (p.int(cluster_id), p.int(to_i64(index)));
    p.statement(format!(
        "SELECT event_at FROM event_log WHERE cluster_id = {c} AND raft_index <= {i}{only} \
         ORDER BY raft_index DESC, position DESC LIMIT 1"
    ))
}

/// The raft index of the event with the newest time at or before `time`
/// (meeting `only`).
fn index_at(cluster_id: i64, time: i64, only: &str, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, t) = (p.int(cluster_id), p.int(time));
    p.statement(format!(
        "SELECT raft_index FROM event_log{} WHERE cluster_id = {c} AND event_at <= {t}{only} \
         ORDER BY event_at DESC, raft_index DESC LIMIT 1",
        by_time(style)
    ))
}

/// The raft index of the event with the oldest time by Nomad's clock at or
/// after `time`: where the window of terminal allocations starts.
fn first_since(cluster_id: i64, time: i64, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, t) = (p.int(cluster_id), p.int(time));
    p.statement(format!(
        "SELECT raft_index FROM event_log{} WHERE cluster_id = {c} AND event_at >= {t}{NOMAD} \
         ORDER BY event_at, raft_index LIMIT 1",
        by_time(style)
    ))
}

/// SQLite's hint to read by time.
fn by_time(style: Placeholders) -> &'static str {
    match style {
        Placeholders::Question => " INDEXED BY event_log_by_time",
        Placeholders::Numbered => "",
    }
}

/// What [`objects`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Select {
    /// The rows, with their events (`event_column` is how the backend
    /// reads an event as text).
    Rows(Rows, &'static str),
    /// How many terminal allocations the snapshot shows.
    ShownTerminal,
}

/// The objects of a moment: the latest event of each object read after
/// [`Moment::read_after`], and the keyframe's objects no such event
/// touched; ordered by topic (Node, Job, Allocation), namespace and key.
pub(super) fn objects(
    cluster_id: i64,
    moment: &Moment,
    select: Select,
    style: Placeholders,
) -> Statement {
    let mut p = Params::new(style);
    let (c, after, upto) = (
        p.int(cluster_id),
        p.int(to_i64(moment.read_after)),
        p.int(to_i64(moment.index)),
    );
    let latest = keyframe::latest_between(&p, &c, &after, &upto, OBJECT_TOPICS);
    let join = p.join_rows();
    let since = moment.terminal_since.unwrap_or(i64::MIN);
    let (columns, mut filter, order) = match select {
        Select::Rows(rows, event_column) => (
            format!(
                "{}, CAST(e.presence AS INTEGER) AS presence, e.event_at AS described_at",
                event_columns(event_column)
            ),
            match rows {
                Rows::Shown => {
                    let since = p.int(since);
                    format!("(e.presence = 0 OR (e.presence = 1 AND e.event_at >= {since}))")
                }
                Rows::Every => "1 = 1".to_owned(),
            },
            " ORDER BY CASE e.topic WHEN 'Node' THEN 0 WHEN 'Job' THEN 1 ELSE 2 END, e.namespace, k.name",
        ),
        Select::ShownTerminal => {
            let since = p.int(since);
            (
                "COUNT(*) AS shown".to_owned(),
                format!("e.topic = 'Allocation' AND e.presence = 1 AND e.event_at >= {since}"),
                "",
            )
        }
    };
    filter.push_str(&refs_clause(&mut p, &moment.refs));
    // A keyframe lists only present objects: terminal ones are all read.
    let keyframe = match select {
        Select::ShownTerminal => String::new(),
        Select::Rows(..) => keyframe_rest(&mut p, moment, [&c, &after, &upto]),
    };
    p.statement(format!(
        "SELECT {columns} FROM ({latest}{keyframe}) AS l \
         {join} event_log AS e ON e.cluster_id = {c} AND e.raft_index = l.o_last \
           AND e.topic = l.o_topic AND e.namespace = l.o_namespace AND e.key_ref = l.o_key \
         JOIN names AS k ON k.id = e.key_ref \
         WHERE {filter}{order}"
    ))
}

/// ` UNION ALL …`: the objects of the moment's keyframe that no event
/// after it (`after`, up to `upto`) touched, as [`keyframe::latest_between`]
/// gives the others.
fn keyframe_rest(p: &mut Params, moment: &Moment, [c, after, upto]: [&str; 3]) -> String {
    let by_key = p.by_key();
    let kf = p.int(moment.keyframe.map_or(-1, |k| k.id));
    format!(
        " UNION ALL \
         SELECT o.topic, o.namespace, o.key_ref, o.raft_index FROM keyframe_objects AS o \
         WHERE o.keyframe_id = {kf} AND NOT EXISTS (SELECT 1 FROM event_log AS x{by_key} \
           WHERE x.topic = o.topic AND x.key_ref = o.key_ref AND x.cluster_id = {c} \
           AND x.raft_index > {after} AND x.raft_index <= {upto} \
           AND x.namespace = o.namespace)"
    )
}

/// The latest event of every object at `moment` (`o_topic`, `o_namespace`,
/// `o_key`, `o_last`), merged from its keyframe and the events after it:
/// what [`objects`] reads, for other answers at a moment.
pub(super) fn latest_at(p: &mut Params, cluster: &str, moment: &Moment) -> String {
    let (after, upto) = (
        p.int(to_i64(moment.read_after)),
        p.int(to_i64(moment.index)),
    );
    let latest = keyframe::latest_between(p, cluster, &after, &upto, OBJECT_TOPICS);
    let rest = keyframe_rest(p, moment, [cluster, &after, &upto]);
    format!("{latest}{rest}")
}

/// ` AND (…)`: the event references one of `refs` (nothing without any).
fn refs_clause(p: &mut Params, refs: &[(RefColumn, String)]) -> String {
    if refs.is_empty() {
        return String::new();
    }
    let any: Vec<String> = refs
        .iter()
        .map(|(column, id)| {
            let placeholder = p.push(Bind::Text(id.clone()));
            column.clause(&placeholder)
        })
        .collect();
    format!(" AND ({})", any.join(" OR "))
}

/// How many allocations referencing the moment's `refs` are terminal at it,
/// counted from their events (a narrowed snapshot has no keyframe count).
fn terminal_referencing(cluster_id: i64, moment: &Moment, style: Placeholders) -> Statement {
    let mut p = Params::new(style);
    let (c, upto) = (p.int(cluster_id), p.int(to_i64(moment.index)));
    // SQLite without statistics would rather walk every allocation in the
    // key index (led by the topic) than the referencing events.
    let topic = match style {
        Placeholders::Question => "+topic",
        Placeholders::Numbered => "topic",
    };
    let refs = refs_clause(&mut p, &moment.refs);
    let join = p.join_rows();
    p.statement(format!(
        "SELECT COUNT(*) AS terminal FROM (SELECT namespace, key_ref, MAX(raft_index) AS last \
           FROM event_log WHERE cluster_id = {c} AND {topic} = 'Allocation' AND raft_index <= {upto}{refs} \
           GROUP BY namespace, key_ref) AS l \
         {join} event_log AS e ON e.cluster_id = {c} AND e.raft_index = l.last AND e.topic = 'Allocation' \
           AND e.namespace = l.namespace AND e.key_ref = l.key_ref \
         WHERE e.presence = 1"
    ))
}

/// The raft index of the moment at `time` by Nomad's clock: the newest
/// event dated at or before it, if any.
pub async fn index_at_time(
    store: &dyn super::Store,
    cluster: &crate::archive::Cluster,
    time: i64,
) -> Result<Option<u64>, StoreError> {
    let query = MomentQuery {
        point: Point::Time(time),
        terminal_within: None,
        refs: Vec::new(),
    };
    Ok(store.moment(cluster, &query).await?.map(|m| m.index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::TimeSource;

    fn moment(terminal_since: Option<i64>) -> Moment {
        Moment {
            index: 100,
            time: Some(5_000),
            keyframe: None,
            read_after: 0,
            terminal_since,
            refs: Vec::new(),
        }
    }

    fn object(presence: Option<Presence>, event_at: i64) -> MomentObject {
        MomentObject {
            event: ArchivedEvent {
                index: 1,
                position: 0,
                topic: "Allocation".into(),
                key: "a".into(),
                namespace: "default".into(),
                received_at: 0,
                time: 0,
                time_source: TimeSource::Nomad,
                raw: "{}".into(),
            },
            presence,
            event_at: Some(event_at),
        }
    }

    #[test]
    fn terminal_allocations_are_shown_within_the_window_and_removed_objects_never() {
        let window = moment(Some(4_000));
        assert!(object(Some(Presence::Present), 1).shown(&window));
        assert!(object(Some(Presence::Terminal), 4_000).shown(&window));
        assert!(!object(Some(Presence::Terminal), 3_999).shown(&window));
        assert!(!object(Some(Presence::Removed), 4_500).shown(&window));
        assert!(object(Some(Presence::Terminal), 1).shown(&moment(None)));
        assert!(!object(None, 4_500).shown(&window));
    }

    #[test]
    fn a_narrowed_moment_filters_by_reference_after_the_keyframe_is_merged() {
        let mut narrowed = moment(Some(4_000));
        narrowed.refs = vec![(RefColumn::Job, "web".into())];
        let sql = objects(
            1,
            &narrowed,
            Select::Rows(Rows::Shown, "event"),
            Placeholders::Question,
        )
        .sql;
        assert!(
            sql.contains("AND (job_ref = (SELECT id FROM names WHERE name = ?5)) ORDER BY"),
            "{sql}"
        );
        assert!(sql.contains("e.event_at >= ?4"), "{sql}");
    }
}
