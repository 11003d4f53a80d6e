//! Per-client rate limits and a deadline on every call. Each authenticated caller (each Kubernetes
//! user: a person, or an API key) has a token bucket of `burst` calls refilled at `per_second`;
//! a call that finds it empty is answered 429 with `Retry-After`. The buckets are this replica's
//! (each replica limits what it serves). Calls that fail to authenticate are limited the same way
//! per client address, before any credential is checked: a stream of made-up tokens or keys
//! cannot make Commons verify signatures or look keys up in the ledger without end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications allowed per client address: this many a second on average.
pub const FAILED_PER_SECOND: u32 = 10;
/// And this many at once.
pub const FAILED_BURST: u32 = 30;

/// At most this many callers are tracked; beyond it, full buckets are forgotten first.
const TRACKED: usize = 10_000;

/// The limits.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` calls a second on average, `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `who`'s bucket is empty at `now`, and if so how long until a call is there; takes
    /// nothing.
    pub fn empty(&self, who: &str, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().ok()?;
        let (tokens, at) = buckets.get(who)?;
        let refilled = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        (refilled < 1.0).then(|| Duration::from_secs_f64((1.0 - refilled) / self.per_second))
    }

    /// Takes a call from `who`'s bucket at `now`; when it is empty, how long until one is there.
    pub fn take(&self, who: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() >= TRACKED && !buckets.contains_key(who) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < burst
            });
        }
        let (tokens, at) = buckets.entry(who.to_owned()).or_insert((self.burst, now));
        let refilled = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate_and_each_caller_has_its_own_bucket() {
        let limits = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limits.take("nora", t0).is_ok());
        }
        let wait = limits.take("nora", t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(limits.take("sam", t0).is_ok(), "another caller is not held up");
        assert!(limits.take("nora", t0 + Duration::from_millis(500)).is_ok(), "refilled at 2 a second");
        assert!(limits.take("nora", t0 + Duration::from_millis(500)).is_err());
        assert!(limits.empty("nora", t0 + Duration::from_millis(500)).is_some(), "looking takes nothing");
        assert!(limits.empty("nora", t0 + Duration::from_millis(1000)).is_none());
        assert!(limits.empty("olive", t0).is_none(), "an address never seen is not empty");
    }
}
