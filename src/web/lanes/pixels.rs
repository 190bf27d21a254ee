//! Level of detail: fits a window's allocations to the pixels of the
//! page's time axis as they arrive ([`Fitter`]). A bar shorter than one
//! pixel would not be seen, so it is counted instead, once, in the time
//! bucket ([`Grid`]) where it starts on its lane; past [`MAX_BARS`] bars
//! the latest to start are counted too, whatever order they arrive in.
//! Markers of one kind within a bucket of each other on a lane are drawn
//! as one ([`thin_markers`]). So an answer stays small however long the
//! window, and so does what is held while it is built: the bars drawn and
//! one count per lane and bucket.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::{Bar, Density, Marker};

/// Bars drawn at most; beyond them allocations are counted. More than a
/// lane of a page holds side by side, and an answer of about 2 MB.
pub const MAX_BARS: usize = 4_000;

/// Markers drawn at most: past them, markers are thinned over buckets
/// twice as wide, and again, until they fit (about 1 MB of answer).
pub const MAX_MARKERS: usize = 5_000;

/// Pixels of the time axis a bucket of counts spans at least (and fewer
/// than twice as many, but for buckets of 1 ms: [`Grid`]).
pub const BUCKET_PX: u32 = 4;

/// The narrowest time axis a page may ask for, in pixels.
pub const MIN_WIDTH: u32 = 100;

/// The widest time axis a page may ask for, in pixels.
pub const MAX_WIDTH: u32 = 8_000;

/// The width assumed when the page sends none.
pub const DEFAULT_WIDTH: u32 = 1_000;

/// The time buckets allocations are counted in and markers thinned over:
/// a grid fixed in time, of buckets a power of two of milliseconds long
/// (the shortest spanning at least [`BUCKET_PX`] pixels of the window)
/// counted from the Unix epoch, so that panning a window moves none of
/// their ends and a count stays where it was. The first and last buckets
/// may reach past the window's ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Unix ms where the first bucket starts: at or before the window's.
    pub origin: i64,
    /// The length of a bucket in ms.
    pub bucket_ms: i64,
    /// Buckets from the one the window starts in to the one it ends in.
    pub buckets: u32,
}

impl Grid {
    /// The grid of the window `[from, to)` on a time axis `width` pixels
    /// wide.
    pub fn new((from, to): (i64, i64), width: u32) -> Self {
        let span = i128::from(to.saturating_sub(from).max(1));
        let width = i128::from(width.max(1));
        let least = (span * i128::from(BUCKET_PX) + width - 1) / width;
        let bucket_ms = u64::try_from(least)
            .ok()
            .and_then(u64::checked_next_power_of_two)
            .and_then(|ms| i64::try_from(ms).ok())
            .unwrap_or(1 << 62);
        let first = from.div_euclid(bucket_ms);
        let last = to.saturating_sub(1).max(from).div_euclid(bucket_ms);
        Grid {
            origin: first.saturating_mul(bucket_ms),
            bucket_ms,
            buckets: u32::try_from(last - first + 1).unwrap_or(u32::MAX),
        }
    }

    /// The bucket the time `at` (Unix ms) falls in, counted from the first;
    /// a time outside the grid in the bucket nearest to it.
    pub fn bucket(&self, at: i64) -> u32 {
        let bucket =
            (i128::from(at) - i128::from(self.origin)).div_euclid(i128::from(self.bucket_ms));
        u32::try_from(bucket.clamp(0, i128::from(self.buckets.max(1) - 1))).unwrap_or(0)
    }
}

/// A window's allocations fitted to the page.
#[derive(Debug)]
pub struct Fitted {
    pub width: u32,
    /// The bars drawn, in order of start (then ID).
    pub bars: Vec<Bar>,
    pub grid: Grid,
    /// How many allocations `density` counts.
    pub counted: u64,
    /// Per lane with any counted, in order of lane.
    pub density: Vec<Density>,
}

/// Decides for each allocation of a window whether it is drawn or counted.
#[derive(Debug)]
pub struct Fitter {
    /// The window, `[from, to)` in Unix ms.
    from: i64,
    to: i64,
    /// The pixels of the time axis.
    width: u32,
    /// The buckets of counts.
    grid: Grid,
    /// The bars drawn so far, the latest to start on top.
    drawn: BinaryHeap<ByStart>,
    /// Counts per bucket, by lane ID.
    counts: HashMap<String, Vec<u32>>,
    counted: u64,
}

impl Fitter {
    /// A fitter for the window `[from, to)` on a time axis `width` pixels
    /// wide (`0`: [`DEFAULT_WIDTH`]).
    pub fn new((from, to): (i64, i64), width: u32) -> Self {
        let width = match width {
            0 => DEFAULT_WIDTH,
            w => w.clamp(MIN_WIDTH, MAX_WIDTH),
        };
        Fitter {
            from,
            to,
            width,
            grid: Grid::new((from, to), width),
            drawn: BinaryHeap::new(),
            counts: HashMap::new(),
            counted: 0,
        }
    }

    /// The window's length in ms, at least 1.
    fn span(&self) -> i128 {
        i128::from(self.to.saturating_sub(self.from).max(1))
    }

    /// Whether `bar` would be shorter than one pixel: its length over the
    /// window's is less than one over `width`.
    fn thin(&self, bar: &Bar) -> bool {
        let end = bar.end.unwrap_or(self.to).min(self.to);
        let length = i128::from(end) - i128::from(bar.start);
        length * i128::from(self.width) < self.span()
    }

    /// Draws `bar`, or counts it when it is thin. Of more than
    /// [`MAX_BARS`] drawn, the latest to start ([`ByStart`]) is counted
    /// instead, so that which are drawn does not depend on the order they
    /// come in.
    pub fn take(&mut self, bar: Bar) {
        if self.thin(&bar) {
            return self.count_bar(bar);
        }
        self.drawn.push(ByStart(bar));
        if self.drawn.len() > MAX_BARS {
            if let Some(ByStart(latest)) = self.drawn.pop() {
                self.count_bar(latest);
            }
        }
    }

    /// Counts `bar` in the bucket where it starts on its lane.
    fn count_bar(&mut self, bar: Bar) {
        let bucket = self.grid.bucket(bar.start.max(self.from));
        self.count(bar.lane, bucket, 1);
    }

    /// The pixels of the time axis and the buckets of counts.
    pub fn pixels(&self) -> (u32, Grid) {
        (self.width, self.grid)
    }

    /// About how many pixels of the time axis a bucket spans.
    pub fn bucket_pixels(&self) -> u32 {
        let halves = i128::from(self.grid.bucket_ms) * i128::from(self.width) * 2 / self.span();
        u32::try_from((halves + 1) / 2).unwrap_or(u32::MAX).max(1)
    }

    /// Counts `n` allocations of `lane` in `bucket` (one past the last is
    /// the last).
    pub fn count(&mut self, lane: String, bucket: u32, n: u32) {
        let size = self.grid.buckets as usize;
        let lane = self.counts.entry(lane).or_insert_with(|| vec![0; size]);
        let bucket = (bucket as usize).min(size.saturating_sub(1));
        if let Some(count) = lane.get_mut(bucket) {
            *count = count.saturating_add(n);
        }
        self.counted += u64::from(n);
    }

    /// The bars drawn in order of start, and the counts.
    pub fn finish(self) -> Fitted {
        let mut bars: Vec<Bar> = self.drawn.into_iter().map(|b| b.0).collect();
        bars.sort_by(|a, b| (a.start, &a.alloc).cmp(&(b.start, &b.alloc)));
        let mut density: Vec<Density> = self
            .counts
            .into_iter()
            .map(|(lane, counts)| Density { lane, counts })
            .collect();
        density.sort_by(|a, b| a.lane.cmp(&b.lane));
        Fitted {
            width: self.width,
            bars,
            grid: self.grid,
            counted: self.counted,
            density,
        }
    }
}

/// A bar ordered by when it starts, those present when the window starts
/// first among bars of one start, then by allocation ID: past
/// [`MAX_BARS`], the greatest is counted rather than drawn.
#[derive(Debug)]
struct ByStart(Bar);

impl ByStart {
    fn key(&self) -> (i64, bool, &str) {
        (self.0.start, !self.0.before, &self.0.alloc)
    }
}

impl PartialEq for ByStart {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ByStart {}

impl PartialOrd for ByStart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByStart {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The markers that are in different buckets of `grid` on their lane
/// (each about `pixels` wide), for each kind: of those in one, the last
/// stands for the others and says how many it stands for (with those each
/// stood for already). While more than [`MAX_MARKERS`] are left, buckets
/// twice as long (still counted from the Unix epoch) are merged the same
/// way. In order of time.
pub fn thin_markers(mut markers: Vec<Marker>, grid: Grid, pixels: u32) -> Vec<Marker> {
    let bucket = |at: i64| i128::from(at.div_euclid(grid.bucket_ms));
    markers.sort_by(|a, b| (&a.lane, a.kind.as_str(), a.at).cmp(&(&b.lane, b.kind.as_str(), b.at)));
    // The window's first and last buckets: merging stops when one bucket
    // holds both (a window across the epoch keeps two, -1 and 0).
    let first = bucket(grid.origin);
    let last = first + i128::from(grid.buckets.max(1)) - 1;
    let mut shift = 0;
    let mut kept = merge(markers, bucket);
    while kept.len() > MAX_MARKERS && first >> shift != last >> shift && shift < 64 {
        shift += 1;
        kept = merge(kept, |at| bucket(at) >> shift);
    }
    for marker in &mut kept {
        let scale = 1u32.checked_shl(shift).unwrap_or(u32::MAX);
        note_hidden(marker, pixels.saturating_mul(scale));
    }
    kept.sort_by(|a, b| (a.at, &a.lane).cmp(&(b.at, &b.lane)));
    kept
}

/// Merges the markers of one lane and kind in one `bucket` into the last
/// of them; `markers` in order of lane, kind and time, and so the answer.
fn merge(markers: Vec<Marker>, bucket: impl Fn(i64) -> i128) -> Vec<Marker> {
    let mut kept: Vec<Marker> = Vec::with_capacity(markers.len());
    for mut marker in markers {
        if let Some(last) = kept.last_mut().filter(|last| {
            last.lane == marker.lane
                && last.kind == marker.kind
                && bucket(last.at) == bucket(marker.at)
        }) {
            marker.hidden = marker.hidden.saturating_add(last.hidden.saturating_add(1));
            *last = marker;
            continue;
        }
        kept.push(marker);
    }
    kept
}

/// Says on `marker` how many earlier ones within its bucket of `pixels`
/// it stands for.
fn note_hidden(marker: &mut Marker, pixels: u32) {
    let hidden = marker.hidden;
    if hidden > 0 {
        let s = if hidden == 1 { "" } else { "s" };
        marker.label = format!(
            "{} ({hidden} earlier change{s} within these {pixels} pixels)",
            marker.label
        );
    }
}
