//! Test support shared by nomad-chronicle's integration tests and its
//! benchmarks, so that neither keeps a copy of its own.
//!
//! - [`pg`]: a throwaway PostgreSQL server and the admin statements around it.
//! - [`sim`]: the Nomad-compatible simulator running on a loopback port, and
//!   batches and expected rows built from generated frames.

pub mod pg;
pub mod sim;
