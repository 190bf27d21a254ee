//! Everything that speaks Nomad: the event stream's wire types, the NDJSON line
//! reader that frames a byte stream into lines, subscriptions (what a
//! subscriber asks for, and Nomad's rules for matching it), the HTTP client,
//! the reasons Nomad gives for closing a stream, and what it says about the
//! ACL token in use.

pub mod acl;
pub mod client;
pub mod close_reason;
mod fields;
pub mod lines;
pub mod subscription;
pub mod wire;

pub use acl::{TokenCheck, TokenInfo};
pub use client::{NomadClient, StreamError};
pub use close_reason::CloseReason;
pub use lines::{LineItem, LineReader};
pub use subscription::Subscription;
pub use wire::{Event, Frame, Line, parse_line};
