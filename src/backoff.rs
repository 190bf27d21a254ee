//! Exponential backoff with full jitter, for reconnects and commit retries.

use std::time::Duration;

/// Delays that double from `initial` up to `max`, each drawn at random from
/// the upper half of the current step so many ingesters do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Back to the initial delay, after a success.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

impl Default for Backoff {
    /// 0.5 s doubling up to 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let steps: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        for (delay, step) in steps.iter().zip([1u64, 2, 4, 8, 8, 8]) {
            let step = Duration::from_secs(step);
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{delay:?} outside {step:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
