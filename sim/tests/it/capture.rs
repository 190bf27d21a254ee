//! `nomad-sim capture`, run as its users run it.

use std::process::Command;

/// The frame lines of `nomad-sim capture` with `args` (heartbeats left out).
fn frames(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_nomad-sim"))
        .arg("capture")
        .args(args)
        .output()
        .expect("run nomad-sim capture");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| *l != "{}")
        .map(str::to_owned)
        .collect()
}

fn frame(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("a frame")
}

fn index(line: &str) -> u64 {
    frame(line)["Index"].as_u64().expect("an index")
}

fn events(line: &str) -> usize {
    frame(line)["Events"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_capture_after_an_index_continues_the_same_history_from_the_next_frame() {
    let whole = frames(&["--events", "3000", "--seed", "7"]);
    let after = index(&whole[40]).to_string();
    let rest = frames(&["--events", "1000", "--seed", "7", "--after-index", &after]);
    assert!(!rest.is_empty());
    assert_eq!(rest[..], whole[41..41 + rest.len()]);
    // `--events` counts only the frames written: the last one reaches 1,000.
    let written: usize = rest.iter().map(|l| events(l)).sum();
    let before_last = written - events(&rest[rest.len() - 1]);
    assert!(written >= 1000 && before_last < 1000, "{written} events");
}
