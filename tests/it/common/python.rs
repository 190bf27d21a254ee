//! A Python with the `python-nomad` package, for testing `serve` with a real
//! third-party client: `NOMAD_CHRONICLE_TEST_PYTHON` when set, otherwise a
//! virtual environment created once under the target directory. Without
//! Python or PyPI the test is skipped loudly — except under `CI=true`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The version the test was written against.
const PYTHON_NOMAD: &str = "python-nomad==2.1.0";

pub fn with_python_nomad() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(python) = std::env::var("NOMAD_CHRONICLE_TEST_PYTHON") {
                return Some(PathBuf::from(python));
            }
            match venv() {
                Ok(python) => Some(python),
                Err(why) => {
                    assert!(
                        std::env::var("CI").as_deref() != Ok("true"),
                        "the python-nomad test cannot run under CI=true: {why}"
                    );
                    eprintln!("\n*** SKIPPING the python-nomad test: {why} ***\n");
                    None
                }
            }
        })
        .clone()
}

fn venv() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-nomad-venv");
    let python = dir.join("bin").join("python");
    let ready = dir.join("ready");
    if ready.exists() {
        return Ok(python);
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PYTHON_NOMAD,
    ]))?;
    std::fs::write(&ready, PYTHON_NOMAD).map_err(|e| e.to_string())?;
    Ok(python)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
