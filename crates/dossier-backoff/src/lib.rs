//! One retry backoff for every Dossier crate.
//!
//! A [`Backoff`] is a policy: the delay before retry number `attempt` is
//! `min(base * 2^(attempt-1), max)`, optionally with "equal jitter" (a random
//! point in the upper half of that delay). Callers that retry one request
//! ask for [`Backoff::delay`] of their attempt (a redelivered job, a vendor
//! request); loops that keep a connection or a subscription open hold
//! [`Retries`], which counts failures since the last success and is reset by
//! it.
//!
//! A crate of its own because its callers share no other crate that fits:
//! the directory's HTTP provider must not depend on the broker or the service
//! crates for a few lines of arithmetic.
#![forbid(unsafe_code)]

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Exponential, capped, optionally jittered retry delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub base: Duration,
    /// The longest delay; doubling stops here.
    pub max: Duration,
    /// Whether each delay is a random point in the upper half of the
    /// computed one, so that clients that failed together do not retry
    /// together, while the delay still grows.
    pub jitter: bool,
}

impl Backoff {
    /// Doubling from `base` up to `max`, without jitter.
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            jitter: false,
        }
    }

    /// The same `delay` before every retry.
    pub const fn constant(delay: Duration) -> Backoff {
        Backoff::new(delay, delay)
    }

    /// This backoff with equal jitter.
    pub const fn jittered(self) -> Backoff {
        Backoff {
            jitter: true,
            ..self
        }
    }

    /// The delay before retry number `attempt` (1-based; 0 counts as 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2_u32.saturating_pow(attempt.saturating_sub(1));
        let full = self.base.saturating_mul(factor).min(self.max);
        if !self.jitter {
            return full;
        }
        let half = full / 2;
        let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=jitter_ns))
    }

    /// A sequence of delays for a loop that retries until it succeeds.
    pub fn retries(self) -> Retries {
        Retries {
            backoff: self,
            attempt: 1,
        }
    }
}

/// The delays of one retry loop: each failure waits longer, a success
/// starts again from the base.
#[derive(Debug, Clone)]
pub struct Retries {
    backoff: Backoff,
    attempt: u32,
}

impl Retries {
    /// The delay before the next retry; the one after it is longer.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.backoff.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Called on success: the next failure waits the base delay again.
    pub fn reset(&mut self) {
        self.attempt = 1;
    }

    /// Sleeps the next delay. True when `stop` was cancelled first: the
    /// caller is shutting down and gives up instead of retrying.
    pub async fn pause(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(delay) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered_in_the_upper_half() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let backoff = Backoff::new(base, max).jittered();
        for _ in 0..100 {
            let first = backoff.delay(1);
            assert!(first >= base / 2 && first <= base, "{first:?}");
            let third = backoff.delay(3);
            assert!(third >= base * 2 && third <= base * 4, "{third:?}");
            let late = backoff.delay(40);
            assert!(late >= max / 2 && late <= max, "{late:?}");
        }
        assert_eq!(
            Backoff::new(Duration::ZERO, max).jittered().delay(5),
            Duration::ZERO
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(300)).jittered();
        for (attempt, full) in [(1, 100), (2, 200), (3, 300), (10, 300), (40, 300)] {
            let wait = backoff.delay(attempt);
            let full = Duration::from_millis(full);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retries_double_to_the_cap_and_start_over_after_a_success() {
        let mut retries =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).retries();
        let delays: Vec<u64> = (0..8)
            .map(|_| retries.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        retries.reset();
        assert_eq!(retries.next_delay(), Duration::from_millis(100));
        let mut constant = Backoff::constant(Duration::from_secs(1)).retries();
        assert_eq!(constant.next_delay(), constant.next_delay());
    }

    #[tokio::test]
    async fn a_pause_ends_early_on_stop() {
        let stop = CancellationToken::new();
        let mut retries = Backoff::constant(Duration::from_secs(3600)).retries();
        stop.cancel();
        assert!(retries.pause(&stop).await);
        let mut quick = Backoff::constant(Duration::from_millis(1)).retries();
        assert!(!quick.pause(&CancellationToken::new()).await);
    }
}
