//! A Nomad-compatible event stream simulator and a generator of realistic Nomad history.
//!
//! Tests start it in-process ([`Sim::start`]) and point the archiver at it;
//! the `nomad-sim` binary serves a generated history for demos and benchmarks.
//! It follows the wire format and buffer semantics described in
//! `nomad-event-stream.md`: `{}` greeting and heartbeats, frames in index
//! order, Nomad's start-index rules and its `event dropped from buffer`
//! cut-off, plus injectable faults ([`ConnFault`]).
//!
//! Layout: `frame` (events and wire lines), `buffer` (the bounded buffer and start positions), `server`
//! (the handle and HTTP routes), `stream` (one subscriber's body), `framing`
//! (chunked, gzip and close-delimited bodies, the last written by hand),
//! `namespaces` (the namespace list as a blocking query, and which
//! namespaces a stream covers), `cluster` (the cluster's identity, restarts,
//! becoming another cluster), `lists` (the read endpoints: `/v1/jobs`,
//! `/v1/allocations`, … answered from the published state), `generator`
//! (seeded history).

mod buffer;
mod cluster;
mod frame;
mod framing;
mod generator;
mod lists;
mod namespaces;
mod server;
mod stream;

pub use frame::{SimEvent, SimFrame};
pub use framing::Framing;
pub use generator::Generator;
pub use lists::ApiRequest;
pub use nomad_chronicle::nomad::Subscription;
pub use server::{ConnFault, SIM_TOKEN_ACCESSOR, SIM_TOKEN_NAME, Sim, SimConfig, StreamRequest};
