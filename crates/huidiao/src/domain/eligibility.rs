//! Who may subscribe to which event type (coze-callbacks.md §6, "Event-type eligibility").
//!
//! Checked after the app-type rule (`apps::check_subscribable`, 4000), because a plugin-scale type
//! on a connector app is a malformed request whoever sends it; an ineligible caller is 4101.

use crate::domain::error::DomainError;
use crate::domain::event_types::EventType;
use crate::domain::tenancy::Edition;

/// Checks that a subscriber in an account of `edition`, marked `plugin_developer` or not, may
/// subscribe to every type in `types`. The first ineligible type answers 4101 naming its rule.
pub fn check_eligible(
    edition: Edition,
    plugin_developer: bool,
    types: &[EventType],
) -> Result<(), DomainError> {
    for &t in types {
        match t {
            EventType::BenefitUsage if edition == Edition::Personal => {
                return Err(DomainError::forbidden(format!(
                    "{t} can only be subscribed by accounts on a paid edition (team or enterprise); \
                     this account is on the personal edition"
                )));
            }
            EventType::PluginScaleRequested | EventType::PluginScaleExpired if !plugin_developer => {
                return Err(DomainError::forbidden(format!(
                    "{t} can only be subscribed by plugin developers; ask the operator to mark this \
                     user \"plugin_developer\": true"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    #[test]
    fn benefit_usage_needs_a_paid_edition() {
        for plugin_developer in [false, true] {
            let err =
                check_eligible(Edition::Personal, plugin_developer, &[EventType::BenefitUsage]).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Forbidden);
            assert!(err.msg.contains("paid edition"), "{}", err.msg);
            for edition in [Edition::Team, Edition::Enterprise] {
                assert!(check_eligible(edition, plugin_developer, &[EventType::BenefitUsage]).is_ok());
            }
        }
    }

    #[test]
    fn plugin_scale_needs_a_plugin_developer_on_every_edition() {
        for &edition in Edition::ALL {
            for t in [EventType::PluginScaleRequested, EventType::PluginScaleExpired] {
                let err = check_eligible(edition, false, &[t]).unwrap_err();
                assert_eq!(err.kind, ErrorKind::Forbidden);
                assert!(err.msg.contains("plugin developers") && err.msg.contains(t.as_str()), "{}", err.msg);
                assert!(check_eligible(edition, true, &[t]).is_ok());
            }
        }
    }

    #[test]
    fn the_bot_types_are_open_to_everyone() {
        let bot = [EventType::BotPublished, EventType::BotDeleted, EventType::BotUnpublished];
        for &edition in Edition::ALL {
            assert!(check_eligible(edition, false, &bot).is_ok());
        }
    }

    #[test]
    fn one_ineligible_type_refuses_the_whole_list() {
        let types = [EventType::BotPublished, EventType::BenefitUsage];
        assert!(check_eligible(Edition::Personal, true, &types).is_err());
    }
}
