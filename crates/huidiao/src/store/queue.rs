//! The delivery queue: publishing (candidates, then the deliveries fan-out made), leasing,
//! recording attempts and giving leases back.

use std::collections::HashMap;

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::attempts::AttemptResult;
use crate::domain::delivery::{LeaseRequest, LeasedDelivery};
use crate::domain::events::Candidate;
use crate::domain::fanout::{Publication, RoutingKey};
use crate::domain::idempotency::Published;

#[async_trait]
pub trait DeliveryQueue {
    /// The live apps subscribed to each key's event type that may receive its events (the
    /// account's normal apps, the connector apps of the connectors it names), for
    /// [`crate::domain::fanout`] to choose from. A key with no candidates may be left out.
    async fn candidates(&self, keys: Vec<RoutingKey>) -> StoreResult<HashMap<RoutingKey, Vec<Candidate>>>;
    /// Stores events with the deliveries fan-out made for them, all in one durable transaction,
    /// and wakes the other nodes. An event whose idempotency key its account already holds
    /// within the window is not stored (nor its deliveries): its answer is the first event; a
    /// key held by a different event refuses the whole publish ([`StoreError::KeyReused`]).
    /// Keys must be unique per account among the events.
    async fn publish(&self, publications: Vec<Publication>) -> StoreResult<Vec<Published>>;
    /// Takes up to `limit` due pending deliveries until `lease_until`, oldest due first, never
    /// letting an app hold more than `per_app` live leases, and never taking an app whose live
    /// leases belong to another node. A lease that runs out (its holder died) makes the delivery
    /// due again.
    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>>;
    /// When the earliest pending delivery of an app that is not paused falls due, if any.
    async fn next_due_at(&self) -> StoreResult<Option<i64>>;
    /// Records finished attempts and moves their deliveries on, in one transaction. A delivery
    /// cancelled meanwhile keeps its status.
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()>;
    /// Gives leased deliveries back, due at `now` (graceful shutdown).
    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()>;
    /// Gives back every lease (start-up of the only node using this storage).
    async fn release_all_leases(&self, now: i64) -> StoreResult<u64>;
    /// Pending deliveries, in flight or waiting.
    async fn pending_count(&self) -> StoreResult<i64>;
}
