//! Per-app limits on this node. Storage leases an app's deliveries to one node at a time (it
//! skips apps whose live leases another node holds), so what this node allows an app is what
//! the app gets over all nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pushes in flight per app: a semaphore per app with deliveries on this node, dropped when its
/// last delivery is done so the map only holds apps with work.
pub struct AppLimits {
    in_flight_per_app: usize,
    gates: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

/// The right to push one delivery of an app; gives its slot back when dropped.
pub struct AppSlot {
    app_id: i64,
    permit: Option<OwnedSemaphorePermit>,
    limits: Arc<AppLimits>,
}

impl AppLimits {
    pub fn new(in_flight_per_app: usize) -> Arc<Self> {
        Arc::new(AppLimits { in_flight_per_app, gates: Mutex::default() })
    }

    /// Waits for a push slot of `app_id`.
    pub async fn acquire(self: &Arc<Self>, app_id: i64) -> AppSlot {
        let gate = {
            let mut gates = self.gates.lock().expect("app gates lock");
            gates.entry(app_id).or_insert_with(|| Arc::new(Semaphore::new(self.in_flight_per_app))).clone()
        };
        let permit = gate.acquire_owned().await.expect("app gates are never closed");
        AppSlot { app_id, permit: Some(permit), limits: self.clone() }
    }

    /// Apps with a gate now, i.e. with a delivery pushing or waiting to push.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.gates.lock().expect("app gates lock").len()
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
        let first = limits.acquire(1).await;
        let _second = limits.acquire(1).await;
        let third = tokio::time::timeout(Duration::from_millis(50), limits.acquire(1)).await;
        assert!(third.is_err(), "a third slot of app 1 while two are taken");
        let other = tokio::time::timeout(Duration::from_millis(50), limits.acquire(2)).await;
        assert!(other.is_ok(), "app 2 waits for app 1");
        drop(other);
        drop(first);
        assert!(tokio::time::timeout(Duration::from_millis(50), limits.acquire(1)).await.is_ok());
    }

    #[tokio::test]
    async fn gates_of_idle_apps_are_dropped() {
        let limits = AppLimits::new(1);
        let slot = limits.acquire(7).await;
        let waiter = tokio::spawn({
            let limits = limits.clone();
            async move { limits.acquire(7).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(slot);
        assert_eq!(limits.tracked(), 1, "the waiter's gate is kept");
        drop(waiter.await.unwrap());
        assert_eq!(limits.tracked(), 0);
    }
}
