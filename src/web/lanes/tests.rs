//! The lanes built from hand-made sightings.

use super::*;

/// An allocation as a window's row sums it up: `status` its last client
/// status, `ended` when it got there.
fn alloc(id: &str, job: &str, node: &str, status: &str) -> Sighting {
    Sighting {
        id: id.to_owned(),
        namespace: "default".to_owned(),
        job_id: job.to_owned(),
        node_id: node.to_owned(),
        node_name: format!("name-{node}"),
        task_group: "web".to_owned(),
        status: status.to_owned(),
        ..Sighting::default()
    }
}

fn node(id: &str, status: &str, draining: bool) -> Sighting {
    Sighting {
        id: id.to_owned(),
        node_name: format!("name-{id}"),
        status: status.to_owned(),
        draining,
        ..Sighting::default()
    }
}

fn job(id: &str, version: i64) -> Sighting {
    Sighting {
        id: id.to_owned(),
        namespace: "default".to_owned(),
        version: Some(version),
        ..Sighting::default()
    }
}

/// Running allocations `a000000`, `a000001`… of the window, each placed
/// at its number's ms, in the order given.
fn add_numbered(b: &mut Builder, numbers: impl IntoIterator<Item = usize>) {
    for i in numbers {
        let id = format!("a{i:06}");
        let at = i64::try_from(i).expect("a small number");
        b.add(
            Topic::Allocation,
            alloc(&id, "web", "n1", "running"),
            at,
            false,
        );
    }
}

fn ended(mut sighting: Sighting, at: i64) -> Sighting {
    sighting.ended = Some(at);
    sighting
}

#[test]
fn an_allocation_is_one_bar_from_its_first_event_to_its_terminal_status() {
    let mut b = Builder::new(By::Job, 1_000, 9_000, 1_000);
    // Present when the window starts, then failed within it.
    b.add(
        Topic::Allocation,
        alloc("a0", "web", "n1", "running"),
        0,
        true,
    );
    b.add(
        Topic::Allocation,
        alloc("a2", "web", "n1", "running"),
        0,
        true,
    );
    b.add(
        Topic::Allocation,
        alloc("a3", "web", "n1", "pending"),
        0,
        true,
    );
    b.add(
        Topic::Allocation,
        ended(alloc("a0", "web", "n1", "failed"), 4_000),
        1_500,
        false,
    );
    // Placed at 2 s, failed at 5 s (and said so again at 6 s).
    b.add(
        Topic::Allocation,
        ended(alloc("a1", "web", "n1", "failed"), 5_000),
        2_000,
        false,
    );
    // Present at the start, running again within the window.
    b.add(
        Topic::Allocation,
        alloc("a3", "web", "n1", "running"),
        3_000,
        false,
    );
    let lanes = b.finish("test", false);
    let bars: Vec<_> = lanes
        .bars
        .iter()
        .map(|b| {
            (
                b.alloc.as_str(),
                b.lane.as_str(),
                b.start,
                b.end,
                b.status.as_str(),
                b.before,
            )
        })
        .collect();
    assert_eq!(
        bars,
        vec![
            ("a0", "default/web", 1_000, Some(4_000), "failed", true),
            ("a2", "default/web", 1_000, None, "running", true),
            ("a3", "default/web", 1_000, None, "running", true),
            ("a1", "default/web", 2_000, Some(5_000), "failed", false),
        ]
    );
    assert_eq!(lanes.lanes.len(), 1);
    assert_eq!(lanes.counted, 0);
}

#[test]
fn a_bar_thinner_than_a_pixel_is_counted_once_in_its_bucket_instead() {
    // 100 s over 1,000 pixels: a pixel is 100 ms, a bucket 512 ms (the
    // first power of two of ms at least 4 pixels long), 196 of them.
    let mut b = Builder::new(By::Node, 0, 100_000, 1_000);
    b.add(
        Topic::Allocation,
        alloc("long", "web", "n1", "running"),
        0,
        false,
    );
    b.add(
        Topic::Allocation,
        ended(alloc("wide", "web", "n1", "complete"), 600),
        500,
        false,
    );
    for (id, at) in [("thin", 1_000), ("thin2", 1_300)] {
        b.add(
            Topic::Allocation,
            ended(alloc(id, "web", "n2", "failed"), at + 99),
            at,
            false,
        );
    }
    let lanes = b.finish("test", false);
    let drawn: Vec<_> = lanes.bars.iter().map(|b| b.alloc.as_str()).collect();
    assert_eq!(drawn, ["long", "wide"]);
    assert_eq!((lanes.width, lanes.counted), (1_000, 2));
    let grid = (lanes.grid.origin, lanes.grid.bucket_ms, lanes.grid.buckets);
    assert_eq!(grid, (0, 512, 196));
    assert_eq!(lanes.density.len(), 1);
    assert_eq!(lanes.density[0].lane, "n2");
    assert_eq!(lanes.density[0].counts.len(), 196);
    assert_eq!(lanes.density[0].counts[1], 1);
    assert_eq!(lanes.density[0].counts[2], 1);
}

#[test]
fn past_the_bar_limit_the_later_allocations_are_counted() {
    let mut b = Builder::new(By::Job, 0, 1_000_000, 1_000);
    add_numbered(&mut b, 0..=MAX_BARS);
    let lanes = b.finish("test", false);
    assert_eq!(lanes.bars.len(), MAX_BARS);
    assert_eq!(lanes.counted, 1);
    assert_eq!(lanes.density[0].counts.iter().sum::<u32>(), 1);
    assert!(
        lanes
            .bars
            .iter()
            .all(|b| b.alloc != format!("a{MAX_BARS:06}"))
    );
}

#[test]
fn the_allocations_present_when_the_window_starts_are_drawn_before_the_limit() {
    let mut b = Builder::new(By::Job, 0, 1_000_000, 1_000);
    b.add(
        Topic::Allocation,
        alloc("present", "web", "n1", "running"),
        0,
        true,
    );
    add_numbered(&mut b, 0..MAX_BARS);
    let lanes = b.finish("test", false);
    assert_eq!((lanes.bars.len(), lanes.counted), (MAX_BARS, 1));
    assert!(lanes.bars.iter().any(|b| b.alloc == "present" && b.before));
}

#[test]
fn a_node_down_or_draining_is_a_band_on_its_lane() {
    let mut b = Builder::new(By::Node, 0, 10_000, 1_000);
    b.add(Topic::Node, node("n1", "ready", false), 100, false);
    b.add(Topic::Node, node("n1", "down", false), 200, false);
    b.add(Topic::Node, node("n1", "ready", true), 300, false);
    let lanes = b.finish("test", false);
    let bands: Vec<_> = lanes
        .bands
        .iter()
        .map(|b| (b.lane.as_deref(), b.kind, b.from, b.to))
        .collect();
    assert_eq!(
        bands,
        vec![
            (Some("n1"), Kind::Down, 200, Some(300)),
            (Some("n1"), Kind::Drain, 300, None)
        ]
    );
    assert_eq!(lanes.lanes[0].label, "name-n1");
}

#[test]
fn a_job_version_is_marked_when_it_changes_within_the_window() {
    let mut b = Builder::new(By::Job, 0, 10_000, 1_000);
    b.add(Topic::Job, job("web", 3), 0, true);
    b.add(Topic::Job, job("web", 3), 100, false);
    b.add(Topic::Job, job("web", 4), 200, false);
    b.across(Kind::Gap, -5, Some(50_000), "gap".to_owned());
    let lanes = b.finish("test", false);
    let markers: Vec<_> = lanes
        .markers
        .iter()
        .map(|m| (m.lane.as_str(), m.at, m.label.as_str()))
        .collect();
    assert_eq!(markers, vec![("default/web", 200, "version 4")]);
    let gap = &lanes.bands[0];
    assert_eq!((gap.kind, gap.from, gap.to), (Kind::Gap, 0, None));
}

#[test]
fn the_answer_is_written_with_pascal_case_keys_and_rfc_3339_times() {
    let mut b = Builder::new(By::Job, 1_767_225_600_000, 1_767_229_200_000, 1_000);
    b.add(
        Topic::Allocation,
        alloc("a1", "web", "n1", "running"),
        1_767_225_600_250,
        false,
    );
    let lanes = b.finish("test", false);
    let value: serde_json::Value =
        serde_json::from_slice(&json::to_vec(&lanes).expect("JSON")).expect("parses");
    assert_eq!(value["From"], "2026-01-01T00:00:00.000000000Z");
    assert_eq!(value["FromNs"], 1_767_225_600_000_000_000_i64);
    let bar = &value["Bars"][0];
    assert_eq!(bar["ID"], "a1");
    assert_eq!(bar["Lane"], "default/web");
    assert_eq!(bar["Start"], "2026-01-01T00:00:00.250000000Z");
    assert_eq!(bar["StartNs"], 1_767_225_600_250_000_000_i64);
    assert_eq!(bar["End"], serde_json::Value::Null);
    assert_eq!(value["Lanes"][0]["ID"], "default/web");
}

#[test]
fn markers_within_a_bucket_of_pixels_are_drawn_as_the_last_of_them() {
    // 10 s over 1,000 pixels: a bucket of at least 4 pixels is 64 ms
    // (6.4 pixels), from 128 ms to 192 ms the third.
    let mut b = Builder::new(By::Job, 0, 10_000, 1_000);
    for (version, at) in [(1, 130), (2, 140), (3, 191), (4, 192)] {
        b.add(Topic::Job, job("web", version), at, false);
    }
    let lanes = b.finish("test", false);
    let markers: Vec<_> = lanes
        .markers
        .iter()
        .map(|m| (m.at, m.label.as_str()))
        .collect();
    assert_eq!(
        markers,
        vec![
            (191, "version 3 (2 earlier changes within these 6 pixels)"),
            (192, "version 4")
        ]
    );
}

#[test]
fn a_change_thinned_before_it_arrives_adds_the_changes_it_stands_for() {
    // 10 s over 1,000 pixels: a bucket is 64 ms.
    let mut b = Builder::new(By::Job, 0, 10_000, 1_000);
    b.add(Topic::Job, job("web", 1), 0, true);
    // The same version as at the start, but already found changed: marked.
    let thinned = Sighting {
        thinned: Some(3),
        ..job("web", 1)
    };
    b.add(Topic::Job, thinned, 102, false);
    b.add(Topic::Job, job("web", 2), 105, false);
    b.add(Topic::Job, job("web", 2), 300, false);
    let lanes = b.finish("test", false);
    let markers: Vec<_> = lanes
        .markers
        .iter()
        .map(|m| (m.at, m.hidden, m.label.as_str()))
        .collect();
    assert_eq!(
        markers,
        vec![(
            105,
            4,
            "version 2 (4 earlier changes within these 6 pixels)"
        )]
    );
}

#[test]
fn allocations_counted_before_they_arrive_add_to_their_lane_and_bucket() {
    let mut b = Builder::new(By::Node, 0, 1_000, 100);
    b.add_counted(&alloc("a1", "web", "n1", "complete"), 3, 5);
    b.add_counted(&alloc("a2", "api", "n1", "failed"), 3, 2);
    b.add_counted(&alloc("a3", "web", "n2", "complete"), 999, 1);
    let lanes = b.finish("test", false);
    assert_eq!(lanes.counted, 8);
    assert!(lanes.bars.is_empty());
    let density: Vec<_> = lanes
        .density
        .iter()
        .map(|d| {
            (
                d.lane.as_str(),
                d.counts.iter().sum::<u32>(),
                d.counts[3],
                d.counts[15],
            )
        })
        .collect();
    assert_eq!(density, vec![("n1", 7, 7, 0), ("n2", 1, 0, 1)]);
}

#[test]
fn past_the_marker_limit_markers_are_thinned_over_wider_buckets() {
    // Four lanes, a change every 10 ms over 100 s on 8,000 pixels: 1,563
    // buckets of 64 ms (5 pixels) on each, 6,252 markers at first, then
    // 782 on each over buckets of 128 ms (10 pixels); the last holds three
    // changes, from 99,968 ms.
    let mut b = Builder::new(By::Job, 0, 100_000, 8_000);
    let versions = 10_000;
    for version in 0..versions {
        for name in ["api", "batch", "web", "worker"] {
            b.add(Topic::Job, job(name, version), version * 10, false);
        }
    }
    let lanes = b.finish("test", false);
    assert_eq!(lanes.markers.len(), 4 * 782);
    let stood_for: i64 = lanes.markers.iter().map(|m| i64::from(m.hidden) + 1).sum();
    assert_eq!(stood_for, 4 * versions);
    let last = lanes.markers.last().expect("a marker");
    assert_eq!(
        last.label,
        format!(
            "version {} (2 earlier changes within these 10 pixels)",
            versions - 1
        )
    );
}

#[test]
fn the_buckets_are_fixed_in_time_and_between_four_and_eight_pixels_wide() {
    use super::pixels::Grid;
    for (from, to, width) in [
        (0, 100_000, 1_000),
        (1_767_225_600_123, 1_767_225_600_123 + 7 * 86_400_000, 1_060),
        (-86_400_000, 86_400_000, 100),
        (5, 6, 8_000),
    ] {
        let grid = Grid::new((from, to), width);
        let span = i128::from(to - from);
        let pixels = i128::from(grid.bucket_ms) * i128::from(width);
        assert!(grid.bucket_ms.count_ones() == 1, "{grid:?}");
        assert!(pixels >= 4 * span || grid.bucket_ms == 1, "{grid:?}");
        assert!(pixels < 8 * span || grid.bucket_ms == 1, "{grid:?}");
        assert_eq!(grid.origin.rem_euclid(grid.bucket_ms), 0, "{grid:?}");
        assert!(grid.origin <= from && from - grid.origin < grid.bucket_ms);
        let end = i128::from(grid.origin) + i128::from(grid.buckets) * i128::from(grid.bucket_ms);
        assert!(end >= i128::from(to) && end - i128::from(to) < i128::from(grid.bucket_ms));
        // The window's first and last times in the first and last bucket,
        // by arithmetic (`bucket` would put any time outside in them).
        let nth = |at: i64| (i128::from(at) - i128::from(grid.origin)) / i128::from(grid.bucket_ms);
        assert_eq!(nth(from), 0);
        assert_eq!(nth(to - 1), i128::from(grid.buckets) - 1);
        assert_eq!(grid.bucket(to - 1), grid.buckets - 1);
        assert_eq!(grid.bucket(grid.origin - 1), 0);
        // Panned by a third of a bucket: the same buckets (a time inside
        // both windows is in the same one), one fewer at the start or not.
        let shift = grid.bucket_ms / 3 + 1;
        let panned = Grid::new((from + shift, to + shift), width);
        assert_eq!(panned.bucket_ms, grid.bucket_ms);
        assert_eq!(panned.origin.rem_euclid(grid.bucket_ms), 0);
        let inside = from + 2 * grid.bucket_ms;
        if inside < to {
            let fewer = u32::from(panned.origin > grid.origin);
            assert_eq!(panned.bucket(inside) + fewer, grid.bucket(inside));
        }
    }
}

#[test]
fn past_the_marker_limit_buckets_are_merged_until_the_markers_fit() {
    // 25.6 s from 15.36 s over 100 pixels: 25 buckets of 1,024 ms, the
    // 15th to the 39th from the epoch. Merged by 16 (as when 25 buckets
    // were taken for one), they are still three, 0 to 2: 2,000 lanes with
    // a change in each bucket keep 6,000 markers, over the limit; merged by
    // 32, two on each lane.
    let (from, to) = (15_360, 15_360 + 25_600);
    let mut b = Builder::new(By::Job, from, to, 100);
    for lane in 0..2_000 {
        let name = format!("j{lane:04}");
        for bucket in 0..25 {
            b.add(
                Topic::Job,
                job(&name, bucket),
                from + bucket * 1_024 + 1,
                false,
            );
        }
    }
    let lanes = b.finish("test", false);
    assert_eq!(lanes.grid.bucket_ms, 1_024);
    assert_eq!(lanes.markers.len(), 4_000);
    assert!(lanes.markers.len() <= MAX_MARKERS);
    let stood_for: i64 = lanes.markers.iter().map(|m| i64::from(m.hidden) + 1).sum();
    assert_eq!(stood_for, 2_000 * 25);
}

/// A lane per node takes the least of the names its allocations carry,
/// in whatever order they come (the allocations of a window are read in
/// more than one run), until a Node event of its own names it.
#[test]
fn a_node_lane_is_labelled_alike_whatever_order_its_allocations_come_in() {
    let named = |id: &str, name: &str| {
        let mut a = alloc(id, "web", "n1", "running");
        a.node_name = name.to_owned();
        a
    };
    let orders = [["a1", "a2", "a3"], ["a3", "a1", "a2"], ["a2", "a3", "a1"]];
    for order in orders {
        let mut b = Builder::new(By::Node, 0, 10_000, 1_000);
        for id in order {
            let name = match id {
                "a1" => "",
                "a2" => "web-2",
                _ => "web-1",
            };
            b.add(Topic::Allocation, named(id, name), 100, false);
        }
        let labels: Vec<_> = b.finish("test", false).lanes;
        let labels: Vec<_> = labels.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["web-1"], "{order:?}");
    }
    // Named by its own Node sighting, in the window or at its start (the
    // starting moment's nodes come before its allocations).
    let mut b = Builder::new(By::Node, 0, 10_000, 1_000);
    b.add(Topic::Allocation, named("a1", "web-1"), 100, false);
    b.add(Topic::Node, node("n1", "ready", false), 200, false);
    let lanes = b.finish("test", false).lanes;
    assert_eq!(lanes[0].label, "name-n1");
    let mut b = Builder::new(By::Node, 0, 10_000, 1_000);
    b.add(Topic::Node, node("n1", "ready", false), 0, true);
    b.add(Topic::Allocation, named("a1", "a-stale-name"), 100, false);
    let lanes = b.finish("test", false).lanes;
    assert_eq!(lanes[0].label, "name-n1");
}

/// Past the bar limit, which allocations are drawn does not depend on the
/// order they come in (a window's are read in more than one run): the
/// earliest to start are.
#[test]
fn past_the_bar_limit_the_same_allocations_are_drawn_in_any_order() {
    let drawn = |order: Vec<usize>| {
        let mut b = Builder::new(By::Job, 0, 1_000_000, 1_000);
        add_numbered(&mut b, order);
        let lanes = b.finish("test", false);
        let ids: Vec<String> = lanes.bars.iter().map(|b| b.alloc.clone()).collect();
        (ids, lanes.counted)
    };
    let forward = drawn((0..MAX_BARS + 10).collect());
    let backward = drawn((0..MAX_BARS + 10).rev().collect());
    assert_eq!(forward, backward);
    assert_eq!(forward.1, 10);
    assert_eq!(forward.0.last(), Some(&format!("a{:06}", MAX_BARS - 1)));
}
