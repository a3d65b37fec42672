//! Authorization seam: every request is checked by an [`Authorizer`] after
//! authentication. Today's only policy allows every authenticated user;
//! RBAC plugs in here later.

use crate::authn::User;

/// What a request wants to do, in RBAC's terms.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub user: &'a User,
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// For non-resource requests (`/healthz`, `/version`).
    pub path: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the reason shown in the 403 message.
    Deny(String),
}

pub trait Authorizer: Send + Sync {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision;
}

/// Allows every authenticated user (anonymous requests never get here).
#[derive(Debug, Default)]
pub struct AllowAuthenticated;

impl Authorizer for AllowAuthenticated {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if attrs
            .user
            .groups
            .iter()
            .any(|g| g == "system:authenticated")
        {
            Decision::Allow
        } else {
            Decision::Deny(format!("user {:?} is not authenticated", attrs.user.name))
        }
    }
}
