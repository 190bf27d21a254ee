//! The storage-level sizes of the candidates, and where today's archive
//! spends its bytes: an archive imported by nomad-chronicle from a capture
//! of the same history, measured table by table and index by index
//! (SQLite's `dbstat`, PostgreSQL's relation sizes), with the side tables
//! the reporting views would need if the event JSON were not readable by SQL.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::Context;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};
use testkit::pg::{self, Durability, PgServer};

use super::CompressionBench;
use super::storage;
use crate::all::{binaries, write_capture};
use crate::child::{remove_sqlite, run_measured};

/// A PostgreSQL admin URL: `--pg`, or a throwaway server kept alive by the
/// returned guard.
fn postgres(args: &CompressionBench) -> anyhow::Result<(String, Option<PgServer>)> {
    match &args.pg {
        Some(url) => Ok((url.clone(), None)),
        None => {
            let server =
                PgServer::start_in(&args.dir, Durability::Stock).map_err(anyhow::Error::msg)?;
            println!("PostgreSQL: a throwaway server, {}\n", server.version());
            Ok((server.url("postgres"), Some(server)))
        }
    }
}

/// The size each chosen candidate's values take in SQLite and PostgreSQL.
pub async fn storage_table(
    args: &CompressionBench,
    stored: &BTreeMap<String, Vec<Vec<u8>>>,
    raw: u64,
) -> anyhow::Result<()> {
    let db = args.dir.join("nc-bench-compression.db");
    let pg = if args.runs("postgres") {
        let (admin, server) = postgres(args)?;
        let url = pg::recreate_database(&admin, "nc_bench_compression")
            .await
            .map_err(anyhow::Error::msg)?;
        Some((admin, url, server))
    } else {
        None
    };
    println!(
        "| stored values | bytes of the values | SQLite file | PostgreSQL bytea, default storage | PostgreSQL bytea, STORAGE EXTERNAL |"
    );
    println!("|---|---:|---:|---:|---:|");
    let show = |b: u64| format!("{:.1} MB ({:.3})", b as f64 / 1e6, b as f64 / raw as f64);
    for (name, values) in stored {
        eprintln!("storing {name}");
        let bytes: u64 = values.iter().map(|v| v.len() as u64).sum();
        let sqlite = storage::sqlite_bytes(&db, values).await?;
        let (default, external) = match &pg {
            Some((_, url, _)) => (
                show(storage::postgres_bytes(url, values, false).await?),
                show(storage::postgres_bytes(url, values, true).await?),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {name} | {} | {} | {default} | {external} |",
            show(bytes),
            show(sqlite)
        );
    }
    println!("\n(in parentheses: over the raw event JSON)\n");
    if let Some((admin, _, _server)) = pg {
        pg::drop_database(&admin, "nc_bench_compression")
            .await
            .map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Today's archive of the same history, table by table.
pub async fn today(args: &CompressionBench, raw: u64) -> anyhow::Result<()> {
    let bin = binaries()?;
    let capture = write_capture(&args.dir, args.events, args.seed)?;
    println!(
        "capture: {:.1} MB; event JSON {:.3} of it\n",
        capture.bytes as f64 / 1e6,
        raw as f64 / capture.bytes as f64
    );
    let db = args.dir.join("nc-bench-compression-today.db");
    remove_sqlite(&db);
    let url = format!("sqlite://{}", db.display());
    run_measured(
        Command::new(bin.join("nomad-chronicle"))
            .args(["--db", &url, "import"])
            .arg(&capture.path),
    )
    .context("import into SQLite")?;
    sqlite_breakdown(&db, capture.bytes).await?;
    remove_sqlite(&db);
    if args.runs("postgres") {
        let (admin, _server) = postgres(args)?;
        let url = pg::recreate_database(&admin, "nc_bench_today")
            .await
            .map_err(anyhow::Error::msg)?;
        run_measured(
            Command::new(bin.join("nomad-chronicle"))
                .args(["--db", &url, "import"])
                .arg(&capture.path),
        )
        .context("import into PostgreSQL")?;
        postgres_breakdown(&url, capture.bytes).await?;
        pg::drop_database(&admin, "nc_bench_today")
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let _ = std::fs::remove_file(&capture.path);
    Ok(())
}

/// The rest of an `event_log` row, and what the reporting views read from
/// the event JSON, as side tables keyed by the event's row: the columns each
/// view extracts, and the task events (deduplicated, as `task_events` shows
/// them) with the allocation's ID.
const SIDE_TABLES: [(&str, &str); 6] = [
    (
        "event_log's other columns (a copy without `event`)",
        "CREATE TABLE x_event_row AS SELECT cluster_id, raft_index, position, topic, type, \
         namespace, key_ref, job_ref, node_ref, eval_ref, deployment_ref, received_at, \
         event_at, time_source, presence FROM event_log",
    ),
    (
        "allocation columns",
        "CREATE TABLE x_allocation AS SELECT rowid AS event_row, \
         json_extract(event, '$.Payload.Allocation.TaskGroup') AS task_group, \
         json_extract(event, '$.Payload.Allocation.NodeName') AS node_name, \
         json_extract(event, '$.Payload.Allocation.DesiredStatus') AS desired_status, \
         json_extract(event, '$.Payload.Allocation.ClientStatus') AS client_status, \
         json_extract(event, '$.Payload.Allocation.ClientDescription') AS client_description \
         FROM event_log WHERE topic = 'Allocation'",
    ),
    (
        "job columns",
        "CREATE TABLE x_job AS SELECT rowid AS event_row, \
         json_extract(event, '$.Payload.Job.Version') AS version, \
         json_extract(event, '$.Payload.Job.Status') AS status, \
         json_extract(event, '$.Payload.Job.Stop') AS stop, \
         json_extract(event, '$.Payload.Job.SubmitTime') AS submit_time_ns \
         FROM event_log WHERE topic = 'Job'",
    ),
    (
        "deployment columns",
        "CREATE TABLE x_deployment AS SELECT rowid AS event_row, \
         json_extract(event, '$.Payload.Deployment.JobVersion') AS job_version, \
         json_extract(event, '$.Payload.Deployment.Status') AS status, \
         json_extract(event, '$.Payload.Deployment.StatusDescription') AS status_description \
         FROM event_log WHERE topic = 'Deployment'",
    ),
    (
        "node columns",
        "CREATE TABLE x_node AS SELECT rowid AS event_row, \
         json_extract(event, '$.Payload.Node.Name') AS node_name, \
         json_extract(event, '$.Payload.Node.Status') AS status, \
         json_extract(event, '$.Payload.Node.SchedulingEligibility') AS eligibility, \
         json_extract(event, '$.Payload.Node.Drain') AS drain \
         FROM event_log WHERE topic = 'Node'",
    ),
    (
        "task events",
        "CREATE TABLE x_task_event AS SELECT k.id AS alloc_ref, t.task, t.event_type, \
         t.time_ns, t.exit_code, t.oom_killed, t.message, t.first_seen_index \
         FROM task_events AS t JOIN names AS k ON k.name = t.alloc_id",
    ),
];

async fn sqlite_breakdown(db: &std::path::Path, capture: u64) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::new().filename(db);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let (events, json): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(length(CAST(event AS BLOB))) FROM event_log")
            .fetch_one(&mut conn)
            .await?;
    let sizes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC",
    )
    .fetch_all(&mut conn)
    .await?;
    let total: i64 = sizes.iter().map(|(_, b)| b).sum();
    println!(
        "today's SQLite archive: {events} events, {:.1} MB in all ({:.3} of the capture); the `event` column's JSON {:.1} MB ({:.3})\n",
        total as f64 / 1e6,
        total as f64 / capture as f64,
        json as f64 / 1e6,
        json as f64 / capture as f64
    );
    print_sizes("table or index (SQLite, dbstat)", &sizes, capture);
    let mut side = Vec::new();
    for (what, sql) in SIDE_TABLES {
        sqlx::query(sql).execute(&mut conn).await?;
        let table = sql.split_whitespace().nth(2).unwrap_or_default().to_owned();
        let (rows, bytes): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM {table}), \
             (SELECT sum(pgsize) FROM dbstat WHERE name = '{table}')"
        )))
        .fetch_one(&mut conn)
        .await?;
        side.push((format!("{what} ({rows} rows)"), bytes));
    }
    print_sizes("copy or side table (SQLite, no index)", &side, capture);
    conn.close().await?;
    Ok(())
}

async fn postgres_breakdown(url: &str, capture: u64) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("VACUUM ANALYZE").execute(&mut conn).await?;
    let (events, json): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(pg_column_size(event))::bigint FROM event_log")
            .fetch_one(&mut conn)
            .await?;
    let sizes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.relname || CASE c.relkind WHEN 'i' THEN ' (index)' ELSE ' (heap)' END, \
                pg_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') \
         UNION ALL \
         SELECT c.relname || ' (TOAST)', pg_total_relation_size(c.reltoastrelid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltoastrelid <> 0 \
         ORDER BY 2 DESC",
    )
    .fetch_all(&mut conn)
    .await?;
    let total: i64 = sizes.iter().map(|(_, b)| b).sum();
    println!(
        "today's PostgreSQL archive: {events} events, {:.1} MB in all ({:.3} of the capture); the `event` column as stored (pg_column_size, after LZ4) {:.1} MB ({:.3})\n",
        total as f64 / 1e6,
        total as f64 / capture as f64,
        json as f64 / 1e6,
        json as f64 / capture as f64
    );
    print_sizes("relation (PostgreSQL)", &sizes, capture);
    conn.close().await?;
    Ok(())
}

fn print_sizes(what: &str, sizes: &[(String, i64)], capture: u64) {
    println!("| {what} | MB | / capture |");
    println!("|---|---:|---:|");
    for (name, bytes) in sizes.iter().filter(|(_, b)| *b > 0) {
        println!(
            "| {name} | {:.2} | {:.4} |",
            *bytes as f64 / 1e6,
            *bytes as f64 / capture as f64
        );
    }
    println!();
}
