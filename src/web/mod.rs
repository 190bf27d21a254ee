//! `serve`'s web timeline: a read-only page at `/ui/` ([`pages`]) and the
//! JSON API it reads under `/api/v1/` ([`api`]), answered by the same query
//! code as the CLI; [`lanes`] builds the swimlane view of a time window
//! from what [`window`] reads out of the archive ([`sightings`]: the few
//! fields of each object it takes; [`gaps`]: the bands of missing and
//! pruned history).
//!
//! The page may load without the token; every API route sits behind the
//! same token check as the event stream.

pub mod api;
mod capped;
mod gaps;
pub mod lanes;
pub mod pages;
mod sightings;
pub mod window;

pub use api::{ApiState, api_routes};
pub use pages::page_routes;
