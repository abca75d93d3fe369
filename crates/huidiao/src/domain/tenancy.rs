//! Accounts, roles, permissions, and who may do what (coze-callbacks.md §2).

use serde::{Deserialize, Serialize};

use crate::domain::error::DomainError;

/// The edition of an account. Team behaves like enterprise for callbacks [Coze].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    Personal,
    Team,
    Enterprise,
}

/// A user's role within an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SuperAdmin,
    Admin,
    Member,
}

/// A permission a personal access token may carry [Coze names].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Permission {
    #[serde(rename = "createApiApp")]
    CreateApiApp,
    #[serde(rename = "updateApiApp")]
    UpdateApiApp,
    #[serde(rename = "listApiApp")]
    ListApiApp,
    #[serde(rename = "deleteApiApp")]
    DeleteApiApp,
    #[serde(rename = "subscribeApiAppEvent")]
    SubscribeApiAppEvent,
    #[serde(rename = "unsubscribeApiAppEvent")]
    UnsubscribeApiAppEvent,
}

string_enum!(Edition { Personal => "personal", Team => "team", Enterprise => "enterprise" });
string_enum!(Role { SuperAdmin => "super_admin", Admin => "admin", Member => "member" });
string_enum!(Permission {
    CreateApiApp => "createApiApp",
    UpdateApiApp => "updateApiApp",
    ListApiApp => "listApiApp",
    DeleteApiApp => "deleteApiApp",
    SubscribeApiAppEvent => "subscribeApiAppEvent",
    UnsubscribeApiAppEvent => "unsubscribeApiAppEvent",
});

/// The authenticated user behind a personal access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub account_id: i64,
    pub edition: Edition,
    pub role: Role,
    /// Marked by the operator; see `eligibility::check_eligible`.
    pub plugin_developer: bool,
    pub token_id: i64,
    pub permissions: Vec<Permission>,
}

/// What an owner-scoped resource (an app) needs for visibility checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    pub account_id: i64,
    pub owner_id: i64,
}

/// Whose apps a caller works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Personal edition: only the caller's own apps.
    OwnedBy { account_id: i64, user_id: i64 },
    /// Enterprise or team admins: every app of the account.
    Account(i64),
}

impl Caller {
    /// The token must carry `permission`, and in a team or enterprise account the caller must be
    /// an admin (§2: every endpoint there is "super_admin / admin only"). Answers 4101 otherwise.
    /// In a personal account the role does not matter: each user works on their own apps.
    pub fn authorize(&self, permission: Permission) -> Result<Scope, DomainError> {
        self.require(permission)?;
        match self.edition {
            Edition::Personal => Ok(Scope::OwnedBy { account_id: self.account_id, user_id: self.user_id }),
            Edition::Team | Edition::Enterprise => match self.role {
                Role::SuperAdmin | Role::Admin => Ok(Scope::Account(self.account_id)),
                Role::Member => Err(DomainError::forbidden(format!(
                    "in a {} account only super_admin and admin users may manage callback apps; this user is a member",
                    self.edition
                ))),
            },
        }
    }
}

impl Caller {
    /// The token must carry `permission` (4101 otherwise), whatever the caller's role.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        if self.permissions.contains(&permission) {
            Ok(())
        } else {
            Err(DomainError::forbidden(format!(
                "this token lacks the permission {permission}; issue a token that carries it"
            )))
        }
    }
}

impl Scope {
    /// Whether a resource is visible in this scope. Invisible resources answer 4200, exactly as
    /// missing ones, so that another tenant's ids are never revealed.
    pub fn sees(self, resource: Ownership) -> bool {
        match self {
            Scope::OwnedBy { account_id, user_id } => {
                resource.account_id == account_id && resource.owner_id == user_id
            }
            Scope::Account(account_id) => resource.account_id == account_id,
        }
    }
}

/// Who may create a connector app for a connector (§2): in a personal account only the
/// connector's creator; in a team or enterprise account any admin of the connector's account.
/// A connector of another account is invisible (4200).
pub fn may_use_connector(scope: Scope, caller_account: i64, connector: Ownership) -> Result<(), DomainError> {
    if connector.account_id != caller_account {
        return Err(DomainError::not_found("connector not found"));
    }
    if scope.sees(connector) {
        Ok(())
    } else {
        Err(DomainError::forbidden(
            "in a personal account only the connector's creator may create its connector app",
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub edition: Edition,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    /// Marked by the operator; only plugin developers may subscribe to `benefit.plugin.scale.*`.
    pub plugin_developer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    pub id: i64,
    pub account_id: i64,
    pub creator_id: i64,
    pub name: String,
    pub created_at: i64,
}

impl Connector {
    pub fn ownership(&self) -> Ownership {
        Ownership { account_id: self.account_id, owner_id: self.creator_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    fn caller(edition: Edition, role: Role, permissions: &[Permission]) -> Caller {
        Caller {
            user_id: 10,
            account_id: 1,
            edition,
            role,
            plugin_developer: false,
            token_id: 99,
            permissions: permissions.to_vec(),
        }
    }

    #[test]
    fn permission_is_required() {
        let c = caller(Edition::Personal, Role::Member, &[Permission::ListApiApp]);
        assert!(c.authorize(Permission::ListApiApp).is_ok());
        assert_eq!(c.authorize(Permission::CreateApiApp).unwrap_err().kind, ErrorKind::Forbidden);
    }

    #[test]
    fn personal_sees_own_apps_only() {
        let c = caller(Edition::Personal, Role::Member, Permission::ALL);
        let scope = c.authorize(Permission::UpdateApiApp).unwrap();
        assert!(scope.sees(Ownership { account_id: 1, owner_id: 10 }));
        assert!(!scope.sees(Ownership { account_id: 1, owner_id: 11 }));
        assert!(!scope.sees(Ownership { account_id: 2, owner_id: 10 }));
    }

    #[test]
    fn enterprise_admins_see_the_account_and_members_are_refused() {
        for edition in [Edition::Team, Edition::Enterprise] {
            for role in [Role::SuperAdmin, Role::Admin] {
                let scope = caller(edition, role, Permission::ALL).authorize(Permission::ListApiApp).unwrap();
                assert!(scope.sees(Ownership { account_id: 1, owner_id: 77 }));
                assert!(!scope.sees(Ownership { account_id: 2, owner_id: 10 }));
            }
            let err =
                caller(edition, Role::Member, Permission::ALL).authorize(Permission::ListApiApp).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Forbidden);
        }
    }

    #[test]
    fn connector_rules() {
        let personal = Scope::OwnedBy { account_id: 1, user_id: 10 };
        let mine = Ownership { account_id: 1, owner_id: 10 };
        let colleague = Ownership { account_id: 1, owner_id: 11 };
        let foreign = Ownership { account_id: 2, owner_id: 10 };
        assert!(may_use_connector(personal, 1, mine).is_ok());
        assert_eq!(may_use_connector(personal, 1, colleague).unwrap_err().kind, ErrorKind::Forbidden);
        assert_eq!(may_use_connector(personal, 1, foreign).unwrap_err().kind, ErrorKind::NotFound);
        assert!(may_use_connector(Scope::Account(1), 1, colleague).is_ok());
        assert_eq!(may_use_connector(Scope::Account(1), 1, foreign).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert_eq!("super_admin".parse::<Role>(), Ok(Role::SuperAdmin));
        assert_eq!("team".parse::<Edition>(), Ok(Edition::Team));
        assert!("owner".parse::<Role>().is_err());
    }
}
