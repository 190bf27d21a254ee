//! A Nomad-compatible event stream simulator and a generator of realistic Nomad history.
//!
//! Tests start it in-process ([`Sim::start`]) and point the archiver at it;
//! the `nomad-sim` binary serves a generated history for demos and benchmarks.
//! It follows the wire format and buffer semantics described in
//! `nomad-event-stream.md`: `{}` greeting and heartbeats, frames in index
//! order, Nomad's start-index rules and its `event dropped from buffer`
//! cut-off, plus injectable faults ([`ConnFault`]).
//!
//! Layout. Each file owns one concept and its state; a file imports only
//! files listed before it, so the modules form no circle.
//! - `sync` (locking that survives a panic), `reply` (plain-text and JSON
//!   responses): used by the owners below.
//! - `frame` (events and wire lines); `buffer` (the bounded buffer and start
//!   positions) imports `frame`; `published` (what was published: the
//!   buffer, the history, the raft index, the signal that wakes subscribers)
//!   imports `buffer` and `frame`.
//! - `acl` (the token, its expiry and denied topics, `/v1/acl/token/self`).
//! - `framing` (the framings, gzip, and the format new bodies are written in).
//! - `cluster` (identity, `/v1/agent/members`, the restart signal),
//!   `namespaces` (the namespace table, `/v1/namespaces` as a blocking
//!   query), `lists` (the read endpoints `/v1/jobs`, `/v1/allocations`, …
//!   answered from the published objects; imports `buffer`): each imports
//!   `acl` to check the token.
//! - `generator` (seeded history) imports `frame` only.
//! - `stream` (one subscriber's body and the faults it acts out) imports the
//!   owners it streams from: `published`, `buffer`, `cluster`,
//!   `namespaces`, `framing`.
//! - `endpoint` (`/v1/event/stream`: answering a request, queued faults,
//!   requests seen) imports `stream`, `acl`, `framing`; `listener` (the
//!   socket, close-delimited bodies written by hand) imports `endpoint`.
//! - `server` (the [`Sim`] handle and the router) composes the owners and
//!   sends each request to the one it concerns; nothing imports from it
//!   but the re-exports below.

mod acl;
mod buffer;
mod cluster;
mod endpoint;
mod frame;
mod framing;
mod generator;
mod listener;
mod lists;
mod namespaces;
mod published;
mod reply;
mod server;
mod stream;
mod sync;

pub use acl::{SIM_TOKEN_ACCESSOR, SIM_TOKEN_NAME};
pub use endpoint::StreamRequest;
pub use frame::{SimEvent, SimFrame};
pub use framing::Framing;
pub use generator::Generator;
pub use lists::ApiRequest;
pub use nomad_chronicle::nomad::Subscription;
pub use server::{Sim, SimConfig};
pub use stream::ConnFault;
