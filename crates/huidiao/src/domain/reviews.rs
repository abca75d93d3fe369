//! A channel's review of a published bot (coze-callbacks.md §6): what its answer to
//! `bot.published` says, what it may change later with 更新审核结果, and who may change it.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::delivery::Audit;
use crate::domain::error::DomainError;
use crate::domain::tenancy::{Caller, Edition, Ownership, Permission, Role};
use crate::domain::text::storable;

/// The status of a review when the channel answered 2xx without a valid `audit`: Coze counts
/// that publish as failed.
pub const NO_REVIEW: i64 = 0;

/// The longest `reason` a channel may send, in characters.
pub const MAX_REASON_CHARS: usize = 1024;

/// Where a review's current state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewSource {
    /// The channel's answer to the `bot.published` push.
    Answer,
    /// A later `PUT /v1/connectors/:connector_id/bots/:bot_id`.
    Update,
}

string_enum!(ReviewSource { Answer => "answer", Update => "update" });

/// One change of a review, to store and to keep in its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewChange {
    pub connector_id: i64,
    pub bot_id: String,
    pub audit_status: i64,
    pub reason: Option<String>,
    /// Only answers carry one; an update keeps the answer's.
    pub share_link: Option<String>,
    pub source: ReviewSource,
    /// The `event_id` of the `bot.published` delivery; an update keeps the answer's.
    pub event_id: Option<String>,
    pub at: i64,
}

/// One entry of a review's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEntry {
    pub audit_status: i64,
    pub reason: Option<String>,
    pub source: ReviewSource,
    pub at: i64,
}

/// The review of one bot by one connector: its current state (the last change, whose
/// `event_id` is the answered delivery's and `at` the time of the change), and every change
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub current: ReviewChange,
    pub history: Vec<ReviewEntry>,
}

/// The parts of a pushed `bot.published` body a review is keyed on.
#[derive(Deserialize)]
struct Pushed {
    header: PushedHeader,
    event: Value,
}

#[derive(Deserialize)]
struct PushedHeader {
    event_id: String,
    connector_id: Option<String>,
    #[serde(default)]
    test: bool,
}

/// A bot id as Coze writes it: a string, or a whole number (Coze's Go sample reads a number).
pub fn bot_id_of(event: &Value) -> Option<String> {
    match event.get("bot_id")? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The review a connector app's 2xx answer gives its `bot.published` push `body` (the exact
/// bytes sent): the answer's `audit`, or [`NO_REVIEW`] when it had none. `None` when the body
/// names no connector or no bot, so there is nothing to key a review on.
pub fn answered_review(body: &[u8], audit: Option<&Audit>, at: i64) -> Option<ReviewChange> {
    let key = review_key(body)?;
    Some(ReviewChange {
        connector_id: key.connector_id,
        bot_id: key.bot_id,
        audit_status: audit.map_or(NO_REVIEW, |a| a.audit_status),
        reason: audit.and_then(|a| a.reason.clone()),
        share_link: audit.and_then(|a| a.share_link.clone()),
        source: ReviewSource::Answer,
        event_id: Some(key.event_id),
        at,
    })
}

/// What a pushed body's review is found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewKey {
    pub connector_id: i64,
    pub bot_id: String,
    /// The delivery's `event_id`.
    pub event_id: String,
}

/// The connector and bot a pushed body (the exact bytes sent) concerns; `None` when it names no
/// connector (a normal app's delivery) or no bot, or is a test event (whose sample bot is no
/// bot the channel reviews).
pub fn review_key(body: &[u8]) -> Option<ReviewKey> {
    let pushed: Pushed = serde_json::from_slice(body).ok()?;
    if pushed.header.test {
        return None;
    }
    Some(ReviewKey {
        connector_id: pushed.header.connector_id?.parse().ok()?,
        bot_id: bot_id_of(&pushed.event)?,
        event_id: pushed.header.event_id,
    })
}

/// Checks the body of 更新审核结果: `audit_status` 1, 2 or 3 (required; cozepy sends `null` for
/// unset fields), and a `reason` for 3. A blank reason counts as none; a NUL in it is stored as
/// U+FFFD ([`storable`]).
pub fn validate_update(
    audit_status: Option<i64>,
    reason: Option<String>,
) -> Result<(i64, Option<String>), DomainError> {
    let status = audit_status.ok_or_else(|| {
        DomainError::invalid("audit_status is required: 1 (in review), 2 (approved) or 3 (rejected)")
    })?;
    if !(1..=3).contains(&status) {
        return Err(DomainError::invalid(format!(
            "audit_status must be 1 (in review), 2 (approved) or 3 (rejected); got {status}"
        )));
    }
    let reason = reason.map(|r| storable(r.trim()).into_owned()).filter(|r| !r.is_empty());
    if let Some(r) = &reason {
        let chars = r.chars().count();
        if chars > MAX_REASON_CHARS {
            return Err(DomainError::invalid(format!(
                "reason is {chars} characters; at most {MAX_REASON_CHARS} are allowed"
            )));
        }
    }
    if status == 3 && reason.is_none() {
        return Err(DomainError::invalid("reason is required when audit_status is 3 (rejected): say why"));
    }
    Ok((status, reason))
}

/// The permission a token needs to update reviews [huidiao: Coze names none for 更新审核结果;
/// the channel's review is part of running its connector app].
pub const UPDATE_REVIEW_PERMISSION: Permission = Permission::UpdateApiApp;

/// Who may update a connector's reviews (§6): a token with [`UPDATE_REVIEW_PERMISSION`] of the
/// connector's creator, or of a super admin or admin of its account in a team or enterprise
/// edition (4101 otherwise). A missing connector (`None`) or another account's is 4200, checked
/// after the permission as for apps.
pub fn may_update_review(
    caller: &Caller,
    connector_id: i64,
    connector: Option<Ownership>,
) -> Result<(), DomainError> {
    caller.require(UPDATE_REVIEW_PERMISSION)?;
    let connector = connector
        .filter(|c| c.account_id == caller.account_id)
        .ok_or_else(|| DomainError::not_found(format!("connector {connector_id} not found")))?;
    let admin = caller.edition != Edition::Personal && matches!(caller.role, Role::SuperAdmin | Role::Admin);
    if connector.owner_id == caller.user_id || admin {
        Ok(())
    } else {
        Err(DomainError::forbidden(
            "only the connector's creator, or a super_admin or admin of its team or enterprise account, may update its reviews",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    fn body(connector: Option<&str>, bot: &str) -> Vec<u8> {
        let connector = connector.map_or(String::new(), |c| format!(r#","connector_id":"{c}""#));
        format!(r#"{{"header":{{"event_id":"e-1"{connector}}},"event":{{"bot_id":{bot}}}}}"#).into_bytes()
    }

    #[test]
    fn answers_become_reviews_keyed_on_connector_and_bot() {
        let audit =
            Audit { audit_status: 3, reason: Some("no".into()), share_link: Some("https://s".into()) };
        let review = answered_review(&body(Some("9"), r#""7512045450401153075""#), Some(&audit), 5).unwrap();
        assert_eq!((review.connector_id, review.bot_id.as_str()), (9, "7512045450401153075"));
        assert_eq!((review.audit_status, review.reason.as_deref()), (3, Some("no")));
        assert_eq!(
            (review.share_link.as_deref(), review.event_id.as_deref()),
            (Some("https://s"), Some("e-1"))
        );
        assert_eq!((review.source, review.at), (ReviewSource::Answer, 5));
        let numeric = answered_review(&body(Some("9"), "7512045450401153075"), None, 5).unwrap();
        assert_eq!((numeric.bot_id.as_str(), numeric.audit_status), ("7512045450401153075", NO_REVIEW));
        assert_eq!(answered_review(&body(None, r#""1""#), None, 5), None, "normal apps have no connector");
        for bad in [r#""""#, "1.5", "null", "{}"] {
            assert_eq!(answered_review(&body(Some("9"), bad), None, 5), None, "{bad}");
        }
        assert_eq!(answered_review(b"not json", None, 5), None);
        let test = br#"{"header":{"event_id":"e-1","connector_id":"9","test":true},"event":{"bot_id":"1"}}"#;
        assert_eq!(answered_review(test, None, 5), None, "a test event's sample bot is not reviewed");
    }

    #[test]
    fn updates_need_a_status_and_a_reason_to_reject() {
        assert_eq!(validate_update(Some(2), None).unwrap(), (2, None));
        assert_eq!(validate_update(Some(1), Some("  ".into())).unwrap(), (1, None));
        assert_eq!(validate_update(Some(3), Some(" bad ".into())).unwrap(), (3, Some("bad".into())));
        for (status, reason) in
            [(None, None), (Some(0), None), (Some(4), None), (Some(3), None), (Some(3), Some(" "))]
        {
            let err = validate_update(status, reason.map(str::to_owned)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "{status:?} {reason:?}");
        }
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(validate_update(Some(3), Some(long)).unwrap_err().msg.contains("at most 1024"));
    }

    #[test]
    fn creators_and_team_admins_may_update() {
        let caller = |edition, role, user_id| Caller {
            user_id,
            account_id: 1,
            edition,
            role,
            plugin_developer: false,
            token_id: 1,
            permissions: Permission::ALL.to_vec(),
        };
        let connector = Ownership { account_id: 1, owner_id: 10 };
        let code = |c: &Caller, o| may_update_review(c, 5, Some(o)).err().map(|e| e.kind);
        let mut lacking = caller(Edition::Personal, Role::Member, 10);
        lacking.permissions.retain(|p| *p != UPDATE_REVIEW_PERMISSION);
        assert_eq!(code(&lacking, connector), Some(ErrorKind::Forbidden));
        assert_eq!(code(&caller(Edition::Personal, Role::Member, 10), connector), None);
        assert_eq!(code(&caller(Edition::Enterprise, Role::Member, 10), connector), None);
        assert_eq!(code(&caller(Edition::Team, Role::Admin, 11), connector), None);
        assert_eq!(code(&caller(Edition::Enterprise, Role::SuperAdmin, 11), connector), None);
        assert_eq!(
            code(&caller(Edition::Personal, Role::SuperAdmin, 11), connector),
            Some(ErrorKind::Forbidden)
        );
        assert_eq!(code(&caller(Edition::Team, Role::Member, 11), connector), Some(ErrorKind::Forbidden));
        let foreign = Ownership { account_id: 2, owner_id: 10 };
        assert_eq!(code(&caller(Edition::Team, Role::Admin, 10), foreign), Some(ErrorKind::NotFound));
        let missing = may_update_review(&caller(Edition::Team, Role::Admin, 10), 5, None).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        let lacking_and_missing = may_update_review(&lacking, 5, None).unwrap_err();
        assert_eq!(lacking_and_missing.kind, ErrorKind::Forbidden, "the permission is checked first");
    }
}
