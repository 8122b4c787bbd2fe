//! Optional per-tenant rate limiting: one token bucket per tenant, refilled
//! continuously at `rate` tokens per second up to `burst`. Off unless
//! configured.
//!
//! The buckets live in one `std::sync::Mutex<HashMap>`: the critical section
//! is a few arithmetic operations and never awaits, so a blocking mutex is
//! cheaper than an async one, and contention across tenants is negligible
//! next to the gRPC call every request makes. The map holds one entry per
//! tenant that has sent a request, bounded by the configured keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Per-tenant token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Arc<str>, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `rate` requests per second on average, bursts of up to `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The quota: how many requests a tenant may send at once.
    pub fn burst(&self) -> u32 {
        // Built from a `u32`, so the conversion back is exact.
        self.burst as u32
    }

    /// Takes a token for `tenant`; `Err` holds how long until one is free.
    pub fn check(&self, tenant: &Arc<str>) -> Result<(), Duration> {
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update of
        // a few floats; the data is still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_are_per_tenant_and_refill() {
        let limiter = RateLimiter::new(1, 2);
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        assert!(limiter.check(&a).is_ok());
        assert!(limiter.check(&a).is_ok());
        let wait = limiter.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(
            limiter.check(&b).is_ok(),
            "another tenant has its own bucket"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check(&a).is_ok());
        assert!(limiter.check(&a).is_err());
    }
}
