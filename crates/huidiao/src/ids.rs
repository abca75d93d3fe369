//! Identifiers: 19-digit resource ids, Coze-shaped log ids, random secrets, and the clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::distr::Alphanumeric;
use rand::{Rng, RngCore};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Layout of an id: `ms << 20 | node << 12 | sequence`. From the year 2000 until well past 2200
/// that is a 19-digit decimal number that fits in an `i64`.
const TIME_SHIFT: u32 = 20;
const NODE_SHIFT: u32 = 12;
const SEQUENCE_MASK: i64 = (1 << NODE_SHIFT) - 1;

/// The smallest id any node makes at `ms`, so that a range of ids is a range of creation times.
pub fn first_id_at(ms: i64) -> i64 {
    ms << TIME_SHIFT
}

/// How many nodes can make ids at once without clashing.
pub const NODE_COUNT: i64 = 1 << (TIME_SHIFT - NODE_SHIFT);

/// Makes ids that are unique and increasing with time: each node (a server sharing storage with
/// others) has its own node number, and within a node ids increase strictly, 4096 per
/// millisecond before borrowing from the next one.
#[derive(Debug, Default)]
pub struct IdGenerator {
    node: i64,
    last: AtomicI64,
}

impl IdGenerator {
    /// The generator of a node that stores alone (node 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// The generator of node `node` (taken modulo [`NODE_COUNT`]).
    pub fn for_node(node: i64) -> Self {
        IdGenerator { node: node.rem_euclid(NODE_COUNT), last: AtomicI64::new(0) }
    }

    pub fn next_id(&self) -> i64 {
        let floor = (now_ms() << TIME_SHIFT) | (self.node << NODE_SHIFT);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = if floor > last {
                floor
            } else if last & SEQUENCE_MASK < SEQUENCE_MASK {
                last + 1
            } else {
                (((last >> TIME_SHIFT) + 1) << TIME_SHIFT) | (self.node << NODE_SHIFT)
            };
            match self.last.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }
}

/// A log id shaped like Coze's: UTC `YYYYMMDDHHMMSS` then 18 upper-case hex digits.
pub fn log_id() -> String {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let mut random = [0u8; 9];
    rand::rng().fill_bytes(&mut random);
    format!("{stamp}{}", hex::encode_upper(random))
}

/// `len` characters of `[A-Za-z0-9]` from the operating system's CSPRNG (through `rand`'s
/// thread-local generator, which is a CSPRNG seeded from the OS).
pub fn random_alphanumeric(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// An id in its one written form: decimal digits without sign, leading zero or spaces, above
/// zero. `+123` or `0123` would otherwise name the same resource as `123`, so that a check on one
/// spelling (a cache, a log search, a rate limit) misses the others.
pub fn parse_canonical_id(text: &str) -> Option<i64> {
    let canonical = !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<i64>().ok().filter(|id| canonical && *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_written_form() {
        assert_eq!(parse_canonical_id("123"), Some(123));
        assert_eq!(parse_canonical_id("9223372036854775807"), Some(i64::MAX));
        for other in ["+123", "0123", "-1", "0", " 123", "123 ", "", "1e3", "9223372036854775808", "１２３"]
        {
            assert_eq!(parse_canonical_id(other), None, "{other:?}");
        }
    }

    #[test]
    fn ids_are_19_digits_and_increasing() {
        let ids = IdGenerator::new();
        let mut previous = 0;
        for _ in 0..10_000 {
            let id = ids.next_id();
            assert_eq!(id.to_string().len(), 19);
            assert!(id > previous);
            previous = id;
        }
    }

    #[test]
    fn nodes_never_clash_and_sequences_roll_over() {
        let a = IdGenerator::for_node(1);
        let b = IdGenerator::for_node(2 + NODE_COUNT);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            assert!(seen.insert(a.next_id()));
            assert!(seen.insert(b.next_id()));
        }
        let ids: Vec<i64> = (0..10_000).map(|_| a.next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| (id >> NODE_SHIFT) & (NODE_COUNT - 1) == 1));
        assert!(seen.iter().all(|id| id.to_string().len() == 19));
    }

    #[test]
    fn log_id_shape() {
        let id = log_id();
        assert_eq!(id.len(), 32);
        assert!(id[..14].chars().all(|c| c.is_ascii_digit()));
        assert!(id[14..].chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)));
    }

    #[test]
    fn random_strings() {
        let a = random_alphanumeric(64);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_alphanumeric(64));
    }
}
