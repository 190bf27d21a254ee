//! CPU time of the calling thread, so measurements on a shared machine
//! count the work done rather than the time waited for a core.

use std::time::{Duration, Instant};

/// A point to measure the calling thread's CPU time from: the scheduler's
/// count of nanoseconds on a CPU (`/proc/thread-self/schedstat`), or wall
/// time where the kernel does not say.
pub struct CpuClock {
    cpu_ns: Option<u64>,
    wall: Instant,
}

impl CpuClock {
    pub fn start() -> CpuClock {
        CpuClock {
            cpu_ns: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }

    /// CPU time spent by this thread since `start`.
    pub fn elapsed(&self) -> Duration {
        match (self.cpu_ns, thread_cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            _ => self.wall.elapsed(),
        }
    }
}

fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Microseconds per item of `total` spread over `items`.
pub fn micros_per(total: Duration, items: usize) -> f64 {
    if items == 0 {
        return f64::NAN;
    }
    total.as_secs_f64() * 1e6 / items as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_per_item_divides_and_is_nan_for_no_items() {
        assert_eq!(micros_per(Duration::from_millis(3), 1000), 3.0);
        assert!(micros_per(Duration::from_secs(1), 0).is_nan());
    }

    #[test]
    fn cpu_clock_counts_work_done() {
        let clock = CpuClock::start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(clock.elapsed() > Duration::ZERO);
    }
}
