//! A PostgreSQL server for the tests: `NOMAD_CHRONICLE_TEST_PG` (an admin URL)
//! when set, otherwise a throwaway server started from the installed binaries
//! (initdb and pg_ctl into a temporary directory, on a free loopback port).
//! Without PostgreSQL the PostgreSQL tests are skipped loudly — except under
//! `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser password of throwaway servers (they listen on loopback only).
pub const PASSWORD: &str = "chronicle";

/// A throwaway server; stopped when dropped, and by a watchdog if the test
/// process dies first.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgServer {
    /// Creates a cluster and starts it. `Err` says why it could not.
    pub fn start() -> Result<PgServer, String> {
        let bin = find_bin().ok_or("no PostgreSQL binaries (initdb) found")?;
        let dir = tempfile::Builder::new()
            .prefix("nc-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
        if running_as_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()))?;
        }
        run(as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--auth-local=trust",
            ])
            .arg("--auth-host=scram-sha-256")
            .arg(format!("--pwfile={}", pwfile.display())))?;
        let port = free_port()?;
        let server = PgServer { dir, bin, port };
        server.start_again()?;
        server.watchdog();
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -h 127.0.0.1 -F -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        run(as_postgres(&self.bin.join("pg_ctl"))
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log")))
    }

    /// Stops the server, disconnecting every client.
    pub fn stop(&self) -> Result<(), String> {
        run(as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(self.data()))
    }

    /// The superuser's URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Stops the server and removes its files when this test process is
    /// gone, however it ended (the shared server lives in a static, which is
    /// never dropped, so its `TempDir` would stay behind: ~1 GB a run).
    fn watchdog(&self) {
        let script = r#"while [ -d "/proc/$0" ]; do sleep 1; done; "$1" stop -m immediate -D "$2" >/dev/null 2>&1; rm -rf "$3""#;
        let _ = as_postgres(Path::new("sh"))
            .arg("-c")
            .arg(script)
            .arg(std::process::id().to_string())
            .arg(self.bin.join("pg_ctl"))
            .arg(self.data())
            .arg(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = run(as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data()));
    }
}

/// The admin URL of the server shared by all tests, or `None` when
/// PostgreSQL is not available (and not required).
pub fn shared_admin_url() -> Option<&'static str> {
    static SHARED: OnceLock<Option<(String, Option<PgServer>)>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Ok(url) = std::env::var("NOMAD_CHRONICLE_TEST_PG") {
                return Some((url, None));
            }
            match PgServer::start() {
                Ok(server) => Some((server.url("postgres"), Some(server))),
                Err(why) => {
                    assert!(
                        std::env::var("CI").as_deref() != Ok("true"),
                        "PostgreSQL tests cannot run under CI=true: {why}; install postgresql or set NOMAD_CHRONICLE_TEST_PG"
                    );
                    eprintln!(
                        "\n*** SKIPPING PostgreSQL tests: {why}. Install PostgreSQL (apt-get install postgresql) \
                         or set NOMAD_CHRONICLE_TEST_PG=postgres://USER:PASSWORD@HOST/DB ***\n"
                    );
                    None
                }
            }
        })
        .as_ref()
        .map(|(url, _)| url.as_str())
}

/// Creates an empty database on the shared server and returns its URL.
pub async fn fresh_database() -> String {
    use sqlx::Connection;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = shared_admin_url().expect("PostgreSQL is available");
    let name = format!(
        "nc_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect as admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    with_database(admin, &name)
}

/// `url` with its database replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("a valid PostgreSQL URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("NOMAD_CHRONICLE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root; the Debian package's `postgres` user runs it.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
