//! The simulated ACL system: the token a request must present, whether it
//! has expired or may not read topics, and `GET /v1/acl/token/self`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::reply::{json, text};
use super::sync::lock;

/// The configured token's accessor ID, as `/v1/acl/token/self` shows it.
pub const SIM_TOKEN_ACCESSOR: &str = "3c1d9a52-7e0b-4f6a-8d21-5b9e0c4f7a13";
/// The configured token's name, as `/v1/acl/token/self` shows it.
pub const SIM_TOKEN_NAME: &str = "event-archiver";

/// The token requests must carry, and how it is treated.
pub(crate) struct Acl {
    /// The required ACL token, if ACLs are on.
    token: Mutex<Option<String>>,
    /// Whether that token has expired: `/v1/acl/token/self` shows an
    /// expiration time in the past and new streams are refused.
    expired: AtomicBool,
    /// Whether every stream is refused as 200 and an empty body, as Nomad
    /// >= 1.11.2 refuses a token that may not read the requested topics.
    topic_denied: AtomicBool,
}

impl Acl {
    /// ACLs on with `token` required, or off with `None`.
    pub(crate) fn new(token: Option<String>) -> Acl {
        Acl {
            token: Mutex::new(token),
            expired: AtomicBool::new(false),
            topic_denied: AtomicBool::new(false),
        }
    }

    /// Changes the required token; `None` turns ACLs off.
    pub(crate) fn set_token(&self, token: Option<String>) {
        *lock(&self.token) = token;
    }

    /// Marks the token as expired, or valid again.
    pub(crate) fn set_expired(&self, expired: bool) {
        self.expired.store(expired, Ordering::SeqCst);
    }

    /// Makes the token unable (or able again) to read any topic.
    pub(crate) fn set_topic_denied(&self, denied: bool) {
        self.topic_denied.store(denied, Ordering::SeqCst);
    }

    /// Whether ACLs are on and the token has expired.
    pub(crate) fn expired(&self) -> bool {
        lock(&self.token).is_some() && self.expired.load(Ordering::SeqCst)
    }

    /// Whether the token may not read the topics of a stream.
    pub(crate) fn topic_denied(&self) -> bool {
        self.topic_denied.load(Ordering::SeqCst)
    }

    /// Whether the request carries the configured token (always, with ACLs off).
    pub(crate) fn authorizes(&self, headers: &HeaderMap) -> bool {
        let token = lock(&self.token);
        let Some(want) = token.as_deref() else {
            return true;
        };
        let header_str = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let nomad = header_str(HeaderName::from_static("x-nomad-token"));
        let bearer = header_str(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
        nomad == Some(want) || bearer.map(str::trim) == Some(want)
    }

    /// `GET /v1/acl/token/self`: the configured token, as Nomad describes it.
    pub(crate) fn token_self(&self, headers: &HeaderMap) -> Response {
        let Some(secret) = lock(&self.token).clone() else {
            return text(StatusCode::BAD_REQUEST, "ACL support disabled");
        };
        if !self.authorizes(headers) {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
        let expiration = self
            .expired
            .load(Ordering::SeqCst)
            .then_some("2025-01-01T00:00:00Z");
        let token = serde_json::json!({
            "AccessorID": SIM_TOKEN_ACCESSOR,
            "SecretID": secret,
            "Name": SIM_TOKEN_NAME,
            "Type": "client",
            "Policies": ["event-reader"],
            "Global": false,
            "ExpirationTime": expiration,
            "CreateIndex": 7,
            "ModifyIndex": 7,
        });
        json(token.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_token_is_accepted_in_either_header_and_only_when_it_matches() {
        let acl = Acl::new(Some("s3cret".into()));
        assert!(acl.authorizes(&headers("x-nomad-token", "s3cret")));
        assert!(acl.authorizes(&headers("authorization", "Bearer s3cret ")));
        assert!(!acl.authorizes(&headers("x-nomad-token", "other")));
        assert!(!acl.authorizes(&headers("authorization", "s3cret")));
        assert!(!acl.authorizes(&HeaderMap::new()));
        acl.set_token(None);
        assert!(acl.authorizes(&HeaderMap::new()), "ACLs off");
    }

    #[test]
    fn a_token_counts_as_expired_only_while_acls_are_on() {
        let acl = Acl::new(None);
        acl.set_expired(true);
        assert!(!acl.expired());
        acl.set_token(Some("s3cret".into()));
        assert!(acl.expired());
        acl.set_expired(false);
        assert!(!acl.expired());
    }
}
