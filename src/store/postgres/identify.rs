//! What a PostgreSQL database holds, found without writing to it: the
//! archive's migrations and tables in the schemas of its `search_path`,
//! read in a read-only transaction. Other tables are none of the archive's
//! business: only those its migrations would create count, so a database
//! where another application keeps a table the archive would need is
//! refused rather than half migrated.

use sqlx::{Connection, PgConnection};

use crate::store::StoreError;
use crate::store::identify::{Applied, Contents};

/// Tables an archive's migrations create, besides `clusters` and
/// `_sqlx_migrations`, that another application may also have.
const ARCHIVE_TABLES: [&str; 8] = [
    "events",
    "event_log",
    "gaps",
    "names",
    "keyframes",
    "reconstructions",
    "dictionaries",
    "prunes",
];

/// The database's migrations and archive tables, read on `conn`.
pub async fn contents(conn: &mut PgConnection) -> Result<Contents, StoreError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut present = Vec::new();
    for table in ["_sqlx_migrations", "clusters"]
        .into_iter()
        .chain(ARCHIVE_TABLES)
    {
        let found: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut *tx)
            .await?;
        if found {
            present.push(table);
        }
    }
    let migrations = match present.contains(&"_sqlx_migrations") {
        true => Some(
            sqlx::query_as::<_, Applied>(
                "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&mut *tx)
            .await?,
        ),
        false => None,
    };
    tx.rollback().await?;
    Ok(Contents {
        migrations,
        clusters: present.contains(&"clusters"),
        other_tables: present
            .iter()
            .filter(|t| ARCHIVE_TABLES.contains(t))
            .map(|t| t.to_string())
            .collect(),
        stamped: false,
    })
}
