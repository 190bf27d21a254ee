//! nomad-chronicle turns HashiCorp Nomad's live event stream into a durable,
//! queryable history.
//!
//! # Layout
//! - [`cli`]: the command line, one file per subcommand; thin, it calls into
//!   the modules below.
//! - [`config`]: validated settings (database URL, agent address, TLS, token,
//!   batching), built before any connection opens.
//! - [`nomad`]: the event stream's wire types, the NDJSON line reader and the
//!   HTTP client.
//! - [`ingest`]: reader → bounded channel → batching writer; resume points,
//!   gap detection, reconnects.
//! - [`store`]: the `Store` trait and its backends; the only place with SQL.
//! - [`query`]: answers from the archive (filtered events, an object's state
//!   at a point in history), rendered as table, JSON or NDJSON.
//! - [`replay`]: stored history read back as Nomad frames, and `serve`, the
//!   archive as a `/v1/event/stream` endpoint.
//!
//! The Nomad-compatible simulator (`nomad-sim`), the benchmark harness
//! (`bench`) and the shared test support (`testkit`) are packages of their
//! own in this workspace; see docs/architecture.md.

pub mod cli;
pub mod config;
pub mod ingest;
pub mod nomad;
pub mod query;
pub mod replay;
pub mod store;
