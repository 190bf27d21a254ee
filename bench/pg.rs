//! PostgreSQL for the benchmark: an admin URL given by the user, or a
//! throwaway server started from the installed binaries (initdb and pg_ctl
//! into a directory under the work directory, on a free loopback port, as the
//! `postgres` user when run as root) with PostgreSQL's stock durability
//! settings (`fsync` and `synchronous_commit` on), stopped and removed
//! afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sqlx::Connection;

use crate::child::on_path;

/// A throwaway server; stopped and deleted when dropped.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PgServer {
    /// Creates a cluster under `work` and starts it.
    pub fn start(work: &Path) -> anyhow::Result<PgServer> {
        let bin = find_bin().context("no PostgreSQL server binaries (initdb) found")?;
        let dir = work.join(format!("nc-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir:?}"))?;
        if running_as_root() {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir))?;
        }
        let port = free_port()?;
        let server = PgServer { dir, bin, port };
        run(as_postgres(&server.bin.join("initdb"))
            .arg("-D")
            .arg(server.data())
            .args(["-U", "postgres", "-E", "UTF8", "--auth=trust"]))?;
        let options = format!(
            "-p {} -k {} -h 127.0.0.1",
            server.port,
            server.dir.display()
        );
        run(as_postgres(&server.bin.join("pg_ctl"))
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(server.data())
            .args(["-o", &options, "-l"])
            .arg(server.dir.join("log")))?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The superuser's URL (trust authentication, loopback only).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's version line.
    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = run(as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(self.data()));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Drops and creates database `name` through `admin`; returns its URL.
pub async fn fresh_database(admin: &str, name: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .context("cannot connect to PostgreSQL as admin")?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .context("cannot recreate the benchmark database")?;
    }
    let _ = conn.close().await;
    let mut url = reqwest::Url::parse(admin).context("the PostgreSQL URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drops database `name` through `admin`.
pub async fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(())
}

/// Bytes of the archive's tables with their indexes and TOAST, not counting
/// the catalog every database has.
pub async fn archive_bytes(url: &str) -> anyhow::Result<u64> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')",
    )
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(u64::try_from(bytes).unwrap_or_default())
}

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

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
