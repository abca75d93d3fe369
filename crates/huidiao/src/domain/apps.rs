//! Callback apps: their types, names, and which event types each may subscribe to.

use crate::domain::error::DomainError;
use crate::domain::event_types::EventType;
use crate::domain::pausing::Pause;
use crate::domain::tenancy::Ownership;

/// `normal` apps receive the events of their account; `connector` apps those of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    Normal,
    Connector,
}

string_enum!(AppType { Normal => "normal", Connector => "connector" });

/// Longest app name, in Unicode characters [Coze].
pub const MAX_NAME_CHARS: usize = 128;

/// A name is required, not blank, at most 128 characters (not bytes), and has no control
/// characters. `what` names the field in the error.
pub fn validate_name(what: &str, name: &str) -> Result<(), DomainError> {
    let chars = name.chars().count();
    if name.trim().is_empty() {
        return Err(DomainError::invalid(format!("{what} must not be empty")));
    }
    if chars > MAX_NAME_CHARS {
        return Err(DomainError::invalid(format!(
            "{what} is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(format!("{what} must not contain control characters")));
    }
    Ok(())
}

/// Checks that an app of `app_type` may subscribe to every type in `types`.
pub fn check_subscribable(app_type: AppType, types: &[EventType]) -> Result<(), DomainError> {
    match types.iter().find(|t| app_type == AppType::Connector && t.normal_apps_only()) {
        Some(t) => Err(DomainError::invalid(format!(
            "{t} can only be subscribed by normal apps, and this is a connector app"
        ))),
        None => Ok(()),
    }
}

/// A callback app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: i64,
    pub account_id: i64,
    pub owner_id: i64,
    pub app_type: AppType,
    pub name: Option<String>,
    pub connector_id: Option<i64>,
    pub callback_url: Option<String>,
    pub verify_token: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The operator's cap on deliveries per second to this app, over all nodes.
    pub max_per_second: Option<u32>,
    /// Set while nothing is pushed to the app; its deliveries wait as pending.
    pub paused: Option<Pause>,
}

impl App {
    pub fn ownership(&self) -> Ownership {
        Ownership { account_id: self.account_id, owner_id: self.owner_id }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub app_id: i64,
    pub event_type: EventType,
    pub created_at: i64,
}

/// A change to an app's name and/or callback URL; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppUpdate {
    pub name: Option<String>,
    pub callback_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_characters_not_bytes() {
        assert!(validate_name("name", &"回".repeat(128)).is_ok());
        assert!(validate_name("name", &"回".repeat(129)).is_err());
        assert!(validate_name("name", &"a".repeat(128)).is_ok());
        assert!(validate_name("name", "").is_err());
        assert!(validate_name("name", "   ").is_err());
        assert!(validate_name("name", "a\u{0}b").is_err());
    }

    #[test]
    fn connector_apps_cannot_take_plugin_scale_events() {
        assert!(check_subscribable(AppType::Normal, EventType::ALL).is_ok());
        assert!(check_subscribable(AppType::Connector, &[EventType::BotPublished, EventType::BenefitUsage])
            .is_ok());
        assert!(check_subscribable(AppType::Connector, &[EventType::PluginScaleExpired]).is_err());
    }

    #[test]
    fn app_types() {
        assert_eq!(AppType::parse_field("app_type", "normal").unwrap(), AppType::Normal);
        assert_eq!(AppType::parse_field("app_type", "connector").unwrap(), AppType::Connector);
        let err = AppType::parse_field("app_type", "Normal").unwrap_err();
        assert_eq!(err.msg, "app_type must be one of normal, connector; got \"Normal\"");
    }
}
