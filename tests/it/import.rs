//! `import` of NDJSON captures, as `curl -N …/v1/event/stream` saves them.

use std::io::Write;

use nomad_chronicle::archive::GapKind;
use nomad_sim::Generator;
use tokio::io::AsyncWriteExt;

use crate::common::{Archive, Backend, SimAt, expected, finish, on_both_backends};

/// A capture with a greeting, the frames, and heartbeats between them.
fn capture(frames: &[nomad_sim::SimFrame]) -> String {
    let mut out = String::from("{}\n");
    for (i, frame) in frames.iter().enumerate() {
        out.push_str(&frame.to_line());
        out.push('\n');
        if i % 100 == 99 {
            out.push_str("{}\n");
        }
    }
    out
}

async fn importing_a_capture_twice_stores_every_event_once(backend: Backend) {
    let frames = Generator::new(21).frames(2_000);
    let archive = Archive::new(backend).await;
    let file = archive.file("capture.ndjson");
    std::fs::write(&file, capture(&frames)).expect("write capture");
    let file = file.display().to_string();

    archive.run(&["import", &file]).await.assert_success();
    let again = archive.run(&["import", &file]).await;
    again.assert_success();

    assert_eq!(archive.events("default").await, expected(&frames));
    assert!(again.stderr.contains("events_stored=0"), "{}", again.stderr);
    let cluster = &archive.status().await.clusters[0];
    assert_eq!(cluster.checkpoint, frames.last().map(|f| f.index));
    assert!(cluster.gaps.is_empty());
}

async fn import_reads_standard_input_and_fills_history_behind_the_checkpoint(backend: Backend) {
    let frames = Generator::new(22).frames(1_000);
    let (old, new) = frames.split_at(frames.len() / 2);
    let archive = Archive::new(backend).await;
    let file = archive.file("new.ndjson");
    std::fs::write(&file, capture(new)).expect("write capture");
    archive
        .run(&["import", &file.display().to_string(), "--cluster", "prod"])
        .await
        .assert_success();

    let mut cmd = archive.command(&["import", "-", "--cluster", "prod"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(capture(old).as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    finish(child).await.assert_success();

    assert_eq!(archive.events("prod").await, expected(&frames));
    assert_eq!(
        archive.status().await.clusters[0].checkpoint,
        new.last().map(|f| f.index),
        "the checkpoint never moves backwards"
    );
}

async fn a_capture_cut_off_mid_line_keeps_everything_before_the_cut(backend: Backend) {
    let frames = Generator::new(23).frames(300);
    let mut text = capture(&frames);
    let partial = frames[0].to_line();
    text.push_str(&partial[..partial.len() / 2]);
    let archive = Archive::new(backend).await;
    let file = archive.file("cut.ndjson");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write capture");

    let run = archive.run(&["import", &file.display().to_string()]).await;

    run.assert_success();
    assert_eq!(archive.events("default").await, expected(&frames));
    assert!(run.stderr.contains("incomplete line"), "{}", run.stderr);
    assert_eq!(archive.status().await.clusters[0].malformed_lines, 1);
}

async fn a_capture_that_starts_after_the_archive_ends_is_a_gap(backend: Backend) {
    let frames = Generator::new(24).frames(600);
    let (first, second) = (&frames[..100], &frames[300..]);
    let archive = Archive::new(backend).await;
    for (name, part) in [("a.ndjson", first), ("b.ndjson", second)] {
        let file = archive.file(name);
        std::fs::write(&file, capture(part)).expect("write capture");
        archive
            .run(&["import", &file.display().to_string()])
            .await
            .assert_success();
    }

    let gaps = archive.status().await.clusters[0].gaps.clone();
    assert_eq!(gaps.len(), 1);
    assert_eq!(
        (gaps[0].from_index, gaps[0].to_index, gaps[0].kind),
        (first[99].index, second[0].index, GapKind::Buffer)
    );
}

async fn a_missing_capture_file_is_a_clear_error(backend: Backend) {
    let archive = Archive::new(backend).await;
    let run = archive
        .run(&["import", "/nonexistent/capture.ndjson"])
        .await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("cannot open capture `/nonexistent/capture.ndjson`"),
        "{}",
        run.stderr
    );
    assert!(
        !archive.path.exists(),
        "no archive is created for a failed import"
    );
}

/// Events with what a text format must escape: backslashes, quotes, escaped
/// and literal tabs, `\u` escapes (an accent, a surrogate pair, NUL, control
/// characters), raw UTF-8, whitespace between tokens; IDs with escapes too.
fn awkward_events() -> [String; 3] {
    [
        r#"{"Topic":"Job","Type":"JobRegistered","Key":"we\\b \"q\"","Namespace":"default","Index":10,"Payload":{"Job":{"ID":"we\\b \"q\"","Meta":{"path":"C:\\temp\\new\\","tab":"a\tb","uni":"caf\u00e9 \ud83d\ude00 \u0000 end","raw":"café 😀 — ünï","ctl":"\u001f\b\f\r\n\/"}}}}"#.to_owned(),
        "{\t\"Topic\" :\t\"Allocation\",  \"Type\":\"AllocationUpdated\",\"Key\":\"0b5e-\\u00e9\",\"Namespace\":\"default\",\"Index\":10,\"Payload\":{\"Allocation\":{\"ID\":\"0b5e-\\u00e9\",\"JobID\":\"we\\\\b \\\"q\\\"\",\"Name\":\"tab\\there\\t\"}}\t}".to_owned(),
        r#"{"Topic":"Node","Type":"NodeRegistration","Key":"n\u00f6de-1","Namespace":"","Index":11,"Payload":{"Node":{"ID":"n\u00f6de-1","Name":"back\\slash \"quoted\" 'single'","Attributes":{"emoji":"\ud83d\ude80🚀","percent":"100%","pipe":"a|b,c;d"}}}}"#.to_owned(),
    ]
}

async fn events_with_escapes_and_unicode_are_stored_byte_for_byte(backend: Backend) {
    let [job, alloc, node] = awkward_events();
    let first = format!("{{\"Index\":10,\"Events\":[{job},{alloc}]}}");
    let second = format!("{{\"Index\":11,\"Events\":[{node}]}}");
    // The first frame twice in one batch, as after a reconnect: stored once.
    let text = format!("{{}}\n{first}\n{first}\n{second}\n");
    let archive = Archive::new(backend).await;
    let file = archive.file("awkward.ndjson");
    std::fs::write(&file, text).expect("write capture");

    let run = archive.run(&["import", &file.display().to_string()]).await;

    run.assert_success();
    assert_eq!(
        archive.events("default").await,
        vec![(10, job), (10, alloc), (11, node)]
    );
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout, format!("{first}\n{second}\n"));
}

async fn a_capture_is_not_mixed_into_a_cluster_ingested_live_unless_its_label_is_named(
    backend: Backend,
) {
    let archive = Archive::new(backend).await;
    let sim = SimAt::roomy().await;
    let until = sim.publish(&mut Generator::new(24), 200).to_string();
    let address = sim.address.clone();
    archive
        .run(&[
            "ingest",
            "--address",
            &address,
            "--cluster",
            "default",
            "--until-index",
            &until,
            "--batch-interval",
            "50ms",
        ])
        .await
        .assert_success();
    let live = archive.events("default").await;
    let file = archive.file("other.ndjson");
    std::fs::write(&file, capture(&Generator::new(25).frames(100))).expect("write capture");
    let file = file.display().to_string();

    let refused = archive.run(&["import", &file]).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "error: the archive's cluster `default` was ingested live from Nomad at `{}/`, which reports region",
            address.trim_end_matches('/')
        )) && refused.stderr.contains(
            "a capture does not say which cluster it came from, so importing it there could mix \
             two clusters' histories, and nothing was imported (hint: if the capture is that \
             cluster's, name it: --cluster default; otherwise give it a label of its own: \
             --cluster <new label>)"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(
        archive.events("default").await,
        live,
        "nothing was imported"
    );

    archive
        .run(&["import", &file, "--cluster", "elsewhere"])
        .await
        .assert_success();
    archive
        .run(&["import", &file, "--cluster", "default"])
        .await
        .assert_success();
    assert!(archive.events("default").await.len() > live.len());
}

on_both_backends!(
    a_capture_is_not_mixed_into_a_cluster_ingested_live_unless_its_label_is_named,
    importing_a_capture_twice_stores_every_event_once,
    import_reads_standard_input_and_fills_history_behind_the_checkpoint,
    a_capture_cut_off_mid_line_keeps_everything_before_the_cut,
    a_capture_that_starts_after_the_archive_ends_is_a_gap,
    a_missing_capture_file_is_a_clear_error,
    events_with_escapes_and_unicode_are_stored_byte_for_byte,
);
