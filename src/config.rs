//! Validated settings, built from the command line before any connection opens:
//! the database URL, the Nomad agent's address, TLS and token, and the batching
//! knobs. Anything holding a secret prints redacted.

use std::fmt;
use std::path::PathBuf;
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
    /// `sqlite://PATH` or `sqlite:PATH`: a file, created on first use.
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

/// A URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not parseable: still hide anything between `:` and `@` after the scheme.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let userinfo = &url[s + 3..at];
                match userinfo.find(':') {
                    Some(colon) => format!("{}:***{}", &url[..s + 3 + colon], &url[at..]),
                    None => url.to_owned(),
                }
            }
            _ => url.to_owned(),
        },
    }
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
