//! Why Nomad will not stream to this archiver, said once and clearly: when
//! it keeps ending the stream before its `{}` greeting (how Nomad >= 1.11.2
//! refuses a token) or ends it with `ACL token expired`, ingest asks
//! `GET /v1/acl/token/self` and turns the answer into one message naming the
//! cause and the fix, instead of retrying forever.

use std::fmt;

use crate::nomad::acl::capability;
use crate::nomad::subscription::ALL;
use crate::nomad::{TokenCheck, TokenInfo};

/// What Nomad did to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symptom {
    /// This many bodies in a row ended before the greeting.
    EmptyStreams(u32),
    /// The body ended with the close reason `ACL token expired`.
    ExpiredCloseReason,
}

/// A refusal that no reconnect can fix, with what Nomad said about the token.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The agent's address, as the user gave it.
    pub address: String,
    pub symptom: Symptom,
    /// The answer to `GET /v1/acl/token/self`.
    pub check: TokenCheck,
    /// The requested `(Topic, Key)` pairs; `*` or none for every topic.
    pub topics: Vec<(String, String)>,
    /// The requested namespace; `*` for all.
    pub namespace: String,
    /// Whether a token was sent at all.
    pub has_token: bool,
}

/// The hint for a token that may not read what was requested.
const LEAST_PRIVILEGE: &str = "grant those capabilities, or with a least-privilege token name only the topics it may read, \
     e.g. --topic Job --topic Evaluation --topic Allocation --topic Deployment (namespace read-job) and --topic Node (node:read)";
/// The hint for an expired token.
const RENEW: &str = "create a new token (`nomad acl token create`) and set --token or NOMAD_TOKEN to its secret ID; \
     ingest resumes from its checkpoint";

impl Rejection {
    fn all_topics(&self) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|(topic, _)| topic == ALL)
    }

    /// The requested topics with the capability each needs.
    fn needs(&self) -> String {
        if self.all_topics() {
            return "all topics (no --topic), which needs a management token".to_owned();
        }
        let every_namespace = if self.namespace == ALL {
            " in every namespace (--namespace '*')"
        } else {
            ""
        };
        let needs: Vec<String> = self
            .topics
            .iter()
            .map(|(topic, key)| {
                let name = if key == ALL {
                    topic.clone()
                } else {
                    format!("{topic}:{key}")
                };
                let need = capability(topic);
                let scope = if need.starts_with("namespace") {
                    every_namespace
                } else {
                    ""
                };
                format!("`{name}` needs {need}{scope}")
            })
            .collect();
        needs.join(", ")
    }

    fn expired(token: Option<&TokenInfo>) -> String {
        match token {
            Some(t) => match t.expiration_time.as_deref() {
                Some(at) => format!("the ACL token {t} expired at `{at}`"),
                None => format!("the ACL token {t} has expired"),
            },
            None => "the ACL token has expired".to_owned(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symptom {
            Symptom::EmptyStreams(n) => write!(
                f,
                "Nomad at `{}` ended the event stream before its `{{}}` greeting {n} times in a row: ",
                self.address
            )?,
            Symptom::ExpiredCloseReason => write!(
                f,
                "Nomad at `{}` ended the event stream with `ACL token expired`: ",
                self.address
            )?,
        }
        let (cause, hint) = match (&self.check, self.symptom) {
            (TokenCheck::Expired(token), _) => (Self::expired(token.as_ref()), RENEW.to_owned()),
            (TokenCheck::Valid(token), Symptom::ExpiredCloseReason) => {
                (Self::expired(Some(token)), RENEW.to_owned())
            }
            (_, Symptom::ExpiredCloseReason) => (Self::expired(None), RENEW.to_owned()),
            (TokenCheck::AclDisabled, _) => (
                "ACLs are disabled there, so it is not the token; the agent closes the stream \
                 before its greeting for an unknown reason"
                    .to_owned(),
                "check the agent's log, and that --address points at a Nomad agent".to_owned(),
            ),
            (TokenCheck::Rejected, _) if !self.has_token => (
                "no ACL token was given, and Nomad requires one (`GET /v1/acl/token/self` answered 403)"
                    .to_owned(),
                "set --token or NOMAD_TOKEN to a token that may read the requested topics"
                    .to_owned(),
            ),
            (TokenCheck::Rejected, _) => (
                "Nomad does not accept the ACL token (`GET /v1/acl/token/self` answered 403): \
                 it is unknown, mistyped or was deleted"
                    .to_owned(),
                "set --token or NOMAD_TOKEN to a valid token's secret ID".to_owned(),
            ),
            (TokenCheck::Valid(token), _) if token.is_management() => (
                format!(
                    "the ACL token {token} is a valid management token, so the agent closes the stream \
                     before its greeting for an unknown reason"
                ),
                "check the agent's log".to_owned(),
            ),
            (TokenCheck::Valid(token), _) => (
                format!(
                    "the ACL token {token} is valid but lacks permission for the requested topics: {}",
                    self.needs()
                ),
                LEAST_PRIVILEGE.to_owned(),
            ),
            (TokenCheck::Unanswered(detail), _) => (
                format!(
                    "asking `GET /v1/acl/token/self` about the token failed too ({detail}); \
                     the usual cause is a token that is missing, expired or lacks permission for {}",
                    self.needs()
                ),
                LEAST_PRIVILEGE.to_owned(),
            ),
        };
        write!(f, "{cause} (hint: {hint})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenInfo {
        TokenInfo {
            accessor_id: "a-1".into(),
            name: "archiver".into(),
            kind: "client".into(),
            policies: None,
            expiration_time: None,
        }
    }

    fn rejection(check: TokenCheck, topics: &[&str], namespace: &str) -> String {
        Rejection {
            address: "http://nomad:4646".into(),
            symptom: Symptom::EmptyStreams(2),
            check,
            topics: topics
                .iter()
                .map(|t| {
                    let (topic, key) = t.split_once(':').unwrap_or((t, "*"));
                    (topic.to_owned(), key.to_owned())
                })
                .collect(),
            namespace: namespace.into(),
            has_token: true,
        }
        .to_string()
    }

    #[test]
    fn a_valid_token_is_told_what_each_requested_topic_needs() {
        assert_eq!(
            rejection(
                TokenCheck::Valid(token()),
                &["Job", "Node", "NodePool", "Allocation:web"],
                "prod"
            ),
            "Nomad at `http://nomad:4646` ended the event stream before its `{}` greeting 2 times in a row: \
             the ACL token `archiver` (accessor `a-1`) is valid but lacks permission for the requested topics: \
             `Job` needs namespace `read-job`, `Node` needs `node:read`, `NodePool` needs a management token, \
             `Allocation:web` needs namespace `read-job` (hint: grant those capabilities, or with a least-privilege \
             token name only the topics it may read, e.g. --topic Job --topic Evaluation --topic Allocation \
             --topic Deployment (namespace read-job) and --topic Node (node:read))"
        );
        let all = rejection(TokenCheck::Valid(token()), &["*"], "*");
        assert!(
            all.contains("all topics (no --topic), which needs a management token"),
            "{all}"
        );
        let every = rejection(TokenCheck::Valid(token()), &["Job"], "*");
        assert!(
            every.contains("`Job` needs namespace `read-job` in every namespace"),
            "{every}"
        );
    }

    #[test]
    fn each_answer_about_the_token_gives_its_own_cause() {
        let expired = TokenInfo {
            expiration_time: Some("2025-01-01T00:00:00Z".into()),
            ..token()
        };
        let cases = [
            (TokenCheck::Rejected, "Nomad does not accept the ACL token"),
            (
                TokenCheck::Expired(Some(expired)),
                "the ACL token `archiver` (accessor `a-1`) expired at `2025-01-01T00:00:00Z`",
            ),
            (
                TokenCheck::Expired(None),
                "the ACL token has expired (hint: create a new token",
            ),
            (
                TokenCheck::AclDisabled,
                "ACLs are disabled there, so it is not the token; the agent closes the stream before its greeting for an unknown reason",
            ),
            (
                TokenCheck::Unanswered("HTTP 500: boom".into()),
                "failed too (HTTP 500: boom)",
            ),
        ];
        for (check, want) in cases {
            let message = rejection(check, &["Job"], "default");
            assert!(message.contains(want), "{message}");
        }
    }

    #[test]
    fn an_expired_close_reason_is_named_as_expiry_whatever_the_token_lookup_says() {
        let message = Rejection {
            address: "http://nomad:4646".into(),
            symptom: Symptom::ExpiredCloseReason,
            check: TokenCheck::Valid(token()),
            topics: vec![],
            namespace: "*".into(),
            has_token: true,
        }
        .to_string();
        assert!(
            message.starts_with(
                "Nomad at `http://nomad:4646` ended the event stream with `ACL token expired`: \
                 the ACL token `archiver` (accessor `a-1`) has expired (hint: create a new token"
            ),
            "{message}"
        );
    }
}
