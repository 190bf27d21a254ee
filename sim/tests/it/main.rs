//! The simulator as its users see it: its public API and its HTTP server
//! over loopback, compiled into one test binary.

mod capture;
mod cluster;
mod generator;
mod http;
mod lists;
