//! Identifiers: 19-digit resource ids, Coze-shaped log ids, random secrets, and the clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::distr::Alphanumeric;
use rand::{Rng, RngCore};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Bits below the millisecond timestamp in an id: room for 2^20 ids per millisecond.
const SEQUENCE_BITS: u32 = 20;

/// Makes ids that are unique and increasing with time: `ms << 20 | sequence`, which is a
/// 19-digit decimal number from the year 2000 until well past 2200 and fits in an `i64`.
/// Each generator is monotonic on its own; one lives in the server state.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: AtomicI64,
}

impl IdGenerator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next_id(&self) -> i64 {
        let candidate = now_ms() << SEQUENCE_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + 1);
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

#[cfg(test)]
mod tests {
    use super::*;

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
