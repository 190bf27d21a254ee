//! How the command describes and installs itself: `--help` (environment
//! hints, the global options first), `--version`, shell completions, the
//! man page, and JSON logs.

use std::process::Command;

use nomad_sim::Generator;

use crate::common::{Archive, Backend, SimAt};

/// Every subcommand path whose help lists options.
const SUBCOMMANDS: &[&[&str]] = &[
    &["ingest"],
    &["import"],
    &["status"],
    &["query"],
    &["query", "events"],
    &["replay"],
    &["serve"],
];

/// The environment variables the options fall back to.
const ENV: &[&str] = &[
    "NOMAD_ADDR",
    "NOMAD_TOKEN",
    "NOMAD_REGION",
    "NOMAD_NAMESPACE",
    "NOMAD_CACERT",
    "NOMAD_CLIENT_CERT",
    "NOMAD_CLIENT_KEY",
    "NOMAD_TLS_SERVER_NAME",
    "NOMAD_SKIP_VERIFY",
    "NOMAD_CHRONICLE_DB",
];

/// The binary with none of [`ENV`] set, and `set` set.
fn binary(args: &[&str], set: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nomad-chronicle"));
    command.args(args);
    for name in ENV {
        command.env_remove(name);
    }
    command.envs(set.iter().copied());
    let output = command.output().expect("run nomad-chronicle");
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The long option names in an Options section, in order.
fn options(help: &str) -> Vec<&str> {
    help.lines()
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(','))
        .collect()
}

#[test]
fn unset_environment_variables_are_named_without_a_value() {
    let help = binary(&["ingest", "--help"], &[]);
    for name in [
        "NOMAD_ADDR",
        "NOMAD_REGION",
        "NOMAD_NAMESPACE",
        "NOMAD_CACERT",
    ] {
        assert!(help.contains(&format!("[env: {name}]")), "{name} in {help}");
    }
    assert!(!help.contains("=]"), "{help}");

    let set = binary(
        &["ingest", "--help"],
        &[("NOMAD_ADDR", "http://nomad.internal:4646")],
    );
    assert!(
        set.contains("[env: NOMAD_ADDR=http://nomad.internal:4646]"),
        "{set}"
    );
}

#[test]
fn a_secret_in_the_environment_is_never_shown() {
    let help = binary(
        &["ingest", "--help"],
        &[
            ("NOMAD_TOKEN", "the-secret-token"),
            ("NOMAD_CHRONICLE_DB", "postgres://u:the-password@db/x"),
        ],
    );
    assert!(help.contains("[env: NOMAD_TOKEN]"), "{help}");
    assert!(help.contains("[env: NOMAD_CHRONICLE_DB]"), "{help}");
    assert!(!help.contains("the-secret-token") && !help.contains("the-password"));
}

#[test]
fn the_global_options_are_listed_once_and_first_in_every_subcommand() {
    for path in SUBCOMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let help = binary(&args, &[]);
        let listed = options(&help);
        assert_eq!(
            listed.first().copied(),
            Some("--db"),
            "{path:?}: {listed:?}"
        );
        assert_eq!(listed.get(1).copied(), Some("--log-format"), "{path:?}");
        let times = listed.iter().filter(|o| **o == "--db").count();
        assert_eq!(times, 1, "{path:?}: {listed:?}");
    }
}

#[test]
fn the_version_names_the_archive_schema_it_writes() {
    let newest = std::fs::read_dir("migrations/postgres")
        .expect("migrations")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.split('_').next()?.parse::<u32>().ok()
        })
        .max()
        .expect("a migration");
    assert_eq!(
        binary(&["--version"], &[]),
        format!(
            "nomad-chronicle {} (archive schema {newest})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn completions_cover_every_subcommand_and_option_in_each_shell() {
    let bash = binary(&["completions", "bash"], &[]);
    let registered = Command::new("bash")
        .args([
            "-c",
            "eval \"$1\"; complete -p nomad-chronicle",
            "bash",
            &bash,
        ])
        .output()
        .expect("run bash");
    let registered = String::from_utf8_lossy(&registered.stdout);
    assert!(
        registered.contains("-F _nomad__chronicle nomad-chronicle"),
        "{registered}"
    );
    let zsh = binary(&["completions", "zsh"], &[]);
    assert!(zsh.starts_with("#compdef nomad-chronicle"), "{zsh}");
    let fish = binary(&["completions", "fish"], &[]);
    assert!(fish.contains("complete -c nomad-chronicle"), "{fish}");
    for script in [&bash, &zsh, &fish] {
        for word in ["ingest", "serve", "listen", "log-format", "completions"] {
            assert!(script.contains(word), "{word}");
        }
    }
}

#[test]
fn the_man_page_is_roff_describing_the_subcommands() {
    let page = binary(&["man"], &[]);
    assert!(page.contains(".TH nomad-chronicle 1"), "{page}");
    for word in ["ingest", "import", "serve", "NOMAD_CHRONICLE_DB"] {
        assert!(page.contains(word), "{word}");
    }
    let ingest = binary(&["man", "ingest"], &[]);
    assert!(ingest.contains(".TH nomad-chronicle-ingest 1"), "{ingest}");
    for option in ["listen", "NOMAD_ADDR", "until\\-index"] {
        assert!(ingest.contains(option), "{option} in {ingest}");
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let sim = SimAt::roomy().await;
    let last = sim.publish(&mut Generator::new(33), 50);
    let archive = Archive::new(Backend::Sqlite).await;

    let run = archive
        .ingest_until(&sim, last, &["--log-format", "json"])
        .await;

    run.assert_success();
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    let stopped = lines
        .iter()
        .find(|l| l["message"] == "Stopped")
        .expect("the Stopped line");
    assert_eq!(stopped["level"], "INFO");
    assert_eq!(stopped["last_index"], last);
    assert_eq!(stopped["reason"], "until-index reached");
}

#[tokio::test]
async fn with_json_logs_the_error_that_ends_the_run_is_a_json_line_too() {
    let archive = Archive::new(Backend::Sqlite).await;

    let run = archive
        .run(&[
            "--log-format",
            "json",
            "ingest",
            "--address",
            "http://127.0.0.1:4646",
            "--from-index",
            "5",
            "--db",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let last: serde_json::Value = run
        .stderr
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("not a JSON line: {}", run.stderr));
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["message"], "Stopped with an error");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1:1")),
        "{last}"
    );
}
