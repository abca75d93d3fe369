//! Callback apps: their types, names, and which event types each may subscribe to.

use crate::domain::event_types::EventType;
use crate::error::ApiError;

/// `normal` apps receive the events of their account; `connector` apps those of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    Normal,
    Connector,
}

string_enum!(AppType { Normal => "normal", Connector => "connector" });

/// Parses `app_type`, in a body or a query string.
pub fn parse_app_type(raw: &str) -> Result<AppType, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(format!("app_type must be \"normal\" or \"connector\", got {raw:?}"))
    })
}

/// Longest app name, in Unicode characters [Coze].
pub const MAX_NAME_CHARS: usize = 128;

/// A name is required, not blank, at most 128 characters (not bytes), and has no control
/// characters. `what` names the field in the error.
pub fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    let chars = name.chars().count();
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(format!("{what} must not be empty")));
    }
    if chars > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "{what} is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("{what} must not contain control characters")));
    }
    Ok(())
}

/// Checks that an app of `app_type` may subscribe to every type in `types`.
pub fn check_subscribable(app_type: AppType, types: &[EventType]) -> Result<(), ApiError> {
    match types.iter().find(|t| app_type == AppType::Connector && t.normal_apps_only()) {
        Some(t) => Err(ApiError::bad_request(format!(
            "{t} can only be subscribed by normal apps, and this is a connector app"
        ))),
        None => Ok(()),
    }
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
        assert_eq!(parse_app_type("normal").unwrap(), AppType::Normal);
        assert_eq!(parse_app_type("connector").unwrap(), AppType::Connector);
        assert!(parse_app_type("Normal").is_err());
    }
}
