//! Retry timing of the loop's failing steps (apply, HAProxy start,
//! reload): [`Backoff`].

use std::time::Duration;

/// Exponential backoff for retries (1 s doubling up to 30 s).
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u32,
    /// When the retry is due; `None`: nothing scheduled.
    pub(super) at: Option<tokio::time::Instant>,
}

impl Backoff {
    /// Schedule the next retry; returns its delay.
    pub(super) fn schedule(&mut self) -> Duration {
        let delay = Duration::from_secs(1 << self.failures.min(5)).min(Duration::from_secs(30));
        self.failures += 1;
        self.at = Some(tokio::time::Instant::now() + delay);
        delay
    }

    /// Success: the next failure starts at 1 s again.
    pub(super) fn reset(&mut self) {
        self.failures = 0;
        self.at = None;
    }

    /// Forget a retry that is due (it is being acted on); the failure
    /// count stays.
    pub(super) fn clear_if_due(&mut self) {
        if self.at.is_some_and(|at| at <= tokio::time::Instant::now()) {
            self.at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.schedule().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.schedule().as_secs(), 1);
    }
}
