//! Rate limiting per token: each personal access token may make a steady number of requests per
//! second with a burst on top. Over that, requests answer 4013 (HTTP 429) with `Retry-After`. The
//! admin token has a limit of its own, off by default: it is the platform's producer, which
//! publishes one event per request as things happen, and a tenant's limit would refuse most of
//! them. Failed authentications are limited per client address the same way, so a
//! client guessing or replaying bad tokens is slowed without ever refusing a valid token. An IPv6
//! client is counted by its /64, the block one host is usually given, and addresses that have not
//! failed lately are forgotten, so the table stays as small as the set of recent offenders. The
//! limits are kept in memory, per node.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, ErrorCode};

/// Who a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Token(i64),
    Admin,
}

/// The steady rates and bursts of the limits, per node; a rate of 0 switches a limit off.
#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    pub per_token: u32,
    pub burst: u32,
    /// The admin token's rate; its bursts are twice that.
    pub admin: u32,
    /// Failed authentications per client address; bursts are twice that.
    pub failed_auth_per_address: u32,
}

/// The limiters of a server; `None` inside when a limit is switched off.
pub struct RateLimits {
    per_token: Option<DefaultKeyedRateLimiter<RateKey>>,
    admin: Option<DefaultDirectRateLimiter>,
    failed_auth_per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Failed authentications counted so far, which time the pruning of the address table.
    failures: AtomicU64,
    clock: DefaultClock,
}

/// The address table drops the addresses whose limit has fully recovered once per this many
/// failed authentications: its size follows the addresses that failed in the last few seconds,
/// at a cost per failure that stays small.
const PRUNE_EVERY: u64 = 1024;

/// What a client address is counted as: an IPv6 address by its /64 (one host can use all of it),
/// an IPv4-mapped one as the IPv4 address.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

/// `per_second` with bursts of `burst` (at least `per_second`); 0 is no limit.
fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    NonZeroU32::new(per_second).map(|rate| {
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Quota::per_second(rate).allow_burst(burst)
    })
}

/// A limiter per key of `per_second` with bursts of `burst`; 0 is none.
fn keyed<K: Clone + Eq + std::hash::Hash>(per_second: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    quota(per_second, burst).map(RateLimiter::keyed)
}

impl RateLimits {
    pub fn new(settings: RateSettings) -> Self {
        let doubled = |rate: u32| rate.saturating_mul(2);
        RateLimits {
            per_token: keyed(settings.per_token, settings.burst),
            admin: quota(settings.admin, doubled(settings.admin)).map(RateLimiter::direct),
            failed_auth_per_address: keyed(
                settings.failed_auth_per_address,
                doubled(settings.failed_auth_per_address),
            ),
            failures: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request against `key`, or says when to come back.
    pub fn check(&self, key: RateKey) -> Result<(), ApiError> {
        let checked = match (key, &self.per_token, &self.admin) {
            (RateKey::Token(_), Some(limiter), _) => limiter.check_key(&key),
            (RateKey::Admin, _, Some(limiter)) => limiter.check(),
            _ => return Ok(()),
        };
        checked.map_err(|not_until| {
            self.refusal("too many requests with this token", not_until.wait_time_from(self.clock.now()))
        })
    }

    /// Counts a failed authentication (4100) from `address` and answers `failure`, or 4013 once
    /// the address has failed too often. Other errors pass through uncounted.
    pub fn failed_auth(&self, address: Option<IpAddr>, failure: ApiError) -> ApiError {
        let (Some(limiter), Some(address)) = (&self.failed_auth_per_address, address) else { return failure };
        if failure.code != ErrorCode::Unauthenticated {
            return failure;
        }
        if self.failures.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        match limiter.check_key(&address_key(address)) {
            Ok(()) => failure,
            Err(not_until) => self.refusal(
                "too many failed authentications from this address",
                not_until.wait_time_from(self.clock.now()),
            ),
        }
    }

    fn refusal(&self, what: &str, wait: Duration) -> ApiError {
        let seconds = wait.max(Duration::from_millis(1)).as_secs_f64().ceil() as u64;
        ApiError::rate_limited(format!("{what}; try again in {seconds} s"), seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn limits(per_token: u32, burst: u32, admin: u32, failed_auth_per_address: u32) -> RateLimits {
        RateLimits::new(RateSettings { per_token, burst, admin, failed_auth_per_address })
    }

    #[test]
    fn bursts_then_refuses_with_a_wait() {
        let limits = limits(2, 3, 0, 0);
        for _ in 0..3 {
            assert!(limits.check(RateKey::Token(1)).is_ok());
        }
        let refused = limits.check(RateKey::Token(1)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.retry_after, Some(1));
        assert!(limits.check(RateKey::Token(2)).is_ok(), "tokens are counted apart");
        for _ in 0..1000 {
            assert!(limits.check(RateKey::Admin).is_ok(), "the admin token is not held to a token's limit");
        }
    }

    #[test]
    fn the_admin_token_has_its_own_limit_with_bursts_of_twice_it() {
        let limits = limits(1000, 1000, 2, 0);
        for _ in 0..4 {
            assert!(limits.check(RateKey::Admin).is_ok());
        }
        assert_eq!(limits.check(RateKey::Admin).unwrap_err().code, ErrorCode::RateLimited);
        assert!(limits.check(RateKey::Token(1)).is_ok(), "tokens are counted apart from it");
    }

    #[test]
    fn zero_switches_it_off() {
        let limits = limits(0, 0, 0, 0);
        for _ in 0..1000 {
            assert!(limits.check(RateKey::Token(1)).is_ok());
        }
    }

    #[test]
    fn addresses_that_stopped_failing_are_forgotten() {
        let limits = limits(0, 0, 0, 1000);
        let unknown = || ApiError::unauthenticated("unknown token");
        for i in 0..PRUNE_EVERY - 1 {
            limits.failed_auth(Some(IpAddr::V4((0x0a00_0000 + i as u32).into())), unknown());
        }
        let table = limits.failed_auth_per_address.as_ref().unwrap();
        assert_eq!(table.len(), PRUNE_EVERY as usize - 1);
        // At 1000 per second one failure is forgotten after a millisecond.
        std::thread::sleep(Duration::from_millis(20));
        limits.failed_auth(Some("10.255.0.1".parse().unwrap()), unknown());
        assert!(table.len() <= 1, "{} addresses kept", table.len());
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64() {
        let limits = limits(0, 0, 0, 1);
        let unknown = || ApiError::unauthenticated("unknown token");
        for host in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"] {
            assert_eq!(
                limits.failed_auth(Some(host.parse().unwrap()), unknown()).code,
                ErrorCode::Unauthenticated
            );
        }
        let same_64 = limits.failed_auth(Some("2001:db8:1:2:dead:beef::1".parse().unwrap()), unknown());
        assert_eq!(same_64.code, ErrorCode::RateLimited);
        let other_64 = limits.failed_auth(Some("2001:db8:1:3::1".parse().unwrap()), unknown());
        assert_eq!(other_64.code, ErrorCode::Unauthenticated);
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn failed_authentications_are_limited_per_address() {
        let limits = limits(0, 0, 0, 1);
        let (here, there): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let unknown = || ApiError::unauthenticated("unknown token");
        for _ in 0..2 {
            assert_eq!(limits.failed_auth(Some(here), unknown()).code, ErrorCode::Unauthenticated);
        }
        let refused = limits.failed_auth(Some(here), unknown());
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused.msg.contains("failed authentications"), "{}", refused.msg);
        assert_eq!(limits.failed_auth(Some(there), unknown()).code, ErrorCode::Unauthenticated);
        let forbidden = limits.failed_auth(Some(here), ApiError::forbidden("no"));
        assert_eq!(forbidden.code, ErrorCode::Forbidden, "only 4100 counts");
    }
}
