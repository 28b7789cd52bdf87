//! Retry timing of the loop's failing steps (apply, HAProxy start,
//! reload): [`Backoff`], over `backon`'s exponential backoff with jitter.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The first retry comes at least this long after a failure.
pub(super) const MIN_DELAY: Duration = Duration::from_secs(1);
/// No retry comes later than this after a failure.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(30);

/// The delays: 1 s doubling up to 30 s, each stretched by a random part
/// of itself (up to 100%, `backon`'s jitter) so that routegen instances
/// failing together do not retry together, and clamped to 30 s: the n-th
/// delay lies in `[min(2ⁿ⁻¹ s, 30 s), min(2ⁿ s, 30 s)]`.
fn delays() -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::new()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
        .map(|d| d.min(MAX_DELAY))
}

/// Exponential backoff for retries (see [`delays`] for the bounds).
pub(super) struct Backoff {
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    /// When the retry is due; `None`: nothing scheduled.
    pub(super) at: Option<tokio::time::Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delays: Box::new(delays()),
            at: None,
        }
    }
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff").field("at", &self.at).finish()
    }
}

impl Backoff {
    /// Schedule the next retry; returns its delay.
    pub(super) fn schedule(&mut self) -> Duration {
        let delay = self.delays.next().unwrap_or(MAX_DELAY);
        self.at = Some(tokio::time::Instant::now() + delay);
        delay
    }

    /// Success: the next failure starts at 1 s again.
    pub(super) fn reset(&mut self) {
        *self = Backoff::default();
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

    /// The n-th delay (from 0) lies between the undisturbed doubling and
    /// twice it, never above 30 s.
    fn assert_bounds(delays: &[Duration]) {
        for (n, d) in delays.iter().enumerate() {
            let base = (MIN_DELAY * (1 << n.min(5))).min(MAX_DELAY);
            assert!(
                *d >= base && *d <= (base * 2).min(MAX_DELAY),
                "delay {n}: {d:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_within_one_and_thirty_seconds() {
        let mut b = Backoff::default();
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let delays: Vec<Duration> = (0..10).map(|_| b.schedule()).collect();
            assert_bounds(&delays);
            assert_eq!(delays[9], MAX_DELAY);
            firsts.insert(delays[0]);
            b.reset();
            assert_eq!(b.at, None);
        }
        // Jitter: instances that failed together do not retry together.
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    #[test]
    fn a_scheduled_retry_is_due_after_its_delay() {
        let mut b = Backoff::default();
        let before = tokio::time::Instant::now();
        let delay = b.schedule();
        let at = b.at.unwrap();
        assert!(at >= before + delay && at <= tokio::time::Instant::now() + delay);
        b.clear_if_due();
        assert_eq!(b.at, Some(at), "not due yet");
    }
}
