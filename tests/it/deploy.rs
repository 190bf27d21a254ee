//! The deployment files in deploy/: the Nomad job and its ACL policy parse,
//! the job's flags are the binary's own, and the systemd unit verifies.

use std::path::Path;
use std::process::Command;

use hcl::{Block, Body, Expression, TemplateExpr};

fn parse(path: &str) -> Body {
    let text = std::fs::read_to_string(path).expect("read the file");
    hcl::parse(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

/// The blocks named `identifier` in `body`.
fn blocks<'a>(body: &'a Body, identifier: &str) -> Vec<&'a Block> {
    body.blocks()
        .filter(|b| b.identifier() == identifier)
        .collect()
}

/// The one block named `identifier` in `body`.
fn block<'a>(body: &'a Body, identifier: &str) -> &'a Body {
    let found = blocks(body, identifier);
    assert_eq!(found.len(), 1, "one `{identifier}` block");
    found[0].body()
}

fn attribute<'a>(body: &'a Body, key: &str) -> &'a Expression {
    body.attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr())
        .unwrap_or_else(|| panic!("no `{key}` attribute"))
}

/// A string or template's text.
fn text(expr: &Expression) -> String {
    match expr {
        Expression::String(s) => s.clone(),
        Expression::TemplateExpr(t) => match t.as_ref() {
            TemplateExpr::QuotedString(s) => s.clone(),
            TemplateExpr::Heredoc(h) => h.template.clone(),
        },
        other => panic!("not a string: {other:?}"),
    }
}

/// The long options `nomad-chronicle ingest --help` lists.
fn ingest_options() -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_nomad-chronicle"))
        .args(["ingest", "--help"])
        .output()
        .expect("run nomad-chronicle");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.starts_with("--"))
        .map(|word| word.trim_end_matches(',').to_owned())
        .map(|word| word.split(['[', '=']).next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_nomad_job_runs_ingest_with_flags_the_binary_has() {
    let file = parse("deploy/nomad/nomad-chronicle.nomad.hcl");
    let job = blocks(&file, "job");
    assert_eq!(job.len(), 1);
    assert_eq!(job[0].labels()[0].as_str(), "nomad-chronicle");
    let job = job[0].body();
    assert_eq!(text(attribute(job, "type")), "service");
    let group = block(job, "group");
    let check = block(block(group, "service"), "check");
    assert_eq!(text(attribute(check, "path")), "/readyz");
    assert_eq!(
        text(attribute(
            block(block(group, "service"), "meta"),
            "metrics_path"
        )),
        "/metrics"
    );
    let task = block(group, "task");
    assert_eq!(
        attribute(block(task, "identity"), "env"),
        &Expression::Bool(true)
    );
    let template = text(attribute(block(task, "template"), "data"));
    assert!(template.contains("nomadVar \"nomad/jobs/nomad-chronicle\""));
    assert!(template.contains("NOMAD_CHRONICLE_DB="));

    let Expression::Array(args) = attribute(block(task, "config"), "args") else {
        panic!("args is not a list");
    };
    let args: Vec<String> = args.iter().map(text).collect();
    assert_eq!(args[0], "ingest");
    let known = ingest_options();
    let flags: Vec<&String> = args.iter().filter(|a| a.starts_with("--")).collect();
    for flag in &flags {
        assert!(
            known.contains(flag),
            "{flag} is not in ingest --help: {known:?}"
        );
    }
    for needed in ["--listen", "--cluster", "--topic"] {
        assert!(flags.iter().any(|f| *f == needed), "{needed}");
    }
}

#[test]
fn the_acl_policy_reads_only_what_ingest_needs() {
    let policy = parse("deploy/nomad/policy.hcl");
    let namespaces = blocks(&policy, "namespace");
    assert_eq!(namespaces.len(), 1);
    assert_eq!(namespaces[0].labels()[0].as_str(), "*");
    let Expression::Array(capabilities) = attribute(namespaces[0].body(), "capabilities") else {
        panic!("capabilities is not a list");
    };
    let capabilities: Vec<String> = capabilities.iter().map(text).collect();
    assert_eq!(capabilities, ["list-jobs", "read-job"]);
    assert_eq!(text(attribute(block(&policy, "node"), "policy")), "read");
    let kinds: Vec<&str> = policy.blocks().map(|b| b.identifier()).collect();
    assert_eq!(kinds, ["namespace", "node"], "nothing else is granted");
}

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = which("systemd-analyze") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing; .ci/run installs it"
        );
        eprintln!("SKIPPED the_systemd_unit_verifies: systemd-analyze is not installed");
        return;
    };
    let unit = std::fs::read_to_string("deploy/systemd/nomad-chronicle.service").expect("unit");
    for setting in [
        "DynamicUser=yes",
        "StateDirectory=nomad-chronicle",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "EnvironmentFile=/etc/nomad-chronicle/nomad-chronicle.env",
        "ExecStart=/usr/local/bin/nomad-chronicle ingest --listen 127.0.0.1:9464",
    ] {
        assert!(unit.lines().any(|l| l == setting), "{setting}");
    }
    // verify checks that ExecStart's binary exists: point it at this build.
    let dir = tempfile::tempdir().expect("temporary directory");
    let copy = dir.path().join("nomad-chronicle.service");
    let built = unit.replace(
        "/usr/local/bin/nomad-chronicle",
        env!("CARGO_BIN_EXE_nomad-chronicle"),
    );
    std::fs::write(&copy, built).expect("write the unit");
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("nomad-chronicle"))
        .collect();
    assert!(output.status.success(), "{stderr}");
    assert!(ours.is_empty(), "systemd-analyze verify warns: {ours:#?}");
}

/// The program's path when it is on `PATH`.
fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| Path::new(candidate).is_file())
}
