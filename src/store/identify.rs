//! Telling an archive from anything else before touching it: what a
//! database holds (read without writing, by each backend's `identify`), and
//! what may be done with it by a command that creates archives, one that
//! writes an existing one, or one that only reads.
//!
//! An archive is recognised by its migrations: the `_sqlx_migrations` table
//! whose version 1 is this binary's first migration, byte for byte (its
//! checksum); the tables of later migrations may not exist yet while a
//! writer is creating the archive. An SQLite archive also carries
//! [`APPLICATION_ID`] in its header, set when it is created and stamped on
//! older archives by the next writer, so another application's file (with
//! an id of its own) is refused without being opened at all.

use sqlx::migrate::Migrator;

use super::StoreError;

/// `PRAGMA application_id` of an SQLite archive: "NCHR" in ASCII.
pub const APPLICATION_ID: i32 = 0x4E43_4852;

/// Why a read refuses an archive whose events are not all dated by
/// Nomad's clock yet ([`super::backfill::pending`]).
pub const UNDATED: &str =
    "holds events not yet dated by Nomad's clock (an upgrade that did not finish)";

/// What a command may do to the database `--db` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create an archive where there is none, and migrate one that is
    /// older (`ingest`, `import`).
    Create,
    /// Write an existing archive, migrating it first (`compact`, `prune`,
    /// `migrate`); never create one.
    Write,
    /// Only read, at this binary's schema version: no migration, no
    /// backfill, nothing written (`status`, `query`, `replay`), one
    /// statement at a time over one connection: each new one costs an
    /// authentication on PostgreSQL and a reading of the schema on SQLite.
    Read,
    /// Read as [`Access::Read`] does, for many requests at once (`serve`).
    Serve,
}

impl Access {
    /// Whether the command may write (and so migrate) the archive.
    pub fn writes(self) -> bool {
        matches!(self, Access::Create | Access::Write)
    }

    /// The connections a read-only pool may open: one for a one-shot
    /// read, a few for `serve`'s requests at once. (Blocks of older events
    /// are read on connections of their own.)
    pub fn read_connections(self) -> u32 {
        if self == Access::Serve { 4 } else { 1 }
    }
}

/// One applied migration, as `_sqlx_migrations` records it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Applied {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// What the backend found, read without writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// `_sqlx_migrations`, oldest first, when the table exists.
    pub migrations: Option<Vec<Applied>>,
    /// Whether a `clusters` table exists.
    pub clusters: bool,
    /// Tables besides those, by name (SQLite: every other table; PostgreSQL:
    /// only those an archive's migrations would create).
    pub other_tables: Vec<String>,
    /// SQLite: the header carries [`APPLICATION_ID`].
    pub stamped: bool,
}

/// What a database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing there yet: no file, an empty file, or a database without
    /// any table an archive would have.
    Absent,
    /// An archive, with its applied migrations (none while it is being
    /// created).
    Archive(Vec<Applied>),
    /// Something else, and why it is not an archive, in words.
    Foreign(String),
}

/// Judges `contents` against `migrator`, the backend's migrations.
pub fn judge(contents: Contents, migrator: &Migrator) -> Found {
    let first = migrator.iter().next().map(|m| m.checksum.as_ref());
    let ours = |applied: &[Applied]| {
        applied
            .iter()
            .find(|a| a.version == 1)
            .is_some_and(|a| Some(a.checksum.as_slice()) == first)
    };
    let nothing_else = !contents.clusters && contents.other_tables.is_empty();
    match contents.migrations {
        // While a writer migrates a new archive, later migrations' tables
        // (`clusters` among them) may not be there yet.
        Some(applied) if ours(&applied) => Found::Archive(applied),
        // A writer is creating it: the table exists, no migration is in yet.
        Some(applied) if applied.is_empty() && nothing_else => match contents.stamped {
            true => Found::Archive(applied),
            false => Found::Absent,
        },
        Some(_) => Found::Foreign(
            "its `_sqlx_migrations` table records another application's migrations".to_owned(),
        ),
        None if nothing_else => match contents.stamped {
            true => Found::Archive(Vec::new()),
            false => Found::Absent,
        },
        None => {
            let mut tables = contents.other_tables;
            if contents.clusters {
                tables.insert(0, "clusters".to_owned());
            }
            Found::Foreign(format!(
                "it holds {} but no archive's migrations",
                name_tables(&tables)
            ))
        }
    }
}

/// `the table `a``, `the tables `a`, `b` and 3 more`.
fn name_tables(tables: &[String]) -> String {
    let shown: Vec<String> = tables.iter().take(3).map(|t| format!("`{t}`")).collect();
    let more = tables.len().saturating_sub(shown.len());
    match (tables.len(), more) {
        (1, _) => format!("the table {}", shown[0]),
        (_, 0) => format!("the tables {}", shown.join(", ")),
        (_, more) => format!("the tables {} and {more} more", shown.join(", ")),
    }
}

/// The schema version of an archive (its newest applied migration), or why
/// `access` may not use it as it is: a migration that stopped part-way, a
/// newer binary's archive, or (for a read) an older schema that only a
/// writer may migrate.
pub fn check_version(
    url: &str,
    applied: &[Applied],
    migrator: &Migrator,
    access: Access,
) -> Result<i64, StoreError> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let found = applied.iter().map(|a| a.version).max().unwrap_or(0);
    if found > known {
        return Err(StoreError::NewerSchema {
            url: url.to_owned(),
            found,
            known,
        });
    }
    if access.writes() {
        return Ok(found);
    }
    if applied.is_empty() {
        return Err(StoreError::NoArchive {
            url: url.to_owned(),
        });
    }
    if let Some(failed) = applied.iter().find(|a| !a.success) {
        return Err(StoreError::NeedsMigration {
            url: url.to_owned(),
            detail: format!(
                "its migration to schema version {} stopped part-way",
                failed.version
            ),
        });
    }
    if found < known {
        return Err(StoreError::NeedsMigration {
            url: url.to_owned(),
            detail: format!(
                "is at schema version {found}, and this nomad-chronicle reads version {known}"
            ),
        });
    }
    if let Some(missing) = first_missing(applied, migrator) {
        return Err(StoreError::NeedsMigration {
            url: url.to_owned(),
            detail: format!("is at schema version {found} without migration {missing}"),
        });
    }
    Ok(found)
}

/// The oldest of `migrator`'s migrations that `applied` lacks: what a
/// writer applies when it opens the archive.
pub fn first_missing(applied: &[Applied], migrator: &Migrator) -> Option<i64> {
    migrator
        .iter()
        .map(|m| m.version)
        .find(|v| !applied.iter().any(|a| a.version == *v))
}

#[cfg(test)]
mod tests {
    use super::*;

    static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

    fn ours(versions: std::ops::RangeInclusive<i64>) -> Vec<Applied> {
        MIGRATOR
            .iter()
            .filter(|m| versions.contains(&m.version))
            .map(|m| Applied {
                version: m.version,
                success: true,
                checksum: m.checksum.to_vec(),
            })
            .collect()
    }

    fn contents(migrations: Option<Vec<Applied>>, clusters: bool, other: &[&str]) -> Contents {
        Contents {
            migrations,
            clusters,
            other_tables: other.iter().map(|t| t.to_string()).collect(),
            stamped: false,
        }
    }

    #[test]
    fn an_archive_is_known_by_its_first_migration_and_its_clusters() {
        let found = judge(contents(Some(ours(1..=3)), true, &["gaps"]), &MIGRATOR);
        assert_eq!(found, Found::Archive(ours(1..=3)));
    }

    #[test]
    fn an_archive_whose_first_migrations_are_in_is_an_archive_being_created() {
        let found = judge(
            contents(Some(ours(1..=2)), false, &["event_log"]),
            &MIGRATOR,
        );
        assert_eq!(found, Found::Archive(ours(1..=2)));
    }

    #[test]
    fn another_applications_database_is_foreign() {
        let theirs = vec![Applied {
            version: 1,
            success: true,
            checksum: vec![1, 2, 3],
        }];
        assert!(matches!(
            judge(contents(Some(theirs), true, &[]), &MIGRATOR),
            Found::Foreign(why) if why.contains("another application's migrations")
        ));
        assert_eq!(
            judge(contents(None, false, &["events"]), &MIGRATOR),
            Found::Foreign("it holds the table `events` but no archive's migrations".to_owned())
        );
        assert!(matches!(
            judge(contents(None, false, &["a", "b", "c", "d", "e"]), &MIGRATOR),
            Found::Foreign(why) if why.contains("`a`, `b`, `c` and 2 more")
        ));
    }

    #[test]
    fn an_empty_database_holds_nothing_yet() {
        assert_eq!(judge(contents(None, false, &[]), &MIGRATOR), Found::Absent);
    }

    #[test]
    fn a_read_refuses_an_older_schema_and_a_write_migrates_it() {
        let old = ours(1..=5);
        let read = check_version("db", &old, &MIGRATOR, Access::Read);
        assert!(
            matches!(&read, Err(StoreError::NeedsMigration { detail, .. }) if detail.contains("schema version 5")),
            "{read:?}"
        );
        assert!(matches!(
            check_version("db", &old, &MIGRATOR, Access::Write),
            Ok(5)
        ));
        let all = ours(1..=i64::MAX);
        let newest = all.last().map(|a| a.version);
        assert_eq!(
            check_version("db", &all, &MIGRATOR, Access::Read).ok(),
            newest
        );
    }

    #[test]
    fn a_read_refuses_a_schema_missing_an_older_migration() {
        let mut holed = ours(1..=i64::MAX);
        let newest = holed.last().map(|a| a.version);
        holed.retain(|a| a.version != 3);
        let read = check_version("db", &holed, &MIGRATOR, Access::Read);
        assert!(
            matches!(&read, Err(StoreError::NeedsMigration { detail, .. }) if detail.ends_with("without migration 3")),
            "{read:?}"
        );
        assert_eq!(
            check_version("db", &holed, &MIGRATOR, Access::Write).ok(),
            newest
        );
    }

    #[test]
    fn a_newer_schema_is_refused_by_every_command() {
        let mut newer = ours(1..=i64::MAX);
        newer.push(Applied {
            version: 9_999,
            success: true,
            checksum: Vec::new(),
        });
        for access in [Access::Create, Access::Write, Access::Read, Access::Serve] {
            assert!(matches!(
                check_version("db", &newer, &MIGRATOR, access),
                Err(StoreError::NewerSchema { found: 9_999, .. })
            ));
        }
    }
}
