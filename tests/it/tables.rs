//! Tables that fit: at `--width 100` no line of the main tables is wider,
//! columns are truncated with `…` and the summary wraps under itself; piped
//! without a width, or with `--wide`, every value is whole.

use nomad_sim::{Generator, SimFrame};

use crate::common::{Archive, Backend, first_key, on_both_backends};

/// The lines of `text` wider than `width` characters.
fn wider(text: &str, width: usize) -> Vec<&str> {
    text.lines().filter(|l| l.chars().count() > width).collect()
}

/// An archive of a generated history with a gap in it, and the IDs asked about.
async fn history(backend: Backend) -> (Archive, Vec<SimFrame>) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(93).frames(2_000);
    for (name, part) in [("a.ndjson", &frames[..900]), ("b.ndjson", &frames[1_000..])] {
        let file = archive.capture(name, part);
        archive.run(&["import", &file]).await.assert_success();
    }
    (archive, frames)
}

async fn the_main_tables_fit_in_100_columns_and_pipes_keep_every_value(backend: Backend) {
    let (archive, frames) = history(backend).await;
    let last = frames.last().expect("frames").index.to_string();
    let (job, alloc, node) = (
        first_key(&frames, "Job"),
        first_key(&frames, "Allocation"),
        first_key(&frames, "Node"),
    );
    let tables: [&[&str]; 6] = [
        &["query", "events", "--limit", "500"],
        &["query", "job", &job],
        &["query", "alloc", &alloc],
        &["query", "node", &node],
        &["query", "snapshot", "--at-index", &last],
        &["status"],
    ];
    for args in tables {
        let fitted = archive.run(&[args, &["--width", "100"]].concat()).await;
        fitted.assert_success();
        assert!(
            wider(&fitted.stdout, 100).is_empty(),
            "{args:?} at width 100 has wider lines:\n{}",
            wider(&fitted.stdout, 100).join("\n")
        );
        let piped = archive.run(args).await;
        piped.assert_success();
        let wide = archive.run(&[args, &["--wide"]].concat()).await;
        assert_eq!(
            wide.stdout, piped.stdout,
            "{args:?}: --wide is what a pipe gets"
        );
        assert!(
            !piped.stdout.contains('…'),
            "{args:?} piped truncates nothing"
        );
    }

    // Events: 100 columns truncate a column and wrap the summary under itself;
    // the pipe has the summary of each event whole, on its line.
    let fitted = archive
        .run(&["query", "events", "--limit", "500", "--width", "100"])
        .await;
    let piped = archive.run(&["query", "events", "--limit", "500"]).await;
    let header = fitted.stdout.lines().next().unwrap_or_default();
    let summary_at = header.find("SUMMARY").expect("a SUMMARY column");
    assert!(fitted.stdout.contains('…'), "{}", fitted.stdout);
    let continued: Vec<&str> = fitted
        .stdout
        .lines()
        .filter(|l| l.starts_with(&" ".repeat(summary_at)))
        .collect();
    assert!(
        !continued.is_empty(),
        "a long summary wraps:\n{}",
        fitted.stdout
    );
    assert!(wider(&piped.stdout, 100).len() > 10, "{}", piped.stdout);
    let alloc_row = piped
        .stdout
        .lines()
        .find(|l| l.contains(" Allocation ") && l.contains("client="))
        .expect("an allocation event");
    assert!(
        alloc_row.contains(" job=") && alloc_row.contains(" node="),
        "the whole summary on its row: {alloc_row}"
    );
}

async fn ids_are_short_names_where_known_and_whole_with_verbose(backend: Backend) {
    let (archive, frames) = history(backend).await;
    let last = frames.last().expect("frames").index.to_string();
    let node = first_key(&frames, "Node");
    let alloc = first_key(&frames, "Allocation");

    // A node's timeline names it, not `Node 1a2b3c4d`.
    let timeline = archive.run(&["query", "node", &node]).await;
    timeline.assert_success();
    let short = format!("Node {}", &node[..8]);
    assert!(!timeline.stdout.contains(&short), "{}", timeline.stdout);

    // Snapshot allocations: IDs of 8, a namespace column; whole with --verbose.
    let snapshot = archive
        .run(&["query", "snapshot", "--at-index", &last])
        .await;
    snapshot.assert_success();
    let allocations = snapshot
        .stdout
        .split("ALLOCATIONS\n")
        .nth(1)
        .expect("allocations");
    assert!(
        allocations.starts_with("ID        NAMESPACE  JOB"),
        "{allocations}"
    );
    let verbose = archive
        .run(&["query", "snapshot", "--at-index", &last, "--verbose"])
        .await;
    let row_ids = |text: &str| -> Vec<usize> {
        let rows = text.split("ALLOCATIONS\n").nth(1).unwrap_or_default();
        rows.lines()
            .skip(1)
            .take_while(|l| !l.is_empty() && !l.starts_with("! "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::len)
            .collect()
    };
    assert!(
        row_ids(&snapshot.stdout).iter().all(|n| *n == 8),
        "{}",
        snapshot.stdout
    );
    assert!(
        row_ids(&verbose.stdout).iter().all(|n| *n == 36),
        "{}",
        verbose.stdout
    );

    let events = archive.run(&["query", "events", "--alloc", &alloc]).await;
    let verbose = archive
        .run(&["query", "events", "--alloc", &alloc, "--verbose"])
        .await;
    assert!(!events.stdout.contains(&alloc), "{}", events.stdout);
    assert!(verbose.stdout.contains(&alloc), "{}", verbose.stdout);
}

on_both_backends!(
    the_main_tables_fit_in_100_columns_and_pipes_keep_every_value,
    ids_are_short_names_where_known_and_whole_with_verbose,
);
