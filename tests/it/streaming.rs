//! Answers are streamed: `query events --limit 1000000 --output json` over
//! an archive of 200,000 events writes them all while its resident set
//! stays under 100 MB (holding the answer whole took gigabytes).

use std::fmt;
use std::io::{BufWriter, Write};
use std::process::Stdio;
use std::time::Duration;

use nomad_sim::Generator;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::common::{Archive, Backend, on_both_backends};

/// Events in the archive.
const EVENTS: usize = 200_000;

/// The most a streamed answer may keep resident, in kB.
const PEAK_RSS_KB: u64 = 100 * 1024;

/// The kernel's high-water mark of a process's resident set, in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Counts the `Events` of a `query events` document without keeping them.
struct CountEvents;

impl<'de> Visitor<'de> for CountEvents {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a query events document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut count = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "Events" => count = Some(map.next_value_seed(CountSeq)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        count.ok_or_else(|| de::Error::missing_field("Events"))
    }
}

/// Counts a list's elements, each parsed and dropped.
struct CountSeq;

impl<'de> de::DeserializeSeed<'de> for CountSeq {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CountSeq {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

/// Writes a capture of `EVENTS` events: a generated history of a tenth of
/// that, repeated at ever higher indexes (generating is the slow part).
fn capture(archive: &Archive) -> String {
    let frames = Generator::new(97).frames(EVENTS / 10);
    let span = frames.last().map_or(1, |f| f.index + 1);
    let path = archive.file("big.ndjson");
    let file = std::fs::File::create(&path).expect("create capture");
    let mut out = BufWriter::new(file);
    let (mut events, mut round) = (0, 0);
    while events < EVENTS {
        for frame in &frames {
            if events >= EVENTS {
                break;
            }
            let mut frame = frame.clone();
            let index = frame.index + round * span;
            for event in &mut frame.events {
                let from = format!("\"Index\":{}", event.index);
                event.json = event.json.replacen(&from, &format!("\"Index\":{index}"), 1);
                event.index = index;
            }
            frame.index = index;
            events += frame.events.len();
            writeln!(out, "{}", frame.to_line()).expect("write capture");
        }
        round += 1;
    }
    out.flush().expect("flush capture");
    path.display().to_string()
}

/// Runs `command` to completion, however long that takes on a busy machine.
async fn run_long(mut command: tokio::process::Command) -> std::process::ExitStatus {
    let child = command.stdout(Stdio::null()).spawn().expect("spawn");
    let output = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .expect("finished within 10 minutes")
        .expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.status
}

async fn a_million_event_json_answer_is_written_in_bounded_memory(backend: Backend) {
    let archive = Archive::new(backend).await;
    let file = capture(&archive);
    run_long(archive.command(&["import", &file])).await;
    let _ = std::fs::remove_file(&file);

    let answer = archive.file("answer.json");
    let mut child = archive
        .command(&["query", "events", "--limit", "1000000", "--output", "json"])
        .stdout(std::fs::File::create(&answer).expect("answer file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("query");
    let pid = child.id().expect("pid");
    let mut peak = 0;
    // The high-water mark only grows: the last reading before the exit
    // is the peak (an answer held whole peaks before it is written).
    let status = loop {
        peak = peak.max(peak_rss_kb(pid).unwrap_or(0));
        match tokio::time::timeout(Duration::from_millis(10), child.wait()).await {
            Ok(status) => break status.expect("wait for query"),
            Err(_) => continue,
        }
    };
    assert!(status.success(), "query events failed: {status}");

    let reader = std::io::BufReader::new(std::fs::File::open(&answer).expect("answer"));
    let mut document = serde_json::Deserializer::from_reader(reader);
    let count = document
        .deserialize_map(CountEvents)
        .expect("one JSON document");
    let archived = archive.status().await.clusters[0].events as usize;
    assert_eq!(count, archived, "every archived event is written");
    assert!(count >= EVENTS);
    assert!(
        peak > 0 && peak < PEAK_RSS_KB,
        "peak RSS {peak} kB for {count} events"
    );
}

on_both_backends!(a_million_event_json_answer_is_written_in_bounded_memory);
