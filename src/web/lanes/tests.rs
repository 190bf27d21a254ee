//! The lanes built from hand-made events.

use super::*;

fn alloc(id: &str, job: &str, node: &str, status: &str) -> String {
    format!(
        r#"{{"Topic":"Allocation","Type":"AllocationUpdated","Payload":{{"Allocation":{{"ID":"{id}","Name":"{job}.web[0]","JobID":"{job}","Namespace":"default","NodeID":"{node}","NodeName":"name-{node}","ClientStatus":"{status}"}}}}}}"#
    )
}

fn node(id: &str, status: &str, eligibility: &str) -> String {
    format!(
        r#"{{"Topic":"Node","Payload":{{"Node":{{"ID":"{id}","Name":"name-{id}","Status":"{status}","SchedulingEligibility":"{eligibility}"}}}}}}"#
    )
}

fn job(id: &str, version: u64) -> String {
    format!(
        r#"{{"Topic":"Job","Payload":{{"Job":{{"ID":"{id}","Namespace":"default","Version":{version}}}}}}}"#
    )
}

#[test]
fn an_allocation_is_one_bar_from_its_first_event_to_its_terminal_status() {
    let mut b = Builder::new(By::Job, 1_000, 9_000);
    b.add(
        "Allocation",
        &alloc("a1", "web", "n1", "pending"),
        2_000,
        false,
    );
    b.add(
        "Allocation",
        &alloc("a1", "web", "n1", "running"),
        3_000,
        false,
    );
    b.add(
        "Allocation",
        &alloc("a1", "web", "n1", "failed"),
        5_000,
        false,
    );
    b.add(
        "Allocation",
        &alloc("a1", "web", "n1", "failed"),
        6_000,
        false,
    );
    b.add("Allocation", &alloc("a2", "web", "n1", "running"), 0, true);
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
            ("a2", "default/web", 1_000, None, "running", true),
            ("a1", "default/web", 2_000, Some(5_000), "failed", false),
        ]
    );
    assert_eq!(lanes.lanes.len(), 1);
    assert!(!lanes.aggregated);
}

#[test]
fn past_the_bar_limit_allocations_are_counted_once_in_their_time_bucket() {
    let mut b = Builder::new(By::Node, 0, BUCKETS as i64 * 10);
    for i in 0..MAX_BARS {
        b.add(
            "Allocation",
            &alloc(&format!("a{i}"), "web", "n1", "running"),
            0,
            false,
        );
    }
    let late = alloc("late", "web", "n2", "running");
    b.add("Allocation", &late, 25, false);
    b.add("Allocation", &late, 35, false);
    let lanes = b.finish("test", false);
    assert_eq!(lanes.bars.len(), MAX_BARS);
    assert!(lanes.aggregated);
    assert_eq!(lanes.density.len(), 1);
    assert_eq!(lanes.density[0].lane, "n2");
    assert_eq!(lanes.density[0].counts[2], 1);
    assert_eq!(lanes.density[0].counts.iter().sum::<u32>(), 1);
}

#[test]
fn a_node_down_or_draining_is_a_band_on_its_lane() {
    let mut b = Builder::new(By::Node, 0, 10_000);
    b.add("Node", &node("n1", "ready", "eligible"), 100, false);
    b.add("Node", &node("n1", "down", "eligible"), 200, false);
    b.add("Node", &node("n1", "ready", "ineligible"), 300, false);
    let lanes = b.finish("test", false);
    let bands: Vec<_> = lanes
        .bands
        .iter()
        .map(|b| (b.lane.as_deref(), b.kind, b.from, b.to))
        .collect();
    assert_eq!(
        bands,
        vec![
            (Some("n1"), "down", 200, Some(300)),
            (Some("n1"), "drain", 300, None)
        ]
    );
    assert_eq!(lanes.lanes[0].label, "name-n1");
}

#[test]
fn a_job_version_is_marked_when_it_changes_within_the_window() {
    let mut b = Builder::new(By::Job, 0, 10_000);
    b.add("Job", &job("web", 3), 0, true);
    b.add("Job", &job("web", 3), 100, false);
    b.add("Job", &job("web", 4), 200, false);
    b.gap(-5, 50_000, "event dropped from buffer");
    let lanes = b.finish("test", false);
    let markers: Vec<_> = lanes
        .markers
        .iter()
        .map(|m| (m.lane.as_str(), m.at, m.label.as_str()))
        .collect();
    assert_eq!(markers, vec![("default/web", 200, "version 4")]);
    let gap = &lanes.bands[0];
    assert_eq!((gap.kind, gap.from, gap.to), ("gap", 0, Some(10_000)));
}
