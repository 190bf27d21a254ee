//! Blocks of older events (`compact --pack-older-than`, migration 0032): a
//! packed archive replays and streams byte for byte and answers every query
//! as before; the hot window stays a frame per event; a damaged or missing
//! block is an error naming the event; a prune deletes the blocks it
//! empties; packing again packs only what is new.

use nomad_chronicle::store::compress::Settings;

use crate::common::{Archive, Backend, SimAt, batch, on_both_backends};
use crate::compression::{
    TWO_DICTIONARIES, answers, archived, lines, scalar, served, stored_bytes, training_early, value,
};

/// Events packed, and the blocks they are packed into.
async fn packed(archive: &Archive) -> (i64, i64) {
    let events = scalar(
        archive,
        "SELECT COUNT(*) FROM event_log WHERE block_id IS NOT NULL",
    )
    .await;
    let blocks = scalar(archive, "SELECT COUNT(*) FROM event_blocks").await;
    (events, blocks)
}

async fn pack(archive: &Archive, age: &str) {
    archive
        .run(&["compact", "--pack-older-than", age])
        .await
        .assert_success();
}

/// The bytes the events take as stored: their rows' values and the blocks.
async fn event_bytes(archive: &Archive) -> i64 {
    let blocks = scalar(
        archive,
        "SELECT CAST(COALESCE(SUM(length(bytes)), 0) AS BIGINT) FROM event_blocks",
    )
    .await;
    stored_bytes(archive).await + blocks
}

async fn a_packed_archive_replays_byte_for_byte_and_answers_as_before(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 71, 3_000, training_early(), &[TWO_DICTIONARIES]).await;
    let before = answers(&archive, &history).await;
    let bytes_before = event_bytes(&archive).await;
    let total = scalar(&archive, "SELECT COUNT(*) FROM event_log").await;
    let file_before = std::fs::metadata(&archive.path).map(|m| m.len()).ok();

    pack(&archive, "0s").await;

    // SQLite: the rows moved out of the old pages, which went back to the
    // file system without a VACUUM.
    if let (Some(before), Ok(after)) = (file_before, std::fs::metadata(&archive.path)) {
        assert!(
            after.len() * 10 < before * 7,
            "{} bytes, {before} before",
            after.len()
        );
    }

    let (events, blocks) = packed(&archive).await;
    assert_eq!(events, total);
    assert!(blocks >= 2, "{blocks} blocks");
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&history));
    assert_eq!(answers(&archive, &history).await, before);
    assert_eq!(served(&archive, history.len()).await, lines(&history));
    // The frames per event took more than twice what the blocks take.
    let bytes_after = event_bytes(&archive).await;
    assert!(
        bytes_after * 2 < bytes_before,
        "{bytes_after} bytes, {bytes_before} before"
    );
    // SQL sees no JSON for a packed event.
    let shown = "SELECT COUNT(*) FROM events WHERE event IS NOT NULL";
    assert_eq!(scalar(&archive, shown).await, 0);
    // Compressing again leaves packed events alone.
    archive
        .run(&["compact", "--train-after", "200"])
        .await
        .assert_success();
    let recompressed = "SELECT COUNT(*) FROM event_log WHERE dictionary_id IS NOT NULL";
    assert_eq!(scalar(&archive, recompressed).await, 0);
    assert_eq!(event_bytes(&archive).await, bytes_after);
}

async fn the_hot_window_keeps_a_frame_per_event(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived(&archive, 82, 2_000, training_early(), &[]).await;
    let total = scalar(&archive, "SELECT COUNT(*) FROM event_log").await;
    let middle = format!(
        "SELECT event_at FROM event_log ORDER BY raft_index, position LIMIT 1 OFFSET {}",
        total / 2
    );
    let cut = scalar(&archive, &middle).await;
    let age_ms = nomad_chronicle::archive::now_millis() - cut;
    pack(&archive, &format!("{age_ms}ms")).await;

    // The packed events come first in the stream, and the hot window
    // starts at an event dated at or after the cut.
    let packed_last = "SELECT MAX(raft_index) FROM event_log WHERE block_id IS NOT NULL";
    let hot_first = "SELECT MIN(raft_index) FROM event_log WHERE block_id IS NULL";
    let (packed_last, hot_first) = (
        scalar(&archive, packed_last).await,
        scalar(&archive, hot_first).await,
    );
    assert!(packed_last < hot_first, "{packed_last} {hot_first}");
    let dated = format!(
        "SELECT MIN(event_at) FROM event_log WHERE raft_index = {hot_first} AND block_id IS NULL"
    );
    assert!(scalar(&archive, &dated).await >= cut);
    let (events, _) = packed(&archive).await;
    assert!(
        events > total / 3 && events < total * 2 / 3,
        "{events} of {total}"
    );
}

/// The first event of block `id`: its index, topic and key.
async fn first_of_block(archive: &Archive, id: i64) -> (i64, String, String) {
    let first = format!(
        "FROM event_log AS e JOIN names AS k ON k.id = e.key_ref WHERE e.block_id = {id} \
         ORDER BY e.raft_index, e.position LIMIT 1"
    );
    let index = scalar(archive, &format!("SELECT e.raft_index {first}")).await;
    let topic = value(archive, &format!("SELECT e.topic {first}")).await;
    let key = value(archive, &format!("SELECT k.name {first}")).await;
    (index, topic, key)
}

async fn a_damaged_block_is_an_error_naming_the_event(backend: Backend) {
    let archive = Archive::new(backend).await;
    archived(&archive, 83, 1_500, Settings::plain(), &[]).await;
    pack(&archive, "0s").await;
    let id = scalar(&archive, "SELECT MIN(id) FROM event_blocks").await;
    let (index, topic, key) = first_of_block(&archive, id).await;
    let damage = match backend {
        Backend::Sqlite => format!(
            "UPDATE event_blocks SET bytes = substr(bytes, 1, 40) || X'5A' || substr(bytes, 42) \
             WHERE id = {id}"
        ),
        Backend::Postgres => format!(
            "UPDATE event_blocks SET bytes = overlay(bytes PLACING '\\x5a'::bytea FROM 41 FOR 1) \
             WHERE id = {id}"
        ),
    };
    archive.execute(&[&damage]).await;

    let run = archive.run(&["replay"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let want = format!(
        "error: cannot read the event at index `{index}` of cluster `test` (topic `{topic}`, key `{key}`): the stored value is damaged (its block"
    );
    assert!(run.stderr.starts_with(&want), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // `query events` first reads newest first, to find where its newest
    // events start: it names an event of the same block, the first it
    // decodes.
    let run = archive.run(&["query", "events"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let named = run
        .stderr
        .strip_prefix("error: cannot read the event at index `")
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_default();
    let in_block =
        format!("SELECT COUNT(*) FROM event_log WHERE block_id = {id} AND raft_index = {named}");
    assert!(scalar(&archive, &in_block).await > 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("is damaged (its block"),
        "{}",
        run.stderr
    );
}

async fn a_missing_block_is_an_error_naming_the_event(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 84, 1_500, Settings::plain(), &[]).await;
    pack(&archive, "0s").await;
    let id = scalar(&archive, "SELECT MAX(id) FROM event_blocks").await;
    let (index, topic, key) = first_of_block(&archive, id).await;
    archive
        .execute(&[&format!("DELETE FROM event_blocks WHERE id = {id}")])
        .await;

    let want = format!(
        "error: cannot read the event at index `{index}` of cluster `test` (topic `{topic}`, key `{key}`): \
         its block `{id}` is not in the archive's `event_blocks` table; \
         if a prune was running, run the command again; else restore the archive from a copy"
    );
    let run = archive.run(&["replay"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stderr.trim_end(), want);
    // A snapshot streams its objects: one in the missing block is the same
    // error.
    let last = history.last().map(|f| f.index).unwrap_or_default();
    let run = archive
        .run(&["query", "snapshot", "--at-index", &last.to_string()])
        .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("its block `"), "{}", run.stderr);
}

async fn a_prune_deletes_the_blocks_it_empties_and_answers_as_without_blocks(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 85, 3_000, Settings::plain(), &[]).await;
    let plain = Archive::new(backend).await;
    archived(&plain, 85, 3_000, Settings::plain(), &[]).await;
    // Blocks of a few events, so that the prune empties some.
    archive
        .run(&[
            "compact",
            "--pack-older-than",
            "0s",
            "--block-bytes",
            "16384",
        ])
        .await
        .assert_success();
    let blocks = packed(&archive).await.1;

    let cut = history[history.len() / 2].index.to_string();
    for a in [&archive, &plain] {
        a.run(&["prune", "--before-index", &cut])
            .await
            .assert_success();
    }

    let left = packed(&archive).await.1;
    assert!(left < blocks, "{left} blocks left of {blocks}");
    let empty = "SELECT COUNT(*) FROM event_blocks AS b WHERE NOT EXISTS \
                 (SELECT 1 FROM event_log AS e WHERE e.block_id = b.id)";
    assert_eq!(scalar(&archive, empty).await, 0);
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout, plain.run(&["replay"]).await.stdout);
    // The two prunes ran at different moments, which the answers name.
    let kept = &history[history.len() / 2..];
    let when = |answers: Vec<String>| -> Vec<String> {
        answers.iter().map(|a| without_detected_at(a)).collect()
    };
    assert_eq!(
        when(answers(&archive, kept).await),
        when(answers(&plain, kept).await)
    );
}

/// `text` with the value of each `"DetectedAt"` left out.
fn without_detected_at(text: &str) -> String {
    let key = "\"DetectedAt\":\"";
    let mut parts = text.split(key);
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        out.push_str(key);
        out.push_str(part.split_once('"').map_or(part, |(_, rest)| rest));
    }
    out
}

async fn packing_again_packs_only_what_arrived_since(backend: Backend) {
    let archive = Archive::new(backend).await;
    let history = archived(&archive, 86, 1_500, Settings::plain(), &[]).await;
    pack(&archive, "0s").await;
    let first = packed(&archive).await;
    pack(&archive, "0s").await;
    assert_eq!(packed(&archive).await, first);

    let more = nomad_sim::Generator::new(86).frames(2_500);
    let newer: Vec<_> = more
        .into_iter()
        .filter(|f| f.index > history.last().map(|l| l.index).unwrap_or_default())
        .collect();
    assert!(!newer.is_empty());
    let (store, cluster, mut lease) = archive.writer_with("test", Settings::plain()).await;
    for chunk in newer.chunks(20) {
        lease
            .commit(&cluster, &batch(chunk, 1_000))
            .await
            .expect("commit");
    }
    drop(lease);
    store.close().await;
    pack(&archive, "0s").await;

    let (events, blocks) = packed(&archive).await;
    assert!(
        events > first.0 && blocks > first.1,
        "{events} {blocks} {first:?}"
    );
    let all: Vec<_> = history.iter().chain(&newer).cloned().collect();
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    assert_eq!(replay.stdout.lines().collect::<Vec<_>>(), lines(&all));
}

async fn ingest_packs_the_history_older_than_its_age(backend: Backend) {
    let sim = SimAt::roomy().await;
    let mut generator = nomad_sim::Generator::new(87);
    let old: Vec<_> = (0..600).map(|_| generator.next_frame()).collect();
    for frame in &old {
        sim.sim.publish(frame.clone());
    }
    let archive = Archive::new(backend).await;
    let old_last = old.last().map_or(0, |f| f.index);
    archive
        .ingest_until(&sim, old_last, &[])
        .await
        .assert_success();
    // What was archived happened 60 days ago, by Nomad's clock.
    archive
        .execute(&["UPDATE event_log SET event_at = event_at - 5184000000"])
        .await;
    let new: Vec<_> = (0..300).map(|_| generator.next_frame()).collect();
    for frame in &new {
        sim.sim.publish(frame.clone());
    }
    let last = new.last().map_or(0, |f| f.index);
    let run = archive
        .ingest_until(&sim, last, &["--pack-older-than", "30d"])
        .await;
    run.assert_success();
    assert!(
        run.stderr.contains("Packed history into blocks"),
        "{}",
        run.stderr
    );

    let packed_new = format!(
        "SELECT COUNT(*) FROM event_log WHERE block_id IS NOT NULL AND raft_index > {old_last}"
    );
    assert_eq!(scalar(&archive, &packed_new).await, 0);
    // The check packs whole blocks and leaves the rest of the old history,
    // less than a block, for a later one; `compact` packs it.
    let unpacked_old = format!(
        "SELECT COUNT(*) FROM event_log WHERE block_id IS NULL AND raft_index <= {old_last}"
    );
    let (packed_old, left) = (
        packed(&archive).await.0,
        scalar(&archive, &unpacked_old).await,
    );
    assert!(
        packed_old > 0 && left < packed_old,
        "{packed_old} packed, {left} left"
    );
    // The new history is dated months before today by Nomad's clock: pack
    // what lies a day before its first event.
    let first_new = format!(
        "SELECT MIN(event_at) FROM event_log WHERE raft_index > {old_last} \
         AND time_source = 'nomad'"
    );
    let first_new = scalar(&archive, &first_new).await;
    let age = nomad_chronicle::archive::now_millis() - (first_new - 86_400_000);
    pack(&archive, &format!("{age}ms")).await;
    assert_eq!(scalar(&archive, &unpacked_old).await, 0);
    assert_eq!(scalar(&archive, &packed_new).await, 0);
    let all: Vec<_> = old.iter().chain(&new).cloned().collect();
    let replay = archive.run(&["replay"]).await;
    replay.assert_success();
    let replayed: Vec<&str> = replay.stdout.lines().collect();
    assert_eq!(
        replayed,
        lines(&all).iter().map(String::as_str).collect::<Vec<_>>()
    );
}

on_both_backends!(
    ingest_packs_the_history_older_than_its_age,
    a_packed_archive_replays_byte_for_byte_and_answers_as_before,
    the_hot_window_keeps_a_frame_per_event,
    a_damaged_block_is_an_error_naming_the_event,
    a_missing_block_is_an_error_naming_the_event,
    a_prune_deletes_the_blocks_it_empties_and_answers_as_without_blocks,
    packing_again_packs_only_what_arrived_since,
);
