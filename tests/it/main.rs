//! The integration suite: one test binary. Tests start the Nomad-compatible
//! simulator on a loopback port, run the real `nomad-chronicle` binary against
//! it, and check the archive (a real SQLite file or PostgreSQL database) row
//! by row.

mod architecture;
mod blocks;
mod checkpoint;
mod cli_help;
mod common;
mod compression;
mod deploy;
mod gap_answers;
mod gap_truth;
mod import;
mod index_range;
mod ingest;
mod json_schema;
mod keyframes;
mod lease;
mod lists;
mod namespaces;
mod nomad_time;
mod opening;
mod postgres;
mod query;
mod query_forms;
mod reconcile;
mod refusals;
mod replay;
mod reporting;
mod restarts;
mod retention;
mod secrets;
mod serve_guard;
mod service;
mod status;
mod stream_ends;
mod streaming;
mod tables;
mod time_args;
mod time_span;
mod timeline;
mod web;
