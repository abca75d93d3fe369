//! Per-app limits on this node. Storage leases an app's deliveries to one node at a time (it
//! skips apps whose live leases another node holds), so what this node allows an app is what
//! the app gets over all nodes.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pushes in flight per app, and the pace of apps with a rate cap.
pub struct AppLimits {
    in_flight_per_app: usize,
    /// A semaphore per app with deliveries on this node, dropped when its last delivery is done
    /// so the map only holds apps with work.
    gates: Mutex<HashMap<i64, Arc<Semaphore>>>,
    /// A limiter per app with a rate cap, kept while the cap is (an idle app's limiter remembers
    /// its last push, so a new batch cannot start with a burst).
    paces: Mutex<HashMap<i64, Pace>>,
}

/// A rate cap and the limiter that keeps it: one push every `1 / per_second` s, no bursts.
struct Pace {
    per_second: NonZeroU32,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// The right to push one delivery of an app; gives its slot back when dropped.
pub struct AppSlot {
    app_id: i64,
    permit: Option<OwnedSemaphorePermit>,
    limits: Arc<AppLimits>,
}

impl AppLimits {
    pub fn new(in_flight_per_app: usize) -> Arc<Self> {
        Arc::new(AppLimits { in_flight_per_app, gates: Mutex::default(), paces: Mutex::default() })
    }

    /// Waits for a push slot of `app_id`, then, if the app has a rate cap, for its turn.
    pub async fn acquire(self: &Arc<Self>, app_id: i64, max_per_second: Option<u32>) -> AppSlot {
        let gate = {
            let mut gates = self.gates.lock().expect("app gates lock");
            gates.entry(app_id).or_insert_with(|| Arc::new(Semaphore::new(self.in_flight_per_app))).clone()
        };
        let permit = gate.acquire_owned().await.expect("app gates are never closed");
        if let Some(limiter) = self.limiter(app_id, max_per_second) {
            limiter.until_ready().await;
        }
        AppSlot { app_id, permit: Some(permit), limits: self.clone() }
    }

    /// The limiter for the app's current cap, made anew when the operator changed it.
    fn limiter(&self, app_id: i64, max_per_second: Option<u32>) -> Option<Arc<DefaultDirectRateLimiter>> {
        let mut paces = self.paces.lock().expect("paces lock");
        let Some(per_second) = max_per_second.and_then(NonZeroU32::new) else {
            paces.remove(&app_id);
            return None;
        };
        let pace = paces.entry(app_id).or_insert_with(|| Pace::new(per_second));
        if pace.per_second != per_second {
            *pace = Pace::new(per_second);
        }
        Some(pace.limiter.clone())
    }

    /// Apps with a gate now, i.e. with a delivery pushing or waiting to push.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.gates.lock().expect("app gates lock").len()
    }
}

impl Pace {
    fn new(per_second: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(NonZeroU32::MIN);
        Pace { per_second, limiter: Arc::new(RateLimiter::direct(quota)) }
    }
}

impl Drop for AppSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut gates = self.limits.gates.lock().expect("app gates lock");
        // Nobody else holds or waits on the gate when the map's reference is the only one; a
        // waiter holds a clone, so the gate is kept for it.
        if gates.get(&self.app_id).is_some_and(|gate| Arc::strong_count(gate) == 1) {
            gates.remove(&self.app_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_app_gets_at_most_its_slots_and_others_are_not_held_up() {
        let limits = AppLimits::new(2);
        let first = limits.acquire(1, None).await;
        let _second = limits.acquire(1, None).await;
        let third = tokio::time::timeout(Duration::from_millis(50), limits.acquire(1, None)).await;
        assert!(third.is_err(), "a third slot of app 1 while two are taken");
        let other = tokio::time::timeout(Duration::from_millis(50), limits.acquire(2, None)).await;
        assert!(other.is_ok(), "app 2 waits for app 1");
        drop(other);
        drop(first);
        assert!(tokio::time::timeout(Duration::from_millis(50), limits.acquire(1, None)).await.is_ok());
    }

    #[tokio::test]
    async fn gates_of_idle_apps_are_dropped() {
        let limits = AppLimits::new(1);
        let slot = limits.acquire(7, None).await;
        let waiter = tokio::spawn({
            let limits = limits.clone();
            async move { limits.acquire(7, None).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(slot);
        assert_eq!(limits.tracked(), 1, "the waiter's gate is kept");
        drop(waiter.await.unwrap());
        assert_eq!(limits.tracked(), 0);
    }

    #[tokio::test]
    async fn a_rate_cap_spaces_the_pushes_of_its_app_only() {
        let limits = AppLimits::new(16);
        let started = std::time::Instant::now();
        for _ in 0..5 {
            drop(limits.acquire(1, Some(20)).await);
        }
        let paced = started.elapsed();
        assert!(paced >= Duration::from_millis(190), "5 pushes at 20/s took {paced:?}");
        let started = std::time::Instant::now();
        for _ in 0..5 {
            drop(limits.acquire(2, None).await);
        }
        assert!(started.elapsed() < Duration::from_millis(50), "an app without a cap was paced");
    }
}
