//! Test events (`POST /v1/api_apps/{id}/test_event`, operator-api.md): which apps may be sent
//! one, and the sample event of each type, shaped like what Coze pushes (coze-callbacks.md §4).

use serde_json::json;

use crate::domain::apps::{check_subscribable, AppType};
use crate::domain::eligibility::check_eligible;
use crate::domain::error::DomainError;
use crate::domain::event_types::EventType;
use crate::domain::events::NewEvent;
use crate::domain::tenancy::Edition;

/// The app a test event is for, as the rules need it.
pub struct TestTarget {
    pub app_id: i64,
    pub app_type: AppType,
    pub account_id: i64,
    pub connector_id: Option<i64>,
    pub has_callback_url: bool,
    pub paused: bool,
    /// The subscriber's standing, as subscribing checks it (`check_eligible`).
    pub edition: Edition,
    pub plugin_developer: bool,
}

/// Checks that the app could receive `event_type` (the app may subscribe to it, subscribed or
/// not: 4000 / 4101 as subscribing answers) and that a push can happen now (a callback URL, not
/// paused: 4000).
pub fn check_testable(target: &TestTarget, event_type: EventType) -> Result<(), DomainError> {
    check_subscribable(target.app_type, &[event_type])?;
    check_eligible(target.edition, target.plugin_developer, &[event_type])?;
    if !target.has_callback_url {
        return Err(DomainError::invalid(format!(
            "api_app {} has no callback URL to send a test event to; set callback_url first",
            target.app_id
        )));
    }
    if target.paused {
        return Err(DomainError::invalid(format!(
            "api_app {} is paused, so nothing is pushed to it; resume it to send a test event",
            target.app_id
        )));
    }
    Ok(())
}

/// The test event of `event_type` for the target, published at `now`: a sample `event` object,
/// routed to the target alone (its account, its connector).
pub fn test_event(target: &TestTarget, event_type: EventType, id: i64, now: i64) -> NewEvent {
    NewEvent {
        id,
        uuid: uuid::Uuid::new_v4().to_string(),
        event_type,
        account_id: target.account_id,
        connector_ids: target.connector_id.into_iter().collect(),
        payload: sample(event_type, now).to_string(),
        created_at: now,
        published_at: now,
        traceparent: None,
        idempotency: None,
        test: true,
    }
}

/// A realistic `event` object of the type, with the documented fields and Coze's value types
/// (numbers where Coze's samples use numbers, ids of bots and resources as strings); `now` is
/// ms since the epoch, the times inside are seconds as Coze writes them.
pub fn sample(event_type: EventType, now: i64) -> serde_json::Value {
    let secs = now / 1000;
    let applicant = json!({"user_id": 2102717852, "user_name": "测试用户"});
    let mut event = match event_type {
        EventType::BotPublished | EventType::BotDeleted | EventType::BotUnpublished => {
            json!({"bot_id": "7512045450401153075", "bot_name": "测试智能体", "user_id": "2102717852"})
        }
        EventType::BenefitUsage => json!({
            "id": "7547640143629301", "consume_time": secs, "record_root_id": "7547640143629302",
            "connector_id": "1024", "connector_uid": "test-user", "device_id": "test-device",
            "custom_consumer": "", "space_id": "7546067923538801", "root_entity_type": "bot",
            "root_entity_id": "7512045450401153075", "change_balance": "-0.0125", "balance_type": "resource_point",
            "resource_type": "model", "resource_id": "7546067923538802", "model_id": "1737521813",
            "model_input_token": 1200, "model_output_token": 350, "tts_char_num": 0, "tts_count": 0,
            "asr_audio_length": 0, "rtc_duration": 0, "rtc_begin_time": 0, "rtc_end_time": 0,
        }),
        EventType::PluginScaleRequested => json!({
            "apply_id": "7547640143629300", "begin_at": secs, "end_at": secs + 30 * 86_400,
            "resource_id": "7546067923538800", "usage_in_30d": 1830, "applicant_info": applicant,
            "extension_type": "QPS", "origin_capacity": 5, "target_capacity": 21,
        }),
        EventType::PluginScaleExpired => json!({
            "apply_id": "7547640143629300", "resource_id": "7546067923538800", "applicant_info": applicant,
            "extension_type": "QPS", "expired_capacity": 5, "current_capacity": 21,
        }),
    };
    match event_type {
        EventType::BotPublished => event["description"] = json!("huidiao 测试事件"),
        EventType::BotUnpublished => {
            event["connector_id"] = json!("1024");
            event["unpublish_reason"] = json!("test");
        }
        _ => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;
    use crate::domain::events::{bot_id, delivery_body, receives, Candidate};

    fn target(app_type: AppType) -> TestTarget {
        TestTarget {
            app_id: 42,
            app_type,
            account_id: 7,
            connector_id: (app_type == AppType::Connector).then_some(1024),
            has_callback_url: true,
            paused: false,
            edition: Edition::Team,
            plugin_developer: false,
        }
    }

    #[test]
    fn samples_carry_the_documented_fields() {
        for &t in EventType::ALL {
            let event = sample(t, 1_757_412_006_297);
            assert!(event.is_object(), "{t}");
            if matches!(t, EventType::BotPublished | EventType::BotDeleted | EventType::BotUnpublished) {
                assert!(bot_id(&event.to_string()).is_some(), "{t} names a bot");
            }
        }
        let published = sample(EventType::BotPublished, 0);
        for field in ["user_id", "bot_id", "bot_name", "description"] {
            assert!(published.get(field).is_some(), "bot.published.{field}");
        }
        let usage = sample(EventType::BenefitUsage, 1_757_412_006_297);
        assert_eq!(usage["consume_time"], 1_757_412_006, "seconds, as Coze writes them");
        assert!(usage["change_balance"].is_string() && usage["model_input_token"].is_number());
        let expired = sample(EventType::PluginScaleExpired, 0);
        assert!(expired["applicant_info"]["user_id"].is_number(), "a number in Coze's own sample");
        assert_eq!(expired["expired_capacity"], 5);
        let requested = sample(EventType::PluginScaleRequested, 1_000_000);
        assert_eq!(
            requested["end_at"].as_i64().unwrap() - requested["begin_at"].as_i64().unwrap(),
            30 * 86_400
        );
    }

    #[test]
    fn a_test_event_reaches_its_app_alone_and_is_marked() {
        for app_type in [AppType::Normal, AppType::Connector] {
            let t = target(app_type);
            let event = test_event(&t, EventType::BotPublished, 1, 5_000);
            let app = Candidate {
                app_id: t.app_id,
                app_type,
                account_id: t.account_id,
                connector_id: t.connector_id,
                has_callback_url: true,
            };
            assert!(receives(&event, &app), "{app_type:?}");
            let body: serde_json::Value = serde_json::from_str(&delivery_body(&event, &app, "e-42")).unwrap();
            assert_eq!(body["header"]["test"], true);
            assert_eq!(body["header"]["created_at"], 5_000);
            assert_eq!(body["event"]["bot_name"], "测试智能体");
        }
    }

    #[test]
    fn only_what_the_app_could_subscribe_to_and_only_when_it_can_be_pushed() {
        let connector = target(AppType::Connector);
        let err = check_testable(&connector, EventType::PluginScaleExpired).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{}", err.msg);
        let normal = target(AppType::Normal);
        let err = check_testable(&normal, EventType::PluginScaleExpired).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Forbidden, "{}", err.msg);
        assert!(check_testable(
            &TestTarget { plugin_developer: true, ..target(AppType::Normal) },
            EventType::PluginScaleExpired
        )
        .is_ok());
        assert!(check_testable(&normal, EventType::BotDeleted).is_ok());
        let no_url = TestTarget { has_callback_url: false, ..target(AppType::Normal) };
        let err = check_testable(&no_url, EventType::BotDeleted).unwrap_err();
        assert!(err.kind == ErrorKind::Invalid && err.msg.contains("callback URL"), "{}", err.msg);
        let paused = TestTarget { paused: true, ..target(AppType::Normal) };
        assert!(check_testable(&paused, EventType::BotDeleted).unwrap_err().msg.contains("paused"));
    }
}
