//! The timeline's version and deployment markers are the changes the
//! writer judged against each object's previous archived event
//! (`marker_changes`, migration 0028). A prune takes an object's earlier
//! history: its first event left is then its first archived one, and a
//! change, on both ways of reading a window.

use nomad_chronicle::archive::ArchivedEvent;
use nomad_chronicle::web::lanes::{By, Kind, Lanes, Marker};
use nomad_chronicle::web::window::{self, Way, Window};
use nomad_sim::Generator;
use serde_json::Value;

use crate::common::{Archive, Backend, on_both_backends};

on_both_backends!(a_deployment_running_across_a_cut_is_drawn_where_its_kept_history_starts);

async fn a_deployment_running_across_a_cut_is_drawn_where_its_kept_history_starts(
    backend: Backend,
) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(64).frames(1_200);
    archive.import_as("test", "history.ndjson", &frames).await;
    let events = archive.archived("test").await;
    let (cut, kept) = unchanged_across_a_cut(&events).expect("a deployment with one status");
    // From just before it: the window's starting moment holds what was
    // archived by its start, and the window draws what changed after.
    let lanes = |way| lanes_from(&archive, kept.time - 1, way);
    let whole = lanes(Way::Lives).await;
    let unchanged = marker_at(&whole, &kept);
    assert!(
        unchanged.is_none(),
        "no change yet, so no marker: {unchanged:?}"
    );

    let before = cut.to_string();
    archive
        .run(&["prune", "--before-index", &before])
        .await
        .assert_success();
    let fitted = lanes(Way::Lives).await;
    assert_eq!(fitted, lanes(Way::Events).await);
    let first_kept = marker_at(&fitted, &kept);
    assert!(
        first_kept.is_some(),
        "deployment {} at index {}: no marker in {:?}",
        kept.key,
        kept.index,
        fitted.markers
    );
}

/// A cut and the event right after it of a deployment whose event right
/// before it had the same status.
fn unchanged_across_a_cut(events: &[ArchivedEvent]) -> Option<(u64, ArchivedEvent)> {
    let deployments: Vec<&ArchivedEvent> =
        events.iter().filter(|e| e.topic == "Deployment").collect();
    let middle = events.get(events.len() / 3)?.index;
    deployments.iter().enumerate().find_map(|(i, event)| {
        let previous = deployments[..i].iter().rev().find(|e| e.key == event.key)?;
        let moved = previous.index < event.index.saturating_sub(1);
        let same = status(previous) == status(event) && status(event).is_some();
        (event.index > middle && moved && same).then(|| (event.index, (*event).clone()))
    })
}

fn status(event: &ArchivedEvent) -> Option<String> {
    let doc: Value = serde_json::from_str(&event.raw).ok()?;
    doc["Payload"]["Deployment"]["Status"]
        .as_str()
        .map(str::to_owned)
}

/// The lanes by job of the ten minutes from `from` (Unix ms).
async fn lanes_from(archive: &Archive, from: i64, way: Way) -> Lanes {
    let (store, cluster) = archive.open("test").await;
    let window = Window {
        by: By::Job,
        from: Some(from),
        to: Some(from + 600_000),
        width: 8_000,
        way,
    };
    let lanes = window::lanes(store.as_ref(), &cluster, window).await;
    store.close().await;
    lanes.expect("lanes")
}

/// The deployment marker of `event`, drawn at its time.
fn marker_at<'a>(lanes: &'a Lanes, event: &ArchivedEvent) -> Option<&'a Marker> {
    let short: String = event.key.chars().take(8).collect();
    lanes
        .markers
        .iter()
        .find(|m| m.kind == Kind::Deployment && m.at == event.time && m.label.contains(&short))
}
