//! Idempotent publishing (operator-api.md "Idempotent publishing"): what a valid key is, the
//! fingerprint that tells a producer's retry from a different event, and whether a key stored
//! earlier still holds. Keys are scoped per account (`coze_account_id`): two accounts may use the
//! same key for unrelated events.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::event_types::EventType;

/// Longest key accepted (operator-api.md).
pub const MAX_KEY_LEN: usize = 128;

/// The key an event was published with, ready to be stored beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// SHA-256 (hex) of the event's canonical form ([`fingerprint`]).
    pub fingerprint: String,
    /// Keys stored at or before this time (ms) are past `--idempotency-window` and no longer
    /// match: a key matches while it is younger than the window (so a window of 0 never matches).
    pub stale_until: i64,
}

/// A key as storage holds it for the account, found when the same key is published again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub event_id: i64,
    pub fingerprint: String,
    /// When the event that holds the key was published (ms).
    pub created_at: i64,
}

/// What publishing a key that the account already used does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The same event again: nothing is created, the answer is the first event.
    Duplicate(i64),
    /// A different event under this event's key: refused.
    Conflict(i64),
    /// The stored key is past the window: the new event takes the key over.
    Expired,
}

/// Checks a producer's key: 1 to [`MAX_KEY_LEN`] printable ASCII characters (space to `~`).
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("idempotency_key must be 1 to {MAX_KEY_LEN} characters, it has {}", key.len()));
    }
    if let Some(c) = key.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!("idempotency_key must be printable ASCII (space to ~); it holds {c:?}"));
    }
    Ok(())
}

/// SHA-256 (hex) of what makes two publishes the same event: the type, the account, the sorted
/// connector ids and the `event` object with its keys sorted and no whitespace, so that a retry
/// whose JSON was written out differently still matches. `created_at` is left out: a retry that
/// lets it default to "now" is still the same event.
pub fn fingerprint(event_type: EventType, account_id: i64, connector_ids: &[i64], payload: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(event_type.as_str());
    hash.update([0]);
    hash.update(account_id.to_string());
    hash.update([0]);
    hash.update(serde_json::to_string(connector_ids).expect("integers serialise"));
    hash.update([0]);
    match serde_json::from_str::<Value>(payload) {
        Ok(value) => write_canonical(&value, &mut hash),
        Err(_) => hash.update(payload),
    }
    hex::encode(hash.finalize())
}

/// Feeds `value` to `hash` with object keys in sorted order, whatever map type serde_json uses.
fn write_canonical(value: &Value, hash: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hash.update("{");
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    hash.update(",");
                }
                hash.update(Value::String(key.clone()).to_string());
                hash.update(":");
                write_canonical(value, hash);
            }
            hash.update("}");
        }
        Value::Array(items) => {
            hash.update("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hash.update(",");
                }
                write_canonical(item, hash);
            }
            hash.update("]");
        }
        scalar => hash.update(scalar.to_string()),
    }
}

/// What publishing `ours` again does, given the key the account already has stored.
pub fn judge(ours: &IdempotencyKey, stored: &StoredKey) -> Claim {
    if stored.created_at <= ours.stale_until {
        Claim::Expired
    } else if stored.fingerprint == ours.fingerprint {
        Claim::Duplicate(stored.event_id)
    } else {
        Claim::Conflict(stored.event_id)
    }
}

/// Keys repeated inside one batch: for each event, the position of the earlier event whose key
/// (in the same account) it repeats, or `None` for the first use. A repeat with another
/// fingerprint is refused as `Err((position, earlier position))`.
pub fn repeats_in_batch<'a>(
    keys: impl IntoIterator<Item = Option<(i64, &'a IdempotencyKey)>>,
) -> Result<Vec<Option<usize>>, (usize, usize)> {
    let mut first: HashMap<(i64, &str), (usize, &str)> = HashMap::new();
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let Some((account, key)) = key else { return Ok(None) };
            match first.get(&(account, key.key.as_str())) {
                None => {
                    first.insert((account, &key.key), (i, &key.fingerprint));
                    Ok(None)
                }
                Some(&(at, fingerprint)) if fingerprint == key.fingerprint => Ok(Some(at)),
                Some(&(at, _)) => Err((i, at)),
            }
        })
        .collect()
}

/// The message of a refused reuse; `what` names the event (e.g. "events[3]") and `other` the
/// event that holds the key (its id, or its place in the batch).
pub fn conflict_message(what: &str, key: &str, other: &dyn std::fmt::Display) -> String {
    format!(
        "{what}: idempotency_key {key:?} was used for a different event ({other}) within the \
         idempotency window; publish a new event with a new key"
    )
}

/// What publishing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The event's id, or for a duplicate the id of the event that first used its key.
    pub event_id: i64,
    /// Its deliveries (for a duplicate, those the first event has now).
    pub deliveries: usize,
    pub duplicate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, payload: &str) -> IdempotencyKey {
        IdempotencyKey {
            key: k.into(),
            fingerprint: fingerprint(EventType::BotPublished, 7, &[1, 2], payload),
            stale_until: 1000,
        }
    }

    #[test]
    fn keys() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(validate_key("order 42/retry~!").is_ok());
        assert!(validate_key("").unwrap_err().contains("1 to 128"));
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).unwrap_err().contains("129"));
        for bad in ["tab\there", "new\nline", "中文", "del\u{7f}"] {
            assert!(validate_key(bad).unwrap_err().contains("printable ASCII"), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints() {
        let base = fingerprint(EventType::BotPublished, 7, &[1, 2], r#"{"a":1,"b":{"c":[1,"x"],"d":null}}"#);
        assert_eq!(base.len(), 64);
        let reordered =
            fingerprint(EventType::BotPublished, 7, &[1, 2], r#"{ "b": {"d":null, "c":[1, "x"]}, "a": 1 }"#);
        assert_eq!(base, reordered, "key order and whitespace do not matter");
        for other in [
            fingerprint(EventType::BotDeleted, 7, &[1, 2], r#"{"a":1,"b":{"c":[1,"x"],"d":null}}"#),
            fingerprint(EventType::BotPublished, 8, &[1, 2], r#"{"a":1,"b":{"c":[1,"x"],"d":null}}"#),
            fingerprint(EventType::BotPublished, 7, &[1], r#"{"a":1,"b":{"c":[1,"x"],"d":null}}"#),
            fingerprint(EventType::BotPublished, 7, &[1, 2], r#"{"a":2,"b":{"c":[1,"x"],"d":null}}"#),
            fingerprint(EventType::BotPublished, 7, &[1, 2], r#"{"a":1,"b":{"c":["x",1],"d":null}}"#),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn judging() {
        let ours = key("k", r#"{"a":1}"#);
        let stored = |fingerprint: &str, created_at| StoredKey {
            event_id: 5,
            fingerprint: fingerprint.into(),
            created_at,
        };
        assert_eq!(judge(&ours, &stored(&ours.fingerprint, 1001)), Claim::Duplicate(5));
        assert_eq!(judge(&ours, &stored("other", 1001)), Claim::Conflict(5));
        assert_eq!(judge(&ours, &stored("other", 1000)), Claim::Expired, "past the window nothing matches");
        assert_eq!(judge(&ours, &stored(&ours.fingerprint, 1000)), Claim::Expired);
        let no_window = IdempotencyKey { stale_until: 2000, ..ours.clone() };
        assert_eq!(
            judge(&no_window, &stored(&ours.fingerprint, 2000)),
            Claim::Expired,
            "0s: published now, still new"
        );
    }

    #[test]
    fn batches() {
        let a = key("a", r#"{"a":1}"#);
        let b = key("b", r#"{"a":1}"#);
        let a_other = key("a", r#"{"a":2}"#);
        let repeats =
            repeats_in_batch([Some((7, &a)), None, Some((7, &b)), Some((7, &a)), Some((8, &a_other))]);
        assert_eq!(repeats, Ok(vec![None, None, None, Some(0), None]), "keys are per account");
        assert_eq!(repeats_in_batch([Some((7, &a)), Some((7, &b)), Some((7, &a_other))]), Err((2, 0)));
        assert!(conflict_message("events[2]", "a", &9)
            .starts_with("events[2]: idempotency_key \"a\" was used for a different event"));
    }
}
