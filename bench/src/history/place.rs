//! Where `bench history` keeps a backend's archives: SQLite files in a
//! directory, or databases on a PostgreSQL server (a throwaway one, kept in
//! the `--keep` directory when asked, or the one `--pg` names).

use std::path::{Path, PathBuf};

use anyhow::Context;
use nomad_chronicle::config::DbUrl;
use nomad_chronicle::store;
use testkit::pg::{self, Durability, PgServer};

use crate::child::{remove_sqlite, sqlite_bytes};

/// The backends an archive can be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn shown(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A backend's home for archives during one run.
pub enum Place {
    Sqlite {
        dir: PathBuf,
    },
    Postgres {
        /// A URL of a role that may create databases.
        admin: String,
        /// The server we started, stopped when this is dropped.
        _server: Option<PgServer>,
        /// Which server, for the report.
        shown: String,
    },
}

/// What an archive holds, read through the library's `status`.
pub struct Holding {
    pub events: u64,
    pub checkpoint: u64,
}

impl Place {
    /// Opens `backend`'s place: `dir` for SQLite files; for PostgreSQL the
    /// server `pg` names, or one started in `dir/pg` (kept there when
    /// `kept`, else in a temporary directory under `dir`).
    pub fn open(
        backend: Backend,
        dir: &Path,
        kept: bool,
        pg: Option<&str>,
    ) -> anyhow::Result<Place> {
        Ok(match (backend, pg) {
            (Backend::Sqlite, _) => Place::Sqlite {
                dir: dir.to_owned(),
            },
            (Backend::Postgres, Some(admin)) => Place::Postgres {
                admin: admin.to_owned(),
                _server: None,
                shown: "PostgreSQL: the server `--pg` names".to_owned(),
            },
            (Backend::Postgres, None) => {
                let server = if kept {
                    PgServer::start_kept(&dir.join("pg"), Durability::Stock)
                } else {
                    PgServer::start_in(dir, Durability::Stock)
                }
                .map_err(anyhow::Error::msg)?;
                Place::Postgres {
                    admin: server.url("postgres"),
                    shown: format!(
                        "PostgreSQL: a server of our own with stock settings, {}",
                        server.version()
                    ),
                    _server: Some(server),
                }
            }
        })
    }

    /// Where the archives are, for the report.
    pub fn shown(&self) -> String {
        match self {
            Place::Sqlite { dir } => format!("SQLite: files in `{}`", dir.display()),
            Place::Postgres { shown, .. } => shown.clone(),
        }
    }

    /// The backend, as a word for file names.
    pub fn backend(&self) -> &'static str {
        match self {
            Place::Sqlite { .. } => "sqlite",
            Place::Postgres { .. } => "postgres",
        }
    }

    /// The URL of archive `name`.
    pub fn url(&self, name: &str) -> String {
        match self {
            Place::Sqlite { dir } => format!("sqlite://{}", self.file(dir, name).display()),
            Place::Postgres { admin, .. } => pg::with_database(admin, &name.replace('-', "_")),
        }
    }

    fn file(&self, dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.db"))
    }

    /// What archive `name` holds in cluster `cluster`; `None` when there is
    /// no such archive (or it cannot be opened).
    pub async fn holding(&self, name: &str, cluster: &str) -> Option<Holding> {
        if let Place::Sqlite { dir } = self {
            if !self.file(dir, name).exists() {
                return None;
            }
        }
        let db = DbUrl::parse(&self.url(name)).ok()?;
        let store = store::connect(&db).await.ok()?;
        let status = store.status().await;
        store.close().await;
        let status = status.ok()?;
        let c = status.clusters.into_iter().find(|c| c.cluster == cluster)?;
        Some(Holding {
            events: c.events,
            checkpoint: c.checkpoint?,
        })
    }

    /// Makes archive `name` exist and be empty, with its schema created so
    /// that an import into it pays for no migration; returns its URL.
    pub async fn recreate(&self, name: &str) -> anyhow::Result<String> {
        match self {
            Place::Sqlite { dir } => remove_sqlite(&self.file(dir, name)),
            Place::Postgres { admin, .. } => {
                pg::recreate_database(admin, &name.replace('-', "_"))
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
        }
        let url = self.url(name);
        let store = store::connect(&DbUrl::parse(&url)?)
            .await
            .with_context(|| format!("cannot create the archive `{url}`"))?;
        store.close().await;
        Ok(url)
    }

    /// Removes archive `name`.
    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Place::Sqlite { dir } => remove_sqlite(&self.file(dir, name)),
            Place::Postgres { admin, .. } => pg::drop_database(admin, &name.replace('-', "_"))
                .await
                .map_err(anyhow::Error::msg)?,
        }
        Ok(())
    }

    /// Leaves a newly built archive `name` as one that has lived: on
    /// PostgreSQL vacuumed and analyzed, as autovacuum leaves it minutes
    /// after an import (until then every index entry of the new rows is
    /// checked against the table, and autovacuum's own pass competes with
    /// the queries); SQLite needs nothing.
    pub async fn settle(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Place::Sqlite { .. } => Ok(()),
            Place::Postgres { .. } => pg::vacuum(&self.url(name))
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("vacuuming `{name}`")),
        }
    }

    /// Bytes of archive `name` on disk, counted as `bench all` counts them.
    pub async fn bytes(&self, name: &str) -> anyhow::Result<u64> {
        match self {
            Place::Sqlite { dir } => Ok(sqlite_bytes(&self.file(dir, name))),
            Place::Postgres { .. } => pg::archive_bytes(&self.url(name))
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("the size of `{name}`")),
        }
    }
}
