//! Re-emitting stored history in Nomad's own wire format: [`frames`] reads
//! the archive back as frames; [`serve`] offers them over HTTP as
//! `/v1/event/stream` for existing consumers, on [`connections`] that
//! close clients which do not keep up their side.

pub mod connections;
pub mod frames;
pub mod serve;

pub use frames::{FrameQuery, FrameReader, OutFrame, frame_line};
