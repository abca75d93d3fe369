//! The event types a callback app can subscribe to (coze-callbacks.md §3–§4).

use crate::domain::error::DomainError;

/// One of the six subscribable event types. `url_verification` is not one: it is only ever sent
/// when a callback URL is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    BotPublished,
    BotDeleted,
    BotUnpublished,
    BenefitUsage,
    PluginScaleRequested,
    PluginScaleExpired,
}

string_enum!(EventType {
    BotPublished => "bot.published",
    BotDeleted => "bot.deleted",
    BotUnpublished => "bot.unpublished",
    BenefitUsage => "benefit.usage",
    PluginScaleRequested => "benefit.plugin.scale.requested",
    PluginScaleExpired => "benefit.plugin.scale.expired",
});

impl EventType {
    /// The Chinese description shown in subscription lists, in the style of Coze's own
    /// (`bot.deleted` → "智能体已被所有者删除").
    pub fn description(self) -> &'static str {
        match self {
            EventType::BotPublished => "智能体已发布到渠道",
            EventType::BotDeleted => "智能体已被所有者删除",
            EventType::BotUnpublished => "智能体已从渠道下架",
            EventType::BenefitUsage => "资源点扣费明细",
            EventType::PluginScaleRequested => "插件扩容申请已提交",
            EventType::PluginScaleExpired => "插件扩容已到期",
        }
    }

    /// The two plugin-scale types go to normal apps only [Coze].
    pub fn normal_apps_only(self) -> bool {
        matches!(self, EventType::PluginScaleRequested | EventType::PluginScaleExpired)
    }
}

/// Most entries one `event_types` list may have (there are six types; repeats are allowed).
pub const MAX_EVENT_TYPES_LISTED: usize = 64;

/// Validates the `event_types` of a subscribe or unsubscribe request: non-empty, every entry
/// known. Any unknown entry fails the whole request. Duplicates collapse.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<EventType>, DomainError> {
    if raw.is_empty() {
        return Err(DomainError::invalid(format!(
            "event_types must list at least one event type; known types are: {}",
            EventType::names()
        )));
    }
    if raw.len() > MAX_EVENT_TYPES_LISTED {
        return Err(DomainError::invalid(format!(
            "event_types lists {} entries; at most {MAX_EVENT_TYPES_LISTED} are accepted",
            raw.len()
        )));
    }
    let mut types =
        raw.iter().map(|t| EventType::parse_field("each event type", t)).collect::<Result<Vec<_>, _>>()?;
    types.sort();
    types.dedup();
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_all_and_reject_unknown() {
        for &t in EventType::ALL {
            assert_eq!(EventType::parse_field("event_type", t.as_str()).unwrap(), t);
        }
        let err = EventType::parse_field("event_type", "bot.renamed").unwrap_err();
        assert!(err.msg.contains("bot.renamed") && err.msg.contains("bot.published"));
        assert!(EventType::parse_field("event_type", "url_verification").is_err());
    }

    #[test]
    fn lists() {
        assert!(parse_event_types(&[]).is_err());
        let got = parse_event_types(&["bot.deleted".into(), "bot.deleted".into()]).unwrap();
        assert_eq!(got, vec![EventType::BotDeleted]);
        assert!(parse_event_types(&["bot.deleted".into(), "nope".into()]).is_err());
        assert!(parse_event_types(&vec!["bot.deleted".to_owned(); 65]).unwrap_err().msg.contains("64"));
    }

    #[test]
    fn descriptions_are_chinese() {
        assert_eq!(EventType::BotDeleted.description(), "智能体已被所有者删除");
        assert!(EventType::ALL.iter().all(|t| !t.description().is_ascii()));
    }
}
