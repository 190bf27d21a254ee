//! The reasons Nomad (<= 1.11.1) writes at the end of a stream body, raw and
//! without a newline, when it ends a subscription after its 200: each asks
//! the client for something different.

/// A close reason the archiver acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `event dropped from buffer`: this reader fell so far behind that its
    /// place left Nomad's buffer; events after the last one received may be
    /// lost.
    Dropped,
    /// `subscription closed by server, client should resubscribe`: token or
    /// policy changed, server shutdown, raft snapshot installed.
    Resubscribe,
    /// `ACL token expired`: no reconnect can succeed with this token.
    TokenExpired,
}

impl CloseReason {
    /// Recognizes a trailing fragment as one of Nomad's reasons.
    pub fn parse(fragment: &str) -> Option<CloseReason> {
        let text = fragment.trim();
        if text.starts_with("event dropped from buffer") {
            Some(CloseReason::Dropped)
        } else if text.starts_with("subscription closed by server") {
            Some(CloseReason::Resubscribe)
        } else if text.starts_with("ACL token expired") {
            Some(CloseReason::TokenExpired)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomads_reasons_are_recognized_and_other_text_is_not() {
        assert_eq!(
            CloseReason::parse("event dropped from buffer"),
            Some(CloseReason::Dropped)
        );
        assert_eq!(
            CloseReason::parse("subscription closed by server, client should resubscribe"),
            Some(CloseReason::Resubscribe)
        );
        assert_eq!(
            CloseReason::parse("ACL token expired"),
            Some(CloseReason::TokenExpired)
        );
        assert_eq!(CloseReason::parse("{\"Index\":12,\"Ev"), None);
    }
}
