//! Readiness as a set of named conditions: each part of the server that can make the node unfit
//! to take work (a background task down, the disk full) holds its own condition, and `/readyz`
//! answers ready only when none is held.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The conditions that keep this node from being ready, by name.
#[derive(Debug, Default)]
pub struct Health {
    conditions: Mutex<BTreeMap<String, String>>,
}

impl Health {
    /// Holds condition `name` with a reason an operator can act on, replacing an earlier reason.
    pub fn hold(&self, name: &str, reason: impl Into<String>) {
        self.conditions.lock().expect("health lock").insert(name.to_owned(), reason.into());
    }

    /// Lets condition `name` go; nothing happens if it was not held.
    pub fn release(&self, name: &str) {
        self.conditions.lock().expect("health lock").remove(name);
    }

    pub fn holds(&self, name: &str) -> bool {
        self.conditions.lock().expect("health lock").contains_key(name)
    }

    /// Every reason held, ordered by condition name; empty when ready.
    pub fn reasons(&self) -> Vec<String> {
        self.conditions.lock().expect("health lock").values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn conditions_compose() {
        let health = Health::default();
        assert!(health.reasons().is_empty());
        health.hold("task recorder", "the recorder is down");
        health.hold("disk", "the disk is full");
        health.hold("task recorder", "the recorder restarted 3 times");
        assert_eq!(health.reasons(), ["the disk is full", "the recorder restarted 3 times"]);
        assert!(health.holds("disk"));
        health.release("disk");
        health.release("never held");
        assert_eq!(health.reasons(), ["the recorder restarted 3 times"]);
    }
}
