//! A running simulator for a test or a benchmark, and the batches and
//! expectations built from generated frames.

use nomad_chronicle::archive::{Batch, ReceivedFrame};
use nomad_chronicle::nomad::{Line, parse_line};
use nomad_sim::{ConnFault, Framing, Generator, Sim, SimConfig, SimFrame};

/// A running simulator and its address.
pub struct SimAt {
    pub sim: Sim,
    pub address: String,
}

impl SimAt {
    pub async fn start(config: SimConfig) -> SimAt {
        let (sim, addr) = Sim::start(config).await.expect("start simulator");
        SimAt {
            sim,
            address: format!("http://{addr}"),
        }
    }

    /// A simulator whose buffer holds everything published.
    pub async fn roomy() -> SimAt {
        SimAt::roomy_framed(Framing::Chunked).await
    }

    /// [`SimAt::roomy`], streaming with the given framing.
    pub async fn roomy_framed(framing: Framing) -> SimAt {
        SimAt::start(SimConfig {
            buffer_size: 1_000_000,
            framing,
            ..SimConfig::default()
        })
        .await
    }

    /// A simulator with a buffer of 100 frames that has published 60 of
    /// `seed`'s frames and stops sending after the 30th of them, so that a
    /// reader falls out of the buffer once [`Stall::later`] are published.
    pub async fn stalling(seed: u64, framing: Framing) -> Stall {
        let sim = SimAt::start(SimConfig {
            buffer_size: 100,
            framing,
            ..SimConfig::default()
        })
        .await;
        let mut generator = Generator::new(seed);
        for _ in 0..60 {
            sim.sim.publish(generator.next_frame());
        }
        sim.sim
            .push_fault(ConnFault::FallBehindAfter { frames: 30 });
        let stalled_at = sim.sim.history()[29].index;
        let later: Vec<SimFrame> = (0..250).map(|_| generator.next_frame()).collect();
        let last = later.last().map(|f| f.index).unwrap_or_default();
        Stall {
            sim,
            stalled_at,
            later,
            last,
        }
    }

    /// Publishes generated frames until at least `events` events; returns the last index.
    pub fn publish(&self, generator: &mut Generator, events: usize) -> u64 {
        let mut last = 0;
        for frame in generator.frames(events) {
            last = frame.index;
            self.sim.publish(frame);
        }
        last
    }
}

/// [`SimAt::stalling`]: the simulator, where its reader stalls, and what
/// follows.
pub struct Stall {
    pub sim: SimAt,
    /// The index of the last frame sent before the stall.
    pub stalled_at: u64,
    /// The 250 frames to publish while the reader stands still.
    pub later: Vec<SimFrame>,
    /// The index of the last of them.
    pub last: u64,
}

/// A batch of the frames in `lines` (NDJSON lines, parsed as ingest parses
/// them), all received at `received_at`, for a lease to commit directly.
pub fn batch_of_lines(lines: impl IntoIterator<Item = Vec<u8>>, received_at: i64) -> Batch {
    let frames = lines
        .into_iter()
        .map(|line| match parse_line(&line) {
            Ok(Line::Frame(frame)) => ReceivedFrame {
                frame,
                received_at,
                preceding: None,
            },
            other => panic!("not a frame: {other:?}"),
        })
        .collect();
    Batch {
        frames,
        ..Batch::default()
    }
}

/// [`batch_of_lines`] of generated frames.
pub fn batch(frames: &[SimFrame], received_at: i64) -> Batch {
    batch_of_lines(frames.iter().map(|f| f.to_line().into_bytes()), received_at)
}

/// What the archive must hold for these frames: (index, raw event JSON).
pub fn expected(frames: &[SimFrame]) -> Vec<(u64, String)> {
    frames
        .iter()
        .flat_map(|f| f.events.iter().map(move |e| (f.index, e.json.clone())))
        .collect()
}
