//! A buffer that refuses to grow past a limit, so an API answer built by
//! the query layer's writers is held whole in memory only while it is
//! small enough.

use std::io::{self, Write};

/// Bytes written so far, at most `limit` of them.
pub(super) struct Capped {
    /// The answer as written so far.
    pub bytes: Vec<u8>,
    /// The most the answer may hold.
    limit: usize,
    /// Whether a write was refused for going past `limit`.
    pub overflowed: bool,
}

impl Capped {
    pub fn new(limit: usize) -> Self {
        Capped {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            self.overflowed = true;
            return Err(io::Error::other(format!(
                "the answer is larger than {} bytes",
                self.limit
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_the_limit_is_refused_and_remembered() {
        let mut out = Capped::new(4);
        out.write_all(b"abc").expect("fits");
        assert!(out.write_all(b"de").is_err());
        assert!(out.overflowed);
        assert_eq!(out.bytes, b"abc");
    }
}
