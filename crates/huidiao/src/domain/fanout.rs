//! Fan-out: from a validated event and the apps subscribed to its type, the deliveries to store.
//! Who receives it ([`receives`]), each delivery's `event_id`, the exact body pushed, and its
//! first stage are decided here, once, so that storage only looks candidates up and inserts what
//! it is given.

use std::collections::HashMap;

use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::EventType;
use crate::domain::events::{delivery_body, delivery_event_id, receives, Candidate, NewEvent};

/// What decides an event's candidates: its type, its owner and the connectors it names. The
/// events of a publish batch mostly share it, so candidates are looked up once per key.
pub type RoutingKey = (EventType, i64, Vec<i64>);

pub fn routing_key(event: &NewEvent) -> RoutingKey {
    (event.event_type, event.account_id, event.connector_ids.clone())
}

/// The distinct routing keys of a batch, in the order they first appear.
pub fn routing_keys(events: &[NewEvent]) -> Vec<RoutingKey> {
    let mut keys: Vec<RoutingKey> = Vec::new();
    for key in events.iter().map(routing_key) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// One delivery to store with its event, everything about it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: i64,
    /// The stored event's id.
    pub event: i64,
    pub app_id: i64,
    /// The `event_id` in the pushed header.
    pub event_key: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// When it is first due (ms); `None` unless pending.
    pub due: Option<i64>,
    /// The exact body pushed, built once.
    pub body: String,
    pub traceparent: Option<String>,
    pub created_at: i64,
}

/// An event with its deliveries, as one publish stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub event: NewEvent,
    pub deliveries: Vec<NewDelivery>,
}

/// The stage of a new delivery: pending and due at once, or skipped when the app has no URL.
fn first_stage(app: &Candidate, published_at: i64) -> (DeliveryStatus, Option<i64>) {
    if app.has_callback_url {
        (DeliveryStatus::Pending, Some(published_at))
    } else {
        (DeliveryStatus::Skipped, None)
    }
}

/// The deliveries of `event` among its `candidates`, in their order, each with the next of `ids`.
pub fn fan_out(
    event: &NewEvent,
    candidates: &[Candidate],
    ids: &mut impl Iterator<Item = i64>,
) -> Vec<NewDelivery> {
    candidates
        .iter()
        .filter(|app| receives(event, app))
        .zip(ids)
        .map(|(app, id)| {
            let event_key = delivery_event_id(event, app.app_id);
            let (status, due) = first_stage(app, event.published_at);
            NewDelivery {
                id,
                event: event.id,
                app_id: app.app_id,
                body: delivery_body(event, app, &event_key),
                event_key,
                event_type: event.event_type,
                status,
                due,
                traceparent: event.traceparent.clone(),
                created_at: event.published_at,
            }
        })
        .collect()
}

/// Fans out every event of a batch with the candidates looked up for its routing key (none when
/// the key is missing).
pub fn fan_out_all(
    events: Vec<NewEvent>,
    candidates: &HashMap<RoutingKey, Vec<Candidate>>,
    ids: &mut impl Iterator<Item = i64>,
) -> Vec<Publication> {
    events
        .into_iter()
        .map(|event| {
            let apps = candidates.get(&routing_key(&event)).map_or(&[][..], Vec::as_slice);
            let deliveries = fan_out(&event, apps, ids);
            Publication { event, deliveries }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::apps::AppType;

    fn event(id: i64, account_id: i64, connector_ids: Vec<i64>) -> NewEvent {
        NewEvent {
            id,
            uuid: format!("u{id}"),
            event_type: EventType::BotPublished,
            account_id,
            connector_ids,
            payload: r#"{"bot_id":"1"}"#.into(),
            created_at: 5,
            published_at: 9,
            idempotency: None,
            traceparent: Some("00-trace".into()),
            test: false,
        }
    }

    fn app(
        app_id: i64,
        app_type: AppType,
        account_id: i64,
        connector_id: Option<i64>,
        url: bool,
    ) -> Candidate {
        Candidate { app_id, app_type, account_id, connector_id, has_callback_url: url }
    }

    #[test]
    fn receivers_get_their_own_event_id_body_and_first_stage() {
        let candidates = [
            app(1, AppType::Normal, 7, None, true),
            app(2, AppType::Normal, 8, None, true),
            app(3, AppType::Connector, 8, Some(40), false),
            app(4, AppType::Connector, 7, Some(41), true),
        ];
        let e = event(100, 7, vec![40]);
        let got = fan_out(&e, &candidates, &mut (500..));
        assert_eq!(got.iter().map(|d| (d.id, d.app_id)).collect::<Vec<_>>(), [(500, 1), (501, 3)]);
        let (normal, connector) = (&got[0], &got[1]);
        assert_eq!((normal.status, normal.due), (DeliveryStatus::Pending, Some(9)));
        assert_eq!((connector.status, connector.due), (DeliveryStatus::Skipped, None));
        assert_eq!(normal.event_key, "u100-1");
        assert_eq!(normal.body, delivery_body(&e, &candidates[0], "u100-1"));
        assert!(connector.body.contains(r#""connector_id":"40""#), "{}", connector.body);
        for d in &got {
            assert_eq!((d.event, d.event_type, d.created_at), (100, EventType::BotPublished, 9));
            assert_eq!(d.traceparent.as_deref(), Some("00-trace"));
        }
    }

    #[test]
    fn a_batch_takes_ids_in_order_and_an_unknown_key_has_no_receivers() {
        let events = vec![event(1, 7, vec![]), event(2, 9, vec![]), event(3, 7, vec![])];
        let keys = routing_keys(&events);
        assert_eq!(keys, [(EventType::BotPublished, 7, vec![]), (EventType::BotPublished, 9, vec![])]);
        let candidates = HashMap::from([(keys[0].clone(), vec![app(1, AppType::Normal, 7, None, true)])]);
        let got = fan_out_all(events, &candidates, &mut (10..));
        let ids: Vec<Vec<i64>> = got.iter().map(|p| p.deliveries.iter().map(|d| d.id).collect()).collect();
        assert_eq!(ids, [vec![10], vec![], vec![11]]);
        assert_eq!(got.iter().map(|p| p.event.id).collect::<Vec<_>>(), [1, 2, 3]);
    }
}
