//! Which waiting publishes join the next commit: a plain rule over plain types, so that the
//! group-commit loop in [`super`] only moves values and this is tested on its own.

use std::collections::HashSet;

/// What the rule needs to know of one waiting publish.
pub trait Waiting {
    /// Events it stores.
    fn events(&self) -> usize;
    /// Bytes of its delivery bodies, what the commit writes most of.
    fn bytes(&self) -> usize;
    /// The (account, key) of each idempotency key it carries.
    fn keys(&self) -> Vec<(i64, &str)>;
}

/// The most a commit group holds; the first publish waiting always joins, whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub events: usize,
    pub bytes: usize,
}

/// Takes the publishes of the next commit out of `waiting`, oldest first: each that fits the
/// bounds and holds no idempotency key that one already taken holds. Those left keep their
/// order and go first next time; a key's second publish then finds the first one stored and is
/// answered as its duplicate (or refused as a conflict), which one transaction holding the key
/// twice could not do.
pub fn take_group<T: Waiting>(waiting: &mut Vec<T>, bounds: Bounds) -> Vec<T> {
    let mut taken = Vec::new();
    let mut left = Vec::new();
    let (mut events, mut bytes) = (0, 0);
    let mut keys: HashSet<(i64, String)> = HashSet::new();
    for publish in waiting.drain(..) {
        let fits = taken.is_empty()
            || (events + publish.events() <= bounds.events && bytes + publish.bytes() <= bounds.bytes);
        let own_keys = publish.keys();
        let repeats_a_key = own_keys.iter().any(|&(account, key)| keys.contains(&(account, key.to_owned())));
        if !fits || repeats_a_key {
            left.push(publish);
            continue;
        }
        keys.extend(own_keys.into_iter().map(|(account, key)| (account, key.to_owned())));
        events += publish.events();
        bytes += publish.bytes();
        taken.push(publish);
    }
    *waiting = left;
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Publish {
        name: &'static str,
        events: usize,
        bytes: usize,
        keys: Vec<(i64, &'static str)>,
    }

    impl Waiting for Publish {
        fn events(&self) -> usize {
            self.events
        }
        fn bytes(&self) -> usize {
            self.bytes
        }
        fn keys(&self) -> Vec<(i64, &str)> {
            self.keys.clone()
        }
    }

    fn publish(name: &'static str, events: usize, bytes: usize, keys: &[(i64, &'static str)]) -> Publish {
        Publish { name, events, bytes, keys: keys.to_vec() }
    }

    fn names(publishes: &[Publish]) -> Vec<&'static str> {
        publishes.iter().map(|p| p.name).collect()
    }

    const ROOMY: Bounds = Bounds { events: 100, bytes: 1 << 20 };

    #[test]
    fn everything_waiting_joins_while_it_fits() {
        let mut waiting = vec![publish("a", 1, 10, &[]), publish("b", 1, 10, &[]), publish("c", 1, 10, &[])];
        assert_eq!(names(&take_group(&mut waiting, ROOMY)), ["a", "b", "c"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn the_bounds_of_events_and_bytes_hold_but_the_first_always_goes() {
        let bounds = Bounds { events: 3, bytes: 100 };
        let mut waiting = vec![publish("huge", 1000, 1 << 20, &[]), publish("next", 1, 1, &[])];
        assert_eq!(names(&take_group(&mut waiting, bounds)), ["huge"]);
        assert_eq!(names(&waiting), ["next"]);

        let mut waiting = vec![
            publish("a", 2, 10, &[]),
            publish("b", 2, 10, &[]),
            publish("c", 1, 95, &[]),
            publish("d", 1, 80, &[]),
        ];
        assert_eq!(
            names(&take_group(&mut waiting, bounds)),
            ["a", "d"],
            "b is over 3 events, c over 100 bytes"
        );
        assert_eq!(names(&waiting), ["b", "c"], "those left keep their order");
    }

    #[test]
    fn a_key_is_never_twice_in_one_group() {
        let mut waiting = vec![
            publish("first", 1, 1, &[(1, "k")]),
            publish("retry", 1, 1, &[(1, "k")]),
            publish("other account", 1, 1, &[(2, "k")]),
            publish("batch", 2, 2, &[(1, "j"), (1, "k")]),
            publish("no key", 1, 1, &[]),
        ];
        assert_eq!(names(&take_group(&mut waiting, ROOMY)), ["first", "other account", "no key"]);
        assert_eq!(names(&waiting), ["retry", "batch"]);
        assert_eq!(names(&take_group(&mut waiting, ROOMY)), ["retry"]);
        assert_eq!(names(&take_group(&mut waiting, ROOMY)), ["batch"]);
    }
}
