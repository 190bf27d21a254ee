//! A PostgreSQL server for the tests and the benchmarks: a throwaway server
//! started from the installed binaries (initdb and pg_ctl into a temporary
//! directory, on a free loopback port, as the `postgres` user when run as
//! root), and the admin statements both need. For the tests, the shared
//! server is `NOMAD_CHRONICLE_TEST_PG` (an admin URL) when set; without
//! PostgreSQL the PostgreSQL tests are skipped loudly — except under
//! `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

/// The superuser password of throwaway servers (they listen on loopback only).
pub const PASSWORD: &str = "chronicle";

/// How a throwaway server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` and `synchronous_commit` off: tests, where speed matters and
    /// a crash of the machine loses nothing anyone keeps.
    Fast,
    /// PostgreSQL's stock settings, as an operator runs it: benchmarks.
    Stock,
}

/// A server of our own; stopped when dropped, and by a watchdog if the
/// process dies first, and then removed unless it is kept.
pub struct PgServer {
    /// The cluster's directory: its data, socket, password file and log.
    root: PathBuf,
    /// The temporary directory `root` is, removed after the server stops;
    /// `None` for a kept cluster.
    temp: Option<tempfile::TempDir>,
    bin: PathBuf,
    durability: Durability,
    pub port: u16,
}

impl PgServer {
    /// Creates a cluster in a temporary directory and starts it. `Err` says
    /// why it could not.
    pub fn start() -> Result<PgServer, String> {
        PgServer::start_in(&std::env::temp_dir(), Durability::Fast)
    }

    /// Creates a cluster in a temporary directory under `parent` and starts it.
    pub fn start_in(parent: &Path, durability: Durability) -> Result<PgServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("nc-pg-")
            .tempdir_in(parent)
            .map_err(|e| format!("cannot create a directory under {parent:?}: {e}"))?;
        PgServer::start_at(dir.path().to_owned(), Some(dir), durability)
    }

    /// Starts the cluster kept in `dir`, creating it there first when there
    /// is none; the server stops with this process, its files stay for the
    /// next one (benchmarks that reuse a large archive).
    pub fn start_kept(dir: &Path, durability: Durability) -> Result<PgServer, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let root = dir
            .canonicalize()
            .map_err(|e| format!("cannot resolve {dir:?}: {e}"))?;
        PgServer::start_at(root, None, durability)
    }

    fn start_at(
        root: PathBuf,
        temp: Option<tempfile::TempDir>,
        durability: Durability,
    ) -> Result<PgServer, String> {
        let bin = find_bin().ok_or("no PostgreSQL server binaries (initdb) found")?;
        if !root.join("data").join("PG_VERSION").exists() {
            init_cluster(&bin, &root)?;
        }
        let port = free_port()?;
        let server = PgServer {
            root,
            temp,
            bin,
            durability,
            port,
        };
        server.start_again()?;
        server.watchdog();
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) -> Result<(), String> {
        let durability = match self.durability {
            Durability::Fast => " -F -c synchronous_commit=off -c full_page_writes=off",
            Durability::Stock => "",
        };
        let options = format!(
            "-p {} -k {} -h 127.0.0.1 -c max_connections=200{durability}",
            self.port,
            self.root.display()
        );
        run(as_postgres(&self.bin.join("pg_ctl"))
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.root.join("log")))
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

    /// The server's version line.
    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// Stops the server and removes its files when this process is gone,
    /// however it ended (the tests' shared server lives in a static, which
    /// is never dropped, so its `TempDir` would stay behind: ~1 GB a run).
    fn watchdog(&self) {
        let script = r#"while [ -d "/proc/$0" ]; do sleep 1; done; "$1" stop -m immediate -D "$2" >/dev/null 2>&1; [ -z "$3" ] || rm -rf "$3""#;
        let temp = self.temp.as_ref().map(|_| self.root.clone());
        let _ = as_postgres(Path::new("sh"))
            .arg("-c")
            .arg(script)
            .arg(std::process::id().to_string())
            .arg(self.bin.join("pg_ctl"))
            .arg(self.data())
            .arg(temp.unwrap_or_default())
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

/// Creates a cluster in `root` with initdb (owned by `postgres` when run as root).
fn init_cluster(bin: &Path, root: &Path) -> Result<(), String> {
    let pwfile = root.join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    if running_as_root() {
        run(Command::new("chown").args(["-R", "postgres:"]).arg(root))?;
    }
    run(as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(root.join("data"))
        .args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--auth-local=trust",
        ])
        .arg("--auth-host=scram-sha-256")
        .arg(format!("--pwfile={}", pwfile.display())))
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

/// Creates an empty database with a name of its own on the shared server
/// and returns its URL.
pub async fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = shared_admin_url().expect("PostgreSQL is available");
    let name = format!(
        "nc_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    recreate_database(admin, &name)
        .await
        .expect("create a test database")
}

/// Drops database `name` if it exists and creates it empty, through the
/// `admin` URL; returns its URL.
pub async fn recreate_database(admin: &str, name: &str) -> Result<String, String> {
    admin_statements(
        admin,
        &[
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ],
    )
    .await?;
    Ok(with_database(admin, name))
}

/// Drops database `name` through the `admin` URL.
pub async fn drop_database(admin: &str, name: &str) -> Result<(), String> {
    admin_statements(
        admin,
        &[format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
    )
    .await
}

async fn admin_statements(admin: &str, statements: &[String]) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL as admin: {e}"))?;
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("`{sql}`: {e}"))?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// Bytes of the archive's tables with their indexes and TOAST, not counting
/// the catalog every database has.
pub async fn archive_bytes(url: &str) -> Result<u64, String> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(u64::try_from(bytes).unwrap_or_default())
}

/// `VACUUM (ANALYZE)` of the whole database at `url`: what autovacuum
/// does to an archive's tables some minutes after a large import.
pub async fn vacuum(url: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query("VACUUM (ANALYZE)")
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(())
}

/// `url` with its database replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("a valid PostgreSQL URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// The newest installed server's binaries: `NOMAD_CHRONICLE_PG_BIN`, else
/// Debian's /usr/lib/postgresql/N/bin, else wherever `initdb` is on PATH.
fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("NOMAD_CHRONICLE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().or_else(|| {
        on_path("initdb").and_then(|p| Some(p.canonicalize().ok()?.parent()?.to_owned()))
    })
}

/// Where `program` is on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
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

/// A TCP port free on loopback right now.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
