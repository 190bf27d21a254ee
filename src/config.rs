//! Validated settings, built from the command line before any connection opens:
//! the database URL, the Nomad agent's address, TLS and token, and the batching
//! knobs. Anything holding a secret prints redacted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

/// A secret string (an ACL token, a database password) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// For clap: any string is a valid secret.
    pub fn parse(value: &str) -> Result<Secret, std::convert::Infallible> {
        Ok(Secret::new(value))
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the archive lives, parsed from `--db`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `sqlite://PATH` or `sqlite:PATH`: a file, created by the first `ingest` or `import`.
    SqliteFile(PathBuf),
    /// `sqlite::memory:`: a private in-memory database (tests, experiments).
    SqliteMemory,
    /// `postgres://…` or `postgresql://…`; the URL is kept whole since it may
    /// carry options, and prints with its password masked.
    Postgres(Secret),
}

/// Why a `--db` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error(
        "`{0}` is not a database URL: use sqlite://PATH (for example sqlite://nomad-chronicle.db), sqlite::memory: or postgres://USER:PASSWORD@HOST/DATABASE"
    )]
    Unsupported(String),
    #[error("`{0}` names no file: use sqlite://PATH, for example sqlite://nomad-chronicle.db")]
    EmptyPath(String),
    #[error(
        "--db-password-file is for PostgreSQL; `{0}` is a SQLite archive, which has no password"
    )]
    PasswordForSqlite(String),
    #[error(
        "`{0}` already holds a password: give it in the URL or in --db-password-file, not both"
    )]
    TwoPasswords(String),
}

impl DbUrl {
    /// Parses a `--db` value.
    pub fn parse(value: &str) -> Result<Self, DbUrlError> {
        let value = value.trim();
        if value == "sqlite::memory:" || value == "sqlite://:memory:" {
            return Ok(DbUrl::SqliteMemory);
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(Secret::new(value)));
        }
        if let Some(rest) = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(DbUrlError::EmptyPath(value.to_owned()));
            }
            return Ok(DbUrl::SqliteFile(PathBuf::from(path)));
        }
        Err(DbUrlError::Unsupported(redact_url(value)))
    }

    /// This URL with the PostgreSQL password read from `--db-password-file`,
    /// added as the `password` parameter (which prints masked like any other).
    pub fn with_password(self, password: &Secret) -> Result<Self, DbUrlError> {
        let DbUrl::Postgres(url) = &self else {
            return Err(DbUrlError::PasswordForSqlite(self.to_string()));
        };
        if holds_password(url.expose()) {
            return Err(DbUrlError::TwoPasswords(self.to_string()));
        }
        let encoded: String =
            form_urlencoded::byte_serialize(password.expose().as_bytes()).collect();
        let separator = if url.expose().contains('?') { '&' } else { '?' };
        Ok(DbUrl::Postgres(Secret::new(format!(
            "{}{separator}password={encoded}",
            url.expose()
        ))))
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::SqliteFile(path) => write!(f, "sqlite://{}", path.display()),
            DbUrl::SqliteMemory => f.write_str("sqlite::memory:"),
            DbUrl::Postgres(url) => f.write_str(&redact_url(url.expose())),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

/// Whether a PostgreSQL URL gives a password, in its user info or as a
/// parameter.
fn holds_password(url: &str) -> bool {
    match Url::parse(url) {
        Ok(parsed) => {
            parsed.password().is_some() || parsed.query_pairs().any(|(name, _)| name == "password")
        }
        Err(_) => redact_url(url) != url,
    }
}

/// A URL with every password replaced by `***`: the one in its user info
/// and any query parameter naming one (`?password=…`, which libpq and sqlx
/// accept as well). The rest is kept as written.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if let Some(query) = parsed.query().map(redact_query) {
                parsed.set_query(Some(&query));
            }
            parsed.to_string()
        }
        Err(_) => redact_unparsed(url),
    }
}

/// [`redact_url`] for a string that is not a valid URL: everything from the
/// user name's `:` to the last `@` is hidden (more than the password, when
/// in doubt), and so is any password parameter after them.
fn redact_unparsed(url: &str) -> String {
    let start = url.find("://").map_or(0, |s| s + 3);
    let userinfo = url
        .rfind('@')
        .filter(|at| *at >= start)
        .and_then(|at| url[start..at].find(':').map(|colon| (start + colon, at)));
    let (head, rest) = match userinfo {
        Some((colon, at)) => (format!("{}:***", &url[..colon]), &url[at..]),
        None => (String::new(), url),
    };
    match rest.split_once('?') {
        Some((before, query)) => format!("{head}{before}?{}", redact_query(query)),
        None => format!("{head}{rest}"),
    }
}

/// A query string with the value of every parameter whose name contains
/// `password` (any case) replaced by `***`.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if names_a_password(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn names_a_password(name: &str) -> bool {
    let decoded: String = form_urlencoded::parse(format!("{name}=").as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    decoded.to_ascii_lowercase().contains("password")
}

/// Why a secret could not be read from its file.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {what} file `{path}`: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("the {what} file `{0}` is empty: write the {what} in it, on one line", what = .1)]
    Empty(String, &'static str),
}

/// Reads a secret (`what`: "password", "token") kept in a file, so it never
/// appears on a command line where `ps` shows it. The line end after it is
/// not part of it; an empty or blank file is refused rather than read as
/// "no secret".
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<Secret, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        what,
        path: path.display().to_string(),
        source,
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(SecretFileError::Empty(path.display().to_string(), what));
    }
    Ok(Secret::new(secret))
}

/// How to reach a Nomad agent, in the Nomad CLI's terms.
#[derive(Debug, Clone)]
pub struct NomadConfig {
    pub address: Url,
    pub token: Option<Secret>,
    pub region: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub tls_skip_verify: bool,
}

/// Why an agent address was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("`{0}` is not a valid Nomad address: {1} (expected e.g. http://127.0.0.1:4646)")]
    Invalid(String, String),
    #[error("`{0}` is not an http:// or https:// address (expected e.g. http://127.0.0.1:4646)")]
    Scheme(String),
}

/// Parses `--address`; like the Nomad CLI, a bare `host:port` means http.
pub fn parse_address(value: &str) -> Result<Url, AddressError> {
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| AddressError::Invalid(value.to_owned(), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AddressError::Scheme(value.to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(AddressError::Invalid(
            value.to_owned(),
            "no host".to_owned(),
        ));
    }
    Ok(url)
}

/// The cluster label used when `--cluster` is not given: the agent's host (and
/// port, when it is not Nomad's 4646), or `default` for a local agent.
pub fn default_cluster_label(address: &Url) -> String {
    let host = address.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "localhost" || host == "::1" || host.starts_with("127.") {
        return "default".to_owned();
    }
    match address.port() {
        Some(port) if port != 4646 => format!("{host}:{port}"),
        _ => host.to_owned(),
    }
}

/// When the writer commits: after `max_events` events, before a frame would
/// take the batch past `max_bytes` of events, or `timeout` after the first
/// message of a batch, whichever comes first. A frame is never split: one
/// larger than `max_bytes` makes a batch on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConfig {
    pub max_events: usize,
    /// Bounds the memory a batch holds when frames are large (a job with a
    /// multi-megabyte template), where `max_events` alone would not.
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl BatchConfig {
    pub const DEFAULT_MAX_EVENTS: usize = 5000;
    pub const DEFAULT_MAX_BYTES: usize = 16 << 20;
    /// The largest `max_bytes` accepted: twice it must still count in the
    /// channel's budget (see [`BatchConfig::in_flight_bytes`]).
    pub const MAX_BYTES_LIMIT: usize = 1 << 30;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// The most bytes of events held between the reader and the store: a
    /// batch committing and the next one filling.
    pub fn in_flight_bytes(&self) -> usize {
        self.max_bytes.saturating_mul(2)
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: Self::DEFAULT_MAX_EVENTS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_recognised() {
        assert_eq!(
            DbUrl::parse("sqlite://data/a.db").ok(),
            Some(DbUrl::SqliteFile("data/a.db".into()))
        );
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/x.db").ok(),
            Some(DbUrl::SqliteFile("/var/lib/x.db".into()))
        );
        assert_eq!(
            DbUrl::parse("sqlite::memory:").ok(),
            Some(DbUrl::SqliteMemory)
        );
        assert!(matches!(
            DbUrl::parse("postgresql://u@h/db"),
            Ok(DbUrl::Postgres(_))
        ));
        assert!(matches!(
            DbUrl::parse("sqlite://"),
            Err(DbUrlError::EmptyPath(_))
        ));
        assert!(matches!(
            DbUrl::parse("mysql://x"),
            Err(DbUrlError::Unsupported(_))
        ));
        assert!(matches!(
            DbUrl::parse("nomad.db"),
            Err(DbUrlError::Unsupported(_))
        ));
    }

    #[test]
    fn database_passwords_never_print() {
        let url = DbUrl::parse("postgres://app:hunter2@db.example/chronicle").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db.example/chronicle");
        assert!(!format!("{url:?}").contains("hunter2"));
        let err = DbUrl::parse("mysql://app:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!format!("{:?}", Secret::new("s3cr3t")).contains("s3cr3t"));
    }

    #[test]
    fn password_parameters_are_masked_as_well() {
        let cases = [
            (
                "postgres://u@db/x?password=hunter2",
                "postgres://u@db/x?password=***",
            ),
            (
                "postgres://u:hunter2@db/x?sslmode=require&Password=hunter2&application_name=a",
                "postgres://u:***@db/x?sslmode=require&Password=***&application_name=a",
            ),
            (
                "postgres:///x?host=/run/postgresql&password=hunter2",
                "postgres:///x?host=/run/postgresql&password=***",
            ),
            (
                "postgres://u@db/x?pass%77ord=hunter2",
                "postgres://u@db/x?pass%77ord=***",
            ),
            // Not a valid URL (a port that is no number): still masked.
            (
                "postgres://u:hunter2@db:port/x?password=hunter2",
                "postgres://u:***@db:port/x?password=***",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let db = DbUrl::parse("postgres://u@db/x?password=hunter2").unwrap();
        assert_eq!(db.to_string(), "postgres://u@db/x?password=***");
    }

    #[test]
    fn a_password_from_a_file_joins_the_url_as_a_parameter() {
        let password = Secret::new("p&ss word");
        let db = DbUrl::parse("postgres://u@db/x?sslmode=disable").unwrap();
        let DbUrl::Postgres(url) = db.with_password(&password).unwrap() else {
            panic!("not PostgreSQL");
        };
        assert_eq!(
            url.expose(),
            "postgres://u@db/x?sslmode=disable&password=p%26ss+word"
        );
        for twice in ["postgres://u:a@db/x", "postgres://u@db/x?password=a"] {
            let db = DbUrl::parse(twice).unwrap();
            assert!(matches!(
                db.with_password(&password),
                Err(DbUrlError::TwoPasswords(_))
            ));
        }
        assert!(matches!(
            DbUrl::SqliteMemory.with_password(&password),
            Err(DbUrlError::PasswordForSqlite(_))
        ));
    }

    #[test]
    fn secret_files_lose_their_line_end_and_may_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cr3t \r\n").unwrap();
        assert_eq!(
            read_secret_file(&path, "token").unwrap().expose(),
            "s3cr3t "
        );
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            read_secret_file(&path, "token"),
            Err(SecretFileError::Empty(..))
        ));
        assert!(matches!(
            read_secret_file(&dir.path().join("missing"), "token"),
            Err(SecretFileError::Read { .. })
        ));
    }

    #[test]
    fn addresses_follow_the_nomad_cli() {
        assert_eq!(
            parse_address("10.0.0.5:4646").unwrap().as_str(),
            "http://10.0.0.5:4646/"
        );
        assert_eq!(
            parse_address("https://nomad.example").unwrap().scheme(),
            "https"
        );
        assert!(matches!(
            parse_address("ftp://x"),
            Err(AddressError::Scheme(_))
        ));
        assert!(parse_address("http://").is_err());
    }

    #[test]
    fn cluster_label_comes_from_the_address() {
        let label = |a: &str| default_cluster_label(&parse_address(a).unwrap());
        assert_eq!(label("http://127.0.0.1:4646"), "default");
        assert_eq!(label("http://localhost:9999"), "default");
        assert_eq!(
            label("https://nomad.prod.example:4646"),
            "nomad.prod.example"
        );
        assert_eq!(
            label("https://nomad.prod.example:8443"),
            "nomad.prod.example:8443"
        );
    }
}
