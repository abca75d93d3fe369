//! Rate limiting per token: each personal access token, and the admin token, may make a steady
//! number of requests per second with a burst on top. Over that, requests answer 4013 (HTTP 429)
//! with `Retry-After`. The limit is kept in memory, per node.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Who a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Token(i64),
    Admin,
}

/// The limiter of a server; `None` inside when limiting is switched off.
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<RateKey>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `per_second` requests per second per token with bursts of `burst`; 0 switches it off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        RateLimits { limiter, clock: DefaultClock::default() }
    }

    /// Counts one request against `key`, or says when to come back.
    pub fn check(&self, key: RateKey) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            let seconds = wait.max(Duration::from_millis(1)).as_secs_f64().ceil() as u64;
            ApiError::rate_limited(
                format!("too many requests with this token; try again in {seconds} s"),
                seconds,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn bursts_then_refuses_with_a_wait() {
        let limits = RateLimits::new(2, 3);
        for _ in 0..3 {
            assert!(limits.check(RateKey::Token(1)).is_ok());
        }
        let refused = limits.check(RateKey::Token(1)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after, Some(1));
        assert!(limits.check(RateKey::Token(2)).is_ok(), "tokens are counted apart");
        assert!(limits.check(RateKey::Admin).is_ok());
    }

    #[test]
    fn zero_switches_it_off() {
        let limits = RateLimits::new(0, 0);
        for _ in 0..1000 {
            assert!(limits.check(RateKey::Admin).is_ok());
        }
    }
}
