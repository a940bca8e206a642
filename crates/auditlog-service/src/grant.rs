//! Who may do what, decided once: each decision returns a grant that only this module can
//! make, and every read of an organization's log takes one ([`crate::read`]). A handler that
//! has not been authorized has nothing to pass, so "forgot to check" does not compile.
//!
//! - [`ReadableOrg`]: the holder may read, export and administer one organization's audit
//!   log. Made by [`Service::authorize_read`] (API credentials), [`Service::authorize_viewer`]
//!   (a signed-in user on the page) and [`Service::operator_org`] (the command line).
//! - [`MemberOf`]: a user belongs to an organization, in any role; enough to manage their own
//!   API tokens. Made by [`Service::authorize_member`] and [`Service::member`].
//! - [`SignedIn`]: a live browser session and its user. Made by [`Service::session_user`].
//! - [`Operator`]: the operator at the command line, who may act on every organization.

use std::ops::Deref;

use auditlog_store::{Credential, Org, Role, StoreError, User};

use crate::access::{AccessError, Principal};
use crate::Service;
use auditlog_core::Outcome;

/// An organization whose audit log the holder may read and export. Only the service makes
/// one, after deciding so; it reads as the [`Org`] it stands for.
#[derive(Debug, Clone)]
pub struct ReadableOrg {
    org: Org,
}

impl ReadableOrg {
    /// The grant for work the service authorized earlier: an export job runs long after the
    /// request that was allowed to submit it.
    pub(crate) fn authorized_before(org: Org) -> ReadableOrg {
        ReadableOrg { org }
    }

    /// The organization.
    pub fn org(&self) -> &Org {
        &self.org
    }
}

impl Deref for ReadableOrg {
    type Target = Org;

    fn deref(&self) -> &Org {
        &self.org
    }
}

/// A user's membership of an organization, in any role.
#[derive(Debug, Clone)]
pub struct MemberOf {
    org: Org,
    user: User,
    role: Role,
}

impl MemberOf {
    /// The organization.
    pub fn org(&self) -> &Org {
        &self.org
    }

    /// The member.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// Their role.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// A live browser session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SignedIn {
    user: User,
    credential: Credential,
}

impl SignedIn {
    /// The signed-in user.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The session's credential.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

/// The operator at the command line: whoever can run the binary against the data directory
/// or database already holds every row, so the operator may act on every organization,
/// enrolled or not. The server never makes one (a test of the server crate checks).
#[derive(Debug)]
pub struct Operator {
    _private: (),
}

impl Operator {
    /// The capability of the binary's operator subcommands (and of tests standing in for
    /// them).
    pub fn at_the_command_line() -> Operator {
        Operator { _private: () }
    }
}

/// Why a signed-in user may not open an organization on the page.
#[derive(Debug, thiserror::Error)]
pub enum ViewerRefused {
    /// No such organization, or the user is not a member: the same answer, so that a
    /// non-member learns nothing about which organizations exist.
    #[error("not a member of an organization by that name")]
    NotMember,
    /// A member, but only administrators may read the audit log.
    #[error("only administrators of {display_name} may read its audit log")]
    NotAdmin {
        /// The organization's display name (the member may know it).
        display_name: String,
    },
    /// The organization is not enrolled in the early-access program.
    #[error("{display_name} is not enrolled in audit logs")]
    NotEnrolled {
        /// The organization's display name.
        display_name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Service {
    /// Resolves the organization a request names and checks that `principal` may read (and
    /// export) its audit log: an admin of it, or one of its service accounts, and the
    /// organization enrolled. A credential bound to one organization gets the same 403 for
    /// every other organization, existing or not.
    pub async fn authorize_read(
        &self,
        principal: &Principal,
        org_name: Option<&str>,
    ) -> Result<ReadableOrg, AccessError> {
        let bound_org = match principal {
            Principal::Ingest { .. } => {
                return Err(AccessError::Forbidden(
                    "ingest keys may only write events".into(),
                ));
            }
            Principal::User { credential, .. } | Principal::ServiceAccount { credential, .. } => {
                credential.org_id
            }
        };
        let org = match (org_name, bound_org) {
            (Some(name), _) => self.store().find_org(name).await?,
            (None, Some(org_id)) => self.store().find_org(&org_id.to_string()).await?,
            (None, None) => {
                return Err(AccessError::Forbidden(
                    "name the organization in the X-Org-Name header".into(),
                ))
            }
        };
        let org = match org {
            Some(org) => org,
            None if bound_org.is_some() => return Err(foreign(org_name.unwrap_or_default())),
            None => {
                return Err(AccessError::UnknownOrg(
                    org_name.unwrap_or_default().to_string(),
                ))
            }
        };
        if bound_org.is_some_and(|bound| bound != org.id) {
            self.record_denied_read(&org, principal.actor(), false)
                .await;
            return Err(foreign(&org.name));
        }
        if let Principal::User { user, .. } = principal {
            match self.store().role_of(org.id, user.id).await? {
                Some(Role::Admin) => {}
                Some(Role::Member) => {
                    self.record_denied_read(&org, principal.actor(), true).await;
                    return Err(AccessError::Forbidden(format!(
                        "only administrators of {:?} may read its audit log",
                        org.name
                    )));
                }
                None => {
                    self.record_denied_read(&org, principal.actor(), false)
                        .await;
                    return Err(foreign(&org.name));
                }
            }
        }
        if !org.audit_logs_enabled {
            return Err(AccessError::NotEnrolled(org.name));
        }
        Ok(ReadableOrg { org })
    }

    /// The same rule for a signed-in user on the page: an admin of the named organization,
    /// the organization enrolled.
    pub async fn authorize_viewer(
        &self,
        viewer: &SignedIn,
        org_name: &str,
    ) -> Result<ReadableOrg, ViewerRefused> {
        let member = self.authorize_member(viewer, org_name).await?;
        if member.role != Role::Admin {
            let actor = crate::access::Actor::user(&viewer.user);
            self.record_denied_read(&member.org, actor, true).await;
            return Err(ViewerRefused::NotAdmin {
                display_name: member.org.display_name,
            });
        }
        if !member.org.audit_logs_enabled {
            return Err(ViewerRefused::NotEnrolled {
                display_name: member.org.display_name,
            });
        }
        Ok(ReadableOrg { org: member.org })
    }

    /// A signed-in user's membership of the named organization, in any role.
    pub async fn authorize_member(
        &self,
        viewer: &SignedIn,
        org_name: &str,
    ) -> Result<MemberOf, ViewerRefused> {
        let Some(org) = self.store().find_org(org_name).await? else {
            return Err(ViewerRefused::NotMember);
        };
        match self.store().role_of(org.id, viewer.user.id).await? {
            Some(role) => Ok(MemberOf {
                org,
                user: viewer.user.clone(),
                role,
            }),
            None => Err(ViewerRefused::NotMember),
        }
    }

    /// The user of a live browser session.
    pub async fn session_user(&self, token: &str) -> Result<SignedIn, AccessError> {
        match self.authenticate(token).await? {
            Principal::User {
                user, credential, ..
            } if credential.kind == auditlog_store::CredentialKind::Session => {
                Ok(SignedIn { user, credential })
            }
            _ => Err(AccessError::Unauthenticated("not a session")),
        }
    }

    /// The organizations a signed-in user belongs to, with their role in each.
    pub async fn memberships(&self, viewer: &SignedIn) -> Result<Vec<(Org, Role)>, StoreError> {
        self.store().memberships(viewer.user.id).await
    }

    /// The organization named `name_or_id`, for the operator; `None` when there is none.
    pub async fn operator_org(
        &self,
        _operator: &Operator,
        name_or_id: &str,
    ) -> Result<Option<ReadableOrg>, StoreError> {
        Ok(self
            .store()
            .find_org(name_or_id)
            .await?
            .map(|org| ReadableOrg { org }))
    }

    /// Every organization, for the operator.
    pub async fn operator_orgs(
        &self,
        _operator: &Operator,
    ) -> Result<Vec<ReadableOrg>, StoreError> {
        Ok(self
            .store()
            .list_orgs()
            .await?
            .into_iter()
            .map(|org| ReadableOrg { org })
            .collect())
    }

    /// The member of `org` with this email or id; `None` when there is no such user or they
    /// are not a member.
    pub async fn member(
        &self,
        org: &ReadableOrg,
        email_or_id: &str,
    ) -> Result<Option<MemberOf>, StoreError> {
        let Some(user) = self.store().find_user(email_or_id).await? else {
            return Ok(None);
        };
        Ok(self
            .store()
            .role_of(org.id, user.id)
            .await?
            .map(|role| MemberOf {
                org: org.org.clone(),
                user,
                role,
            }))
    }
}

/// The refusal a credential bound to one organization gets for any other.
impl Service {
    /// Records in `org` that `actor` was refused its audit log, through the API or on the
    /// page (`audit_log_access_denied`, outcome `denied`). Someone from outside the
    /// organization (`member` false) is recorded by id and kind only: their name and email
    /// belong to another organization.
    async fn record_denied_read(&self, org: &Org, mut actor: crate::access::Actor, member: bool) {
        if !member {
            actor.email = None;
            actor.name = None;
        }
        let reason = match member {
            true => "only administrators may read the audit log",
            false => "the credential belongs to another organization",
        };
        let target = crate::access::Target::org(org);
        self.record_attempt(
            org,
            &actor,
            "audit_log_access_denied",
            target,
            Outcome::Denied,
            reason,
        )
        .await;
    }
}

pub(crate) fn foreign(name: &str) -> AccessError {
    AccessError::Forbidden(format!(
        "this credential has no access to organization {name:?}"
    ))
}
