//! Who may receive a publish, from memory: each node keeps the candidates of the routing keys it
//! has published (and the accounts it has seen exist), so that a publish reads nothing before
//! its commit.
//!
//! Storage keeps a routing version that every change to apps or subscriptions moves, in the
//! changing transaction ([`DeliveryQueue::routing_version`](crate::store::queue::DeliveryQueue::routing_version)).
//! Candidates are remembered with the version read before them; a commit group reads the
//! version once and refuses the publishes fanned out at another, which look up again
//! ([`super::GroupCommit::publish_events`]). So a change answered before a publish began is seen
//! by that publish, on every node, at the cost of one small read per commit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::domain::events::Candidate;
use crate::domain::fanout::RoutingKey;
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};

/// Routing keys remembered at most; past it the cache starts again (keys are (type, account,
/// connectors), so a few thousand cover a large platform, and a flood of distinct connector
/// lists cannot grow memory without bound).
const MAX_KEYS: usize = 10_000;

/// Candidates by routing key, each as of one routing version.
pub type Candidates = HashMap<RoutingKey, Vec<Candidate>>;

/// What a node remembers: the candidates of one routing version, and the accounts that exist
/// (accounts are never deleted, so they stay true whatever the version).
#[derive(Default)]
struct Cache {
    version: Option<i64>,
    candidates: Candidates,
    accounts: HashSet<i64>,
}

impl Cache {
    /// The candidates of every key, with their version, if all are remembered.
    fn get(&self, keys: &[RoutingKey]) -> Option<(i64, Candidates)> {
        let version = self.version?;
        let found: Option<Candidates> =
            keys.iter().map(|key| Some((key.clone(), self.candidates.get(key)?.clone()))).collect();
        found.map(|found| (version, found))
    }

    /// Remembers candidates read after the routing version was `version`; ones older than what
    /// is remembered are dropped, newer ones replace it.
    fn remember(&mut self, version: i64, found: &Candidates) {
        self.see(version);
        if self.version != Some(version) {
            return;
        }
        if self.candidates.len() + found.len() > MAX_KEYS {
            self.candidates.clear();
        }
        self.candidates.extend(found.iter().map(|(key, apps)| (key.clone(), apps.clone())));
    }

    /// Storage's routing version is `version`: candidates of an older one are forgotten.
    fn see(&mut self, version: i64) {
        if self.version.is_none_or(|known| known < version) {
            self.version = Some(version);
            self.candidates.clear();
        }
    }
}

/// The node's routing cache over its storage; see the module doc.
pub struct Routing {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    cache: Mutex<Cache>,
}

impl Routing {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Routing { store, metrics, cache: Mutex::default() }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // Every method leaves the cache consistent, so one that panicked left it usable.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The candidates of `keys` and the routing version they are of: remembered, or read from
    /// storage (the version first, so that what is read is at least as new as it says).
    pub async fn candidates(&self, keys: &[RoutingKey]) -> StoreResult<(i64, Candidates)> {
        if let Some(hit) = self.cache().get(keys) {
            self.metrics.routing_lookup("hit");
            return Ok(hit);
        }
        self.metrics.routing_lookup("miss");
        let version = self.store.routing_version().await?;
        let mut found = self.store.candidates(keys.to_vec()).await?;
        for key in keys {
            found.entry(key.clone()).or_default();
        }
        self.cache().remember(version, &found);
        Ok((version, found))
    }

    /// Storage's routing version was `version` at a commit.
    pub fn see(&self, version: i64) {
        self.cache().see(version);
    }

    /// The first of `accounts` that does not exist, if any.
    pub async fn missing_account(&self, accounts: impl IntoIterator<Item = i64>) -> StoreResult<Option<i64>> {
        for account_id in accounts {
            if self.cache().accounts.contains(&account_id) {
                continue;
            }
            if self.store.get_account(account_id).await?.is_none() {
                return Ok(Some(account_id));
            }
            self.cache().accounts.insert(account_id);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::apps::AppType;
    use crate::domain::event_types::EventType;

    fn key(account_id: i64) -> RoutingKey {
        (EventType::BenefitUsage, account_id, vec![])
    }

    fn found(account_id: i64, app_ids: &[i64]) -> Candidates {
        let apps = app_ids
            .iter()
            .map(|&app_id| Candidate {
                app_id,
                app_type: AppType::Normal,
                account_id,
                connector_id: None,
                has_callback_url: true,
            })
            .collect();
        HashMap::from([(key(account_id), apps)])
    }

    #[test]
    fn candidates_are_answered_with_the_version_they_were_read_at() {
        let mut cache = Cache::default();
        assert!(cache.get(&[key(1)]).is_none());
        cache.remember(4, &found(1, &[10]));
        assert_eq!(cache.get(&[key(1)]), Some((4, found(1, &[10]))));
        assert!(cache.get(&[key(1), key(2)]).is_none(), "every key or none");
        cache.remember(4, &found(2, &[]));
        assert_eq!(cache.get(&[key(2)]).map(|(v, f)| (v, f[&key(2)].len())), Some((4, 0)));
    }

    #[test]
    fn a_newer_version_forgets_older_candidates_and_older_reads_are_dropped() {
        let mut cache = Cache::default();
        cache.remember(4, &found(1, &[10]));
        cache.see(5);
        assert!(cache.get(&[key(1)]).is_none());
        cache.remember(4, &found(1, &[10]));
        assert!(cache.get(&[key(1)]).is_none(), "read before the change, so not remembered");
        cache.remember(6, &found(1, &[11]));
        assert_eq!(cache.get(&[key(1)]), Some((6, found(1, &[11]))));
        cache.see(6);
        assert!(cache.get(&[key(1)]).is_some(), "the same version keeps what it has");
    }

    #[test]
    fn the_cache_starts_again_past_its_bound() {
        let mut cache = Cache::default();
        for account_id in 0..MAX_KEYS as i64 {
            cache.remember(1, &found(account_id, &[]));
        }
        assert_eq!(cache.candidates.len(), MAX_KEYS);
        cache.remember(1, &found(-1, &[]));
        assert_eq!(cache.candidates.len(), 1);
    }
}
