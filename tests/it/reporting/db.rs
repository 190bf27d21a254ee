//! A direct connection to the archive, as a user's sqlite3 or psql would
//! have, returning rows as JSON objects; and each dialect's form of flags and
//! readable times.

use serde_json::{Map, Value, json};
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};

use crate::common::{Archive, Backend};

/// A direct connection to the archive, as a user's sqlite3 or psql would have.
pub(crate) enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Db {
    pub(crate) async fn connect(archive: &Archive) -> Db {
        match archive.backend {
            Backend::Sqlite => Db::Sqlite(
                sqlx::SqliteConnection::connect(&archive.url)
                    .await
                    .expect("connect"),
            ),
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&archive.url)
                    .await
                    .expect("connect");
                // Readable times are shown in the session's zone; pin it.
                sqlx::query("SET TIME ZONE 'UTC'")
                    .execute(&mut conn)
                    .await
                    .expect("set time zone");
                Db::Postgres(conn)
            }
        }
    }

    /// Runs `sql` and returns its rows as JSON objects keyed by column name:
    /// integers, text, NULL, and (PostgreSQL) booleans and ISO 8601 times.
    pub(crate) async fn rows(&mut self, sql: &str) -> Vec<Map<String, Value>> {
        let sql = sql.trim().trim_end_matches(';');
        match self {
            Db::Sqlite(conn) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("{e}\n{sql}"));
                rows.iter().map(sqlite_row).collect()
            }
            Db::Postgres(conn) => {
                // PostgreSQL turns a row into JSON itself; the subquery's
                // order is kept by the scan over it.
                let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) AS q");
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(wrapped))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("{e}\n{sql}"));
                rows.into_iter()
                    .map(|(text,)| serde_json::from_str(&text).expect("a JSON object"))
                    .collect()
            }
        }
    }

    /// A view's column names, in order.
    pub(super) async fn columns(&mut self, view: &str) -> Vec<String> {
        let sql = match self {
            Db::Sqlite(_) => {
                format!("SELECT name AS column_name FROM pragma_table_info('{view}') ORDER BY cid")
            }
            Db::Postgres(_) => format!(
                "SELECT column_name FROM information_schema.columns \
                 WHERE table_name = '{view}' ORDER BY ordinal_position"
            ),
        };
        self.rows(&sql)
            .await
            .into_iter()
            .map(|row| row["column_name"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Map<String, Value> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let raw = row.try_get_raw(i).expect("column");
            let value = if raw.is_null() {
                Value::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" => json!(row.try_get_unchecked::<i64, _>(i).expect("integer")),
                    "REAL" => json!(row.try_get_unchecked::<f64, _>(i).expect("real")),
                    _ => json!(row.try_get_unchecked::<String, _>(i).expect("text")),
                }
            };
            (column.name().to_owned(), value)
        })
        .collect()
}

/// A flag as each dialect has it: 0/1 in SQLite, a boolean in PostgreSQL.
pub(super) fn flag(backend: Backend, on: bool) -> Value {
    match backend {
        Backend::Sqlite => json!(i64::from(on)),
        Backend::Postgres => json!(on),
    }
}

/// A readable time as each view shows it, for a whole number of Unix ms.
pub(super) fn readable(backend: Backend, ms: i64) -> Value {
    let utc = utc(ms.div_euclid(1000));
    match backend {
        // `datetime(…, 'unixepoch')`: to the second.
        Backend::Sqlite => json!(utc),
        // A timestamptz in JSON: ISO 8601, the fraction without trailing zeros.
        Backend::Postgres => {
            let millis = ms.rem_euclid(1000);
            let fraction = if millis == 0 {
                String::new()
            } else {
                format!(".{millis:03}").trim_end_matches('0').to_owned()
            };
            json!(format!("{}{fraction}+00:00", utc.replacen(' ', "T", 1)))
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for Unix seconds (days to civil date, as in
/// Howard Hinnant's `civil_from_days`).
fn utc(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}
