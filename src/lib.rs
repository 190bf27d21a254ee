//! nomad-chronicle turns HashiCorp Nomad's live event stream into a durable,
//! queryable history.
//!
//! # Layout
//! - [`archive`]: the domain model (frames as received, batches, gaps,
//!   clusters, archived events, status), shared by every module below.
//! - [`backoff`]: exponential backoff with jitter, for reconnects and retries.
//! - [`cli`]: the command line, one file per subcommand; thin, it calls into
//!   the modules below.
//! - [`config`]: validated settings (database URL, agent address, TLS, token,
//!   batching), built before any connection opens.
//! - [`nomad`]: the event stream's wire types, the NDJSON line reader and the
//!   HTTP client.
//! - [`ingest`]: reader → bounded channel → batching writer; resume points,
//!   gap detection, reconnects.
//! - [`store`]: the `Store` trait, `StoreError`, `open` (what `--db` names
//!   is identified first; reads open it read-only) and the two backends;
//!   the only place with SQL.
//! - [`metrics`]: the Prometheus metrics `ingest --listen` and `serve`
//!   expose, and their text encoding.
//! - [`query`]: answers from the archive (filtered events, an object's state
//!   at a point in history), rendered as table, JSON or NDJSON.
//! - [`replay`]: stored history read back as Nomad frames, and `serve`, the
//!   archive as a `/v1/event/stream` endpoint.
//! - [`retention`]: where a prune cuts history, and the age and size
//!   budgets `ingest` keeps in the background.
//! - [`web`]: `serve`'s web timeline: a read-only page at `/ui/` and the
//!   JSON API under `/api/v1/` it reads, answered by [`query`].
//!
//! The Nomad-compatible simulator (`nomad-sim`), the benchmark harness
//! (`bench`) and the shared test support (`testkit`) are packages of their
//! own in this workspace; see docs/architecture.md.

pub mod archive;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod ingest;
pub mod metrics;
pub mod nomad;
pub mod query;
pub mod replay;
pub mod retention;
pub mod store;
pub mod web;
