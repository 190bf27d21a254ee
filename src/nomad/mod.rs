//! Everything that speaks Nomad: the event stream's wire types, the NDJSON line
//! reader that frames a byte stream into lines, and the HTTP client.

pub mod client;
pub mod lines;
pub mod wire;

pub use client::{NomadClient, StreamError, Subscription};
pub use lines::{LineItem, LineReader};
pub use wire::{Event, Frame, Line, parse_line};
