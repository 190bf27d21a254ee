//! What Nomad says about the ACL token in use (`GET /v1/acl/token/self`), and
//! which capability each event stream topic needs: the facts behind a clear
//! message when Nomad keeps closing the stream before its greeting.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// The token as `/v1/acl/token/self` describes it. Its secret is never
/// read, so it can never end up in a message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenInfo {
    /// The token's public identifier, safe to show.
    #[serde(rename = "AccessorID", default)]
    pub accessor_id: String,
    #[serde(default)]
    pub name: String,
    /// `client` or `management`.
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    /// RFC 3339; `null` (or Go's zero time) when the token never expires.
    #[serde(default)]
    pub expiration_time: Option<String>,
}

impl TokenInfo {
    /// Whether the token's expiration time is before `now`. A time that
    /// cannot be read counts as no expiration: the message then names
    /// permissions, which a user can check.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        self.expiration_time
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|at| at <= now)
    }

    /// Whether this is a management token, which may read every topic.
    pub fn is_management(&self) -> bool {
        self.kind == "management"
    }
}

impl fmt::Display for TokenInfo {
    /// Name and accessor ID: what `nomad acl token list` shows to find it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name.is_empty(), self.accessor_id.is_empty()) {
            (false, false) => write!(f, "`{}` (accessor `{}`)", self.name, self.accessor_id),
            (true, false) => write!(f, "with accessor `{}`", self.accessor_id),
            (false, true) => write!(f, "`{}`", self.name),
            (true, true) => write!(f, "in use"),
        }
    }
}

/// What Nomad answered about the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// 400 `ACL support disabled`: the token cannot be the problem.
    AclDisabled,
    /// 401/403: Nomad does not know the token (or none was sent).
    Rejected,
    /// The token has expired; Nomad may or may not still describe it.
    Expired(Option<TokenInfo>),
    /// The token is valid.
    Valid(TokenInfo),
    /// The question itself failed (network, 5xx, unreadable answer).
    Unanswered(String),
}

impl TokenCheck {
    /// Classifies an answer to `GET /v1/acl/token/self`.
    pub fn from_answer(status: u16, body: &str, now: SystemTime) -> TokenCheck {
        let mentions_expiry = body.to_ascii_lowercase().contains("expired");
        match status {
            200 => match serde_json::from_str::<TokenInfo>(body) {
                Ok(token) if token.expired_at(now) => TokenCheck::Expired(Some(token)),
                Ok(token) => TokenCheck::Valid(token),
                Err(e) => TokenCheck::Unanswered(format!("unreadable answer: {e}")),
            },
            400 if body.contains("ACL support disabled") => TokenCheck::AclDisabled,
            _ if mentions_expiry => TokenCheck::Expired(None),
            401 | 403 => TokenCheck::Rejected,
            _ => TokenCheck::Unanswered(format!(
                "HTTP {status}: {}",
                body.trim().chars().take(200).collect::<String>()
            )),
        }
    }
}

/// The ACL capability a subscription to `topic` needs, as Nomad checks it.
pub fn capability(topic: &str) -> &'static str {
    match topic {
        "Job" | "Evaluation" | "Allocation" | "Deployment" | "Service" => "namespace `read-job`",
        "Node" => "`node:read`",
        _ => "a management token",
    }
}

/// Parses an RFC 3339 time as Go writes it (`Z` or a `±hh:mm` offset, any
/// fraction of a second); `None` for anything else, including Go's zero time.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    const DATE_TIME: usize = "2006-01-02T15:04:05".len();
    let text = text.trim();
    let tail = text.get(DATE_TIME..)?;
    let Some(sign_at) = tail.find(['+', '-']) else {
        return humantime::parse_rfc3339_weak(text).ok();
    };
    let (local, offset) = text.split_at(DATE_TIME + sign_at);
    let utc = humantime::parse_rfc3339_weak(local).ok()?;
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let seconds = hours.parse::<u64>().ok()? * 3600 + minutes.parse::<u64>().ok()? * 60;
    let shift = Duration::from_secs(seconds);
    if offset.starts_with('+') {
        utc.checked_sub(shift)
    } else {
        utc.checked_add(shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).expect("a UTC time")
    }

    #[test]
    fn go_times_parse_with_any_offset_and_the_zero_time_does_not() {
        let noon = at("2026-03-01T12:00:00Z");
        assert_eq!(parse_rfc3339("2026-03-01T12:00:00Z"), Some(noon));
        assert_eq!(parse_rfc3339("2026-03-01T14:00:00+02:00"), Some(noon));
        assert_eq!(
            parse_rfc3339("2026-03-01T07:30:00.000000001-04:30"),
            Some(noon + Duration::from_nanos(1))
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("soon"), None);
    }

    #[test]
    fn the_answer_about_the_token_is_classified() {
        let now = at("2026-03-01T12:00:00Z");
        let token = |expiry: &str| {
            format!(
                r#"{{"AccessorID":"a-1","SecretID":"s-1","Name":"archiver","Type":"client","Policies":["p"],"ExpirationTime":{expiry}}}"#
            )
        };
        let info = |expiry: Option<&str>| TokenInfo {
            accessor_id: "a-1".into(),
            name: "archiver".into(),
            kind: "client".into(),
            policies: Some(vec!["p".into()]),
            expiration_time: expiry.map(str::to_owned),
        };
        assert_eq!(
            TokenCheck::from_answer(200, &token("null"), now),
            TokenCheck::Valid(info(None))
        );
        assert_eq!(
            TokenCheck::from_answer(200, &token("\"2026-03-01T11:59:59Z\""), now),
            TokenCheck::Expired(Some(info(Some("2026-03-01T11:59:59Z"))))
        );
        assert_eq!(
            TokenCheck::from_answer(200, &token("\"2026-03-01T12:00:01Z\""), now),
            TokenCheck::Valid(info(Some("2026-03-01T12:00:01Z")))
        );
        assert_eq!(
            TokenCheck::from_answer(400, "ACL support disabled", now),
            TokenCheck::AclDisabled
        );
        assert_eq!(
            TokenCheck::from_answer(403, "Permission denied", now),
            TokenCheck::Rejected
        );
        assert_eq!(
            TokenCheck::from_answer(403, "ACL token expired", now),
            TokenCheck::Expired(None)
        );
        assert!(matches!(
            TokenCheck::from_answer(500, "No cluster leader", now),
            TokenCheck::Unanswered(why) if why == "HTTP 500: No cluster leader"
        ));
    }

    #[test]
    fn each_topic_names_the_capability_nomad_checks() {
        assert_eq!(capability("Allocation"), "namespace `read-job`");
        assert_eq!(capability("Service"), "namespace `read-job`");
        assert_eq!(capability("Node"), "`node:read`");
        for topic in ["*", "NodePool", "ACLToken", "Operator"] {
            assert_eq!(capability(topic), "a management token");
        }
    }

    #[test]
    fn a_token_is_shown_by_name_and_accessor_never_by_secret() {
        let token: TokenInfo = serde_json::from_str(
            r#"{"AccessorID":"a-1","SecretID":"very-secret","Name":"archiver"}"#,
        )
        .expect("token");
        let shown = token.to_string();
        assert_eq!(shown, "`archiver` (accessor `a-1`)");
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
