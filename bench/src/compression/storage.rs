//! What the databases make of the stored values: the size of a table
//! `(id, body)` holding them in SQLite (16 KiB pages, as the archive uses)
//! and in PostgreSQL (`bytea`, with the default storage and with `EXTERNAL`).

use std::path::Path;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// Rows per insert statement.
const ROWS_PER_INSERT: usize = 500;

/// Bytes of an SQLite file at `path` holding `values`, one row each.
pub async fn sqlite_bytes(path: &Path, values: &[Vec<u8>]) -> anyhow::Result<u64> {
    crate::child::remove_sqlite(path);
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .page_size(16 * 1024)
        .journal_mode(SqliteJournalMode::Delete);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot create {path:?}"))?;
    sqlx::query("CREATE TABLE stored (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin().await?;
    for (n, chunk) in values.chunks(ROWS_PER_INSERT).enumerate() {
        let sql = format!(
            "INSERT INTO stored (id, body) VALUES {}",
            vec!["(?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (j, value) in chunk.iter().enumerate() {
            let id = i64::try_from(n * ROWS_PER_INSERT + j)?;
            query = query.bind(id).bind(value.as_slice());
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    crate::child::remove_sqlite(path);
    Ok(u64::try_from(bytes).unwrap_or_default())
}

/// `pg_total_relation_size` of a table holding `values` in a `bytea`
/// column, with PostgreSQL's default storage, or with `EXTERNAL` (out of
/// line past 2 kB, never compressed by PostgreSQL).
pub async fn postgres_bytes(url: &str, values: &[Vec<u8>], external: bool) -> anyhow::Result<u64> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("DROP TABLE IF EXISTS stored")
        .execute(&mut conn)
        .await?;
    sqlx::query("CREATE TABLE stored (id BIGINT PRIMARY KEY, body BYTEA NOT NULL)")
        .execute(&mut conn)
        .await?;
    if external {
        sqlx::query("ALTER TABLE stored ALTER COLUMN body SET STORAGE EXTERNAL")
            .execute(&mut conn)
            .await?;
    }
    for (n, chunk) in values.chunks(ROWS_PER_INSERT * 4).enumerate() {
        let start = i64::try_from(n * ROWS_PER_INSERT * 4)?;
        let ids: Vec<i64> = (start..).take(chunk.len()).collect();
        sqlx::query("INSERT INTO stored (id, body) SELECT * FROM UNNEST($1::int8[], $2::bytea[])")
            .bind(ids)
            .bind(chunk)
            .execute(&mut conn)
            .await?;
    }
    sqlx::query("VACUUM ANALYZE stored")
        .execute(&mut conn)
        .await?;
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('stored')")
        .fetch_one(&mut conn)
        .await?;
    sqlx::query("DROP TABLE stored").execute(&mut conn).await?;
    conn.close().await?;
    Ok(u64::try_from(bytes).unwrap_or_default())
}
