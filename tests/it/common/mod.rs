//! Test harness: archives in temporary directories, the binary under test,
//! and reading an archive back to compare it with what the simulator sent.

#![allow(dead_code)]

pub mod log;
pub mod older;
pub mod python;
pub mod role;

pub use testkit::pg;
pub use testkit::sim::{SimAt, Stall, batch, batch_of_lines, expected};

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nomad_chronicle::archive::{ArchivedEvent, Cluster, StatusReport};
use nomad_chronicle::config::DbUrl;
use nomad_chronicle::store::{self, Lease, Store};
use nomad_sim::SimFrame;
use tokio::process::{Child, Command};

/// An evaluation frame at `index` whose second event, a Job status change
/// without a time of its own, shares its frame's time.
pub fn eval_frame(index: u64, modify_ns: i64) -> String {
    format!(
        r#"{{"Index":{index},"Events":[{{"Topic":"Evaluation","Type":"EvaluationUpdated","Key":"e{index}","Namespace":"default","FilterKeys":["web",""],"Index":{index},"Payload":{{"Evaluation":{{"ID":"e{index}","JobID":"web","ModifyTime":{modify_ns}}}}}}},{{"Topic":"Job","Type":"EvaluationUpdated","Key":"web","Namespace":"default","FilterKeys":null,"Index":{index},"Payload":{{"Job":{{"ID":"web","JobModifyIndex":1,"SubmitTime":1000000000000000000}}}}}}]}}"#
    )
}

/// `frames` with every time Nomad puts in a payload taken out: the archive
/// can only date them by their receipt.
pub fn without_times(frames: Vec<SimFrame>) -> Vec<SimFrame> {
    const TIMES: [&str; 4] = ["ModifyTime", "SubmitTime", "StatusUpdatedAt", "Events"];
    frames
        .into_iter()
        .map(|mut frame| {
            for event in &mut frame.events {
                let mut v: serde_json::Value = serde_json::from_str(&event.json).expect("JSON");
                if let Some(object) = v["Payload"][&event.topic].as_object_mut() {
                    object.retain(|k, _| !TIMES.contains(&k.as_str()));
                }
                event.json = v.to_string();
            }
            frame
        })
        .collect()
}

/// How long any single run of the binary may take before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Where a test's archive lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` as two tests, `NAME::sqlite` and
/// `NAME::postgres`; the PostgreSQL one is skipped (loudly, and never under
/// CI=true) when no server is available.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::common::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                if crate::common::pg::shared_admin_url().is_some() {
                    super::$name(crate::common::Backend::Postgres).await
                }
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// Runs each named `async fn(Backend, Framing)` once per framing a Nomad
/// version streams with (chunked, chunked with gzip, close-delimited) and
/// per backend: `NAME::chunked::sqlite`, `NAME::close_delimited::postgres`…
macro_rules! on_both_backends_and_framings {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            crate::common::on_both_backends_and_framings!(@framing $name, chunked, Chunked);
            crate::common::on_both_backends_and_framings!(@framing $name, chunked_gzip, ChunkedGzip);
            crate::common::on_both_backends_and_framings!(@framing $name, close_delimited, CloseDelimited);
        }
    )*};
    (@framing $name:ident, $module:ident, $framing:ident) => {
        mod $module {
            use nomad_sim::Framing;
            #[tokio::test]
            async fn sqlite() {
                super::super::$name(crate::common::Backend::Sqlite, Framing::$framing).await
            }
            #[tokio::test]
            async fn postgres() {
                if crate::common::pg::shared_admin_url().is_some() {
                    super::super::$name(crate::common::Backend::Postgres, Framing::$framing).await
                }
            }
        }
    };
}
pub(crate) use on_both_backends_and_framings;

/// A fresh, empty archive, with a temporary directory beside it for captures.
pub struct Archive {
    dir: tempfile::TempDir,
    /// For SQLite, the database file; for PostgreSQL, a path in the directory.
    pub path: PathBuf,
    pub url: String,
    pub backend: Backend,
}

impl Archive {
    pub async fn new(backend: Backend) -> Archive {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("archive.db");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", path.display()),
            Backend::Postgres => pg::fresh_database().await,
        };
        Archive {
            dir,
            path,
            url,
            backend,
        }
    }

    /// A path in the archive's temporary directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `frames` as an NDJSON capture named `name` and returns its path.
    pub fn capture(&self, name: &str, frames: &[SimFrame]) -> String {
        let file = self.file(name);
        let text: String = frames.iter().map(|f| f.to_line() + "\n").collect();
        std::fs::write(&file, text).expect("write capture");
        file.display().to_string()
    }

    /// Opens the archive in this process and takes the writer's lease of
    /// `cluster`, as ingest does.
    pub async fn writer(&self, cluster: &str) -> (Arc<dyn Store>, Cluster, Box<dyn Lease>) {
        self.writer_with(cluster, Default::default()).await
    }

    /// [`Self::writer`], compressing as `compression` says.
    pub async fn writer_with(
        &self,
        cluster: &str,
        compression: nomad_chronicle::store::compress::Settings,
    ) -> (Arc<dyn Store>, Cluster, Box<dyn Lease>) {
        let store = store::connect(&DbUrl::parse(&self.url).expect("url"))
            .await
            .expect("open");
        store.set_compression(compression);
        let opened = store.open_cluster(cluster, None).await.expect("cluster");
        let lease = store
            .lease(cluster, &Default::default())
            .await
            .expect("lease")
            .expect("not stopped");
        (store, opened, lease)
    }

    /// The archive opened in this process, and `cluster` in it.
    pub async fn open(&self, cluster: &str) -> (Arc<dyn Store>, Cluster) {
        let store = store::connect(&DbUrl::parse(&self.url).expect("url"))
            .await
            .expect("open archive");
        let found = store
            .find_cluster(cluster)
            .await
            .expect("find cluster")
            .unwrap_or_else(|| panic!("no cluster `{cluster}` in the archive"));
        (store, found)
    }

    /// Every event of `cluster`, in stream order, as (index, raw JSON).
    pub async fn events(&self, cluster: &str) -> Vec<(u64, String)> {
        self.archived(cluster)
            .await
            .into_iter()
            .map(|e| (e.index, e.raw))
            .collect()
    }

    pub async fn archived(&self, cluster: &str) -> Vec<ArchivedEvent> {
        let store = store::connect(&DbUrl::parse(&self.url).expect("url"))
            .await
            .expect("open archive");
        let Some(cluster) = store.find_cluster(cluster).await.expect("find cluster") else {
            return Vec::new();
        };
        let events = store
            .events(&cluster, 0, u32::MAX)
            .await
            .expect("read events");
        store.close().await;
        events
    }

    /// The archive's status, read as `status` reads it (read-only, so a
    /// poll never competes with the writer under test). A missing archive
    /// is created first, as a test that starts from an empty one expects;
    /// one a writer is still migrating has no clusters yet.
    pub async fn status(&self) -> StatusReport {
        let url = DbUrl::parse(&self.url).expect("url");
        let store = match store::open(&url, store::Access::Read).await {
            Ok(store) => store,
            Err(store::StoreError::NoArchive { .. }) => {
                store::connect(&url).await.expect("create archive")
            }
            Err(store::StoreError::NeedsMigration { .. } | store::StoreError::Unfilled { .. }) => {
                return StatusReport {
                    database: url.to_string(),
                    backend: "none",
                    database_bytes: 0,
                    clusters: Vec::new(),
                };
            }
            Err(e) => panic!("open archive: {e}"),
        };
        let report = store.status().await.expect("status");
        store.close().await;
        report
    }

    /// Captures `frames` in the file `name` and imports it as `cluster`.
    pub async fn import_as(&self, cluster: &str, name: &str, frames: &[SimFrame]) {
        let file = self.capture(name, frames);
        self.run(&["import", &file, "--cluster", cluster])
            .await
            .assert_success();
    }

    /// Imports `frames` as `cluster` out of order and twice over: the later
    /// half first, the earlier half behind it, then the middle half again.
    pub async fn import_out_of_order(&self, cluster: &str, frames: &[SimFrame]) {
        let part = |n: usize| frames.len() * n / 4;
        for (name, part) in [
            ("later.ndjson", &frames[part(2)..]),
            ("earlier.ndjson", &frames[..part(2)]),
            ("again.ndjson", &frames[part(1)..part(3)]),
        ] {
            self.import_as(cluster, name, part).await;
        }
    }

    /// The rows `sql` reads from the archive, from outside nomad-chronicle.
    pub async fn select<T>(&self, sql: &'static str) -> Vec<T>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.expect("open");
                sqlx::query_as(sql).fetch_all(&pool).await.expect(sql)
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await.expect("open");
                sqlx::query_as(sql).fetch_all(&pool).await.expect(sql)
            }
        }
    }

    /// Runs SQL on the archive from outside nomad-chronicle.
    pub async fn execute(&self, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                for sql in statements {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                        .execute(&mut conn)
                        .await
                        .expect(sql);
                }
            }
            Backend::Postgres => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                for sql in statements {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                        .execute(&mut conn)
                        .await
                        .expect(sql);
                }
            }
        }
    }

    /// The binary with `--db` pointing here.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nomad-chronicle"));
        cmd.args(args)
            .env("NOMAD_CHRONICLE_DB", &self.url)
            .env_remove("NOMAD_ADDR")
            .env_remove("NOMAD_TOKEN")
            .env_remove("NOMAD_NAMESPACE")
            .env_remove("NOMAD_REGION")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs the binary to completion.
    pub async fn run(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("spawn nomad-chronicle");
        finish(child).await
    }

    /// `ingest` of cluster `test` from the simulator until the given index
    /// is stored, with `extra` arguments, ready to spawn.
    pub fn ingest_command(&self, sim: &SimAt, until: u64, extra: &[&str]) -> Command {
        let until = until.to_string();
        let mut args = vec![
            "ingest",
            "--address",
            &sim.address,
            "--cluster",
            "test",
            "--until-index",
            &until,
        ];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    /// [`Archive::ingest_command`] with 50 ms batches, run to completion.
    pub async fn ingest_until(&self, sim: &SimAt, until: u64, extra: &[&str]) -> Run {
        let mut args = vec!["--batch-interval", "50ms"];
        args.extend_from_slice(extra);
        let child = self
            .ingest_command(sim, until, &args)
            .spawn()
            .expect("spawn nomad-chronicle");
        finish(child).await
    }
}

/// What a finished run of the binary left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_success(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success; stderr:\n{}",
            self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Waits for a child, failing the test if it runs past [`RUN_LIMIT`].
pub async fn finish(child: Child) -> Run {
    match tokio::time::timeout(RUN_LIMIT, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for nomad-chronicle").into(),
        Err(_) => panic!("nomad-chronicle ran longer than {RUN_LIMIT:?}"),
    }
}

/// Polls `condition` every 20 ms for up to 30 s.
pub async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_or(what, condition, String::new).await
}

/// [`eventually`], failing with what `context` says then.
pub async fn eventually_or<F, Fut>(what: &str, mut condition: F, context: impl Fn() -> String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the child's stderr into `log` until it contains `needle`.
pub async fn read_until(stderr: &mut tokio::process::ChildStderr, log: &mut Vec<u8>, needle: &str) {
    use tokio::io::AsyncReadExt;
    let wait = async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(log).contains(needle) {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => log.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
    assert!(
        String::from_utf8_lossy(log).contains(needle),
        "expected `{needle}` in the log:\n{}",
        String::from_utf8_lossy(log)
    );
}

/// The key of the first event of `topic` in `frames`.
pub fn first_key(frames: &[SimFrame], topic: &str) -> String {
    frames
        .iter()
        .flat_map(|f| &f.events)
        .find(|e| e.topic == topic)
        .map(|e| e.key.clone())
        .expect("the history has one")
}
