//! The integration suite: one test binary. Tests start the Nomad-compatible
//! simulator on a loopback port, run the real `nomad-chronicle` binary against
//! it, and check the archive (a real SQLite file) row by row.

mod common;
mod import;
mod ingest;
mod postgres;
mod replay;
mod status;
mod stream_ends;
