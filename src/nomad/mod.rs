//! Everything that speaks Nomad: the event stream's wire types, the NDJSON line
//! reader that frames a byte stream into lines, subscriptions (what a
//! subscriber asks for, and Nomad's rules for matching it), and the HTTP client.

pub mod client;
pub mod lines;
pub mod subscription;
pub mod wire;

pub use client::{NomadClient, StreamError};
pub use lines::{LineItem, LineReader};
pub use subscription::Subscription;
pub use wire::{Event, Frame, Line, parse_line};
