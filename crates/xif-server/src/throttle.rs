//! Login throttling: keyed rate limiters (governor's GCRA) per client address and per user
//! name, checked before any password is, so that a flood of guesses costs the server neither
//! argon2 work nor memory.
//!
//! Every attempt counts, successful or not: the limiters must decide before the password is
//! checked (the check is the expensive part they protect), when success is not yet known.
//! Legitimate clients log in rarely, since a login's token lasts weeks; scripts keep a token.
//!
//! Memory stays bounded under a flood of distinct keys: the per-address limiter is checked
//! first, so only attempts it lets through make per-user keys; user names are cut to the
//! longest a name can be; and keys whose limit has fully recovered are dropped once a minute,
//! or at most once a second while more than [`MAX_KEYS`] are held.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::LoginLimits;

/// Keys held before forgotten ones are dropped more often than once a minute.
const MAX_KEYS: usize = 100_000;

/// The longest user name: longer names cannot exist, and are cut to this many characters as keys.
const MAX_NAME: usize = crate::names::MAX_USER_NAME;

/// Who is refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client's address has used its attempts.
    Address(Duration),
    /// The user name has used its attempts.
    User(Duration),
}

/// The login limiters.
pub struct LoginThrottle {
    per_address: Option<Keyed<IpAddr>>,
    per_user: Option<Keyed<String>>,
}

impl LoginThrottle {
    /// Limiters with `limits`; a limit of 0 attempts per minute is no limit.
    pub fn new(limits: &LoginLimits) -> Self {
        Self { per_address: Keyed::per_minute(limits.per_address), per_user: Keyed::per_minute(limits.per_user) }
    }

    /// Counts a login attempt from `address` (unknown for requests that did not come over a
    /// socket) as `user`, or says why it is refused.
    pub fn attempt(&self, address: Option<IpAddr>, user: &str) -> Result<(), Refused> {
        if let Some(limiter) = &self.per_address {
            limiter.check(&address_key(address)).map_err(Refused::Address)?;
        }
        if let Some(limiter) = &self.per_user {
            let name: String = user.chars().take(MAX_NAME).collect();
            // Names are unique regardless of case, so their attempts are counted together.
            limiter.check(&name.to_lowercase()).map_err(Refused::User)?;
        }
        Ok(())
    }
}

/// The keys of a login attempt in the count shared by the nodes of a farm (see
/// `cluster::Backend::count_logins`): the address as [`address_key`] counts it, and the user
/// name cut and folded as the local limiter keys it, in that order.
pub fn shared_keys(address: Option<IpAddr>, user: &str) -> Vec<String> {
    let name: String = user.chars().take(MAX_NAME).collect();
    vec![format!("address:{}", address_key(address)), format!("user:{}", name.to_lowercase())]
}

/// What an address is counted as: IPv4 addresses (also when mapped into IPv6) as they are,
/// IPv6 addresses by their /64, which one client usually holds whole.
fn address_key(address: Option<IpAddr>) -> IpAddr {
    match address.map(|address| address.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let segments = v6.segments();
            IpAddr::V6(Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0))
        }
        Some(v4) => v4,
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// One keyed limiter and when it last dropped recovered keys.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    tidied: Mutex<Instant>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn per_minute(attempts: u32) -> Option<Self> {
        let attempts = NonZeroU32::new(attempts)?;
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(attempts)),
            tidied: Mutex::new(Instant::now()),
        })
    }

    /// Counts one attempt for `key`, or says how long until the next is let through.
    fn check(&self, key: &K) -> Result<(), Duration> {
        self.tidy();
        self.limiter.check_key(key).map_err(|refused| refused.wait_time_from(self.limiter.clock().now()))
    }

    fn tidy(&self) {
        // Another thread tidying is as good as this one doing it.
        let Ok(mut tidied) = self.tidied.try_lock() else { return };
        let crowded = self.limiter.len() > MAX_KEYS;
        let due =
            tidied.elapsed() >= Duration::from_secs(60) || (crowded && tidied.elapsed() >= Duration::from_secs(1));
        if due {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            *tidied = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_user: u32) -> LoginLimits {
        LoginLimits { per_address, per_user, ..LoginLimits::default() }
    }

    #[test]
    fn addresses_and_users_are_limited_separately() {
        let throttle = LoginThrottle::new(&limits(3, 2));
        let one = Some("192.0.2.1".parse().expect("address"));
        let two = Some("192.0.2.2".parse().expect("address"));
        assert_eq!(throttle.attempt(one, "alice"), Ok(()));
        assert_eq!(throttle.attempt(one, "ALICE"), Ok(()));
        assert!(matches!(throttle.attempt(two, "Alice"), Err(Refused::User(wait)) if wait > Duration::ZERO));
        assert_eq!(throttle.attempt(one, "bob"), Ok(()));
        assert!(matches!(throttle.attempt(one, "carol"), Err(Refused::Address(_))));
        assert_eq!(throttle.attempt(two, "carol"), Ok(()));
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a = "2001:db8:1:2:aaaa::1".parse().ok();
        let b = "2001:db8:1:2:bbbb::2".parse().ok();
        assert_eq!(address_key(a), address_key(b));
        let mapped = "::ffff:192.0.2.1".parse().ok();
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().expect("address"));
    }

    #[test]
    fn zero_is_no_limit() {
        let throttle = LoginThrottle::new(&limits(0, 0));
        for _ in 0..100 {
            assert_eq!(throttle.attempt(None, "alice"), Ok(()));
        }
    }
}
