//! Identities and what they may do: secret tokens, the principal a bearer token stands for,
//! the checks that decide whether it may read or write an organization's log, and the
//! administrative actions (users, roles, service accounts, tokens) that are themselves recorded
//! in the organization's log with `service_name: "auditlog"`.

use std::collections::HashMap;
use std::net::IpAddr;

use auditlog_core::validate::{check_display_name, check_email_address, validate, FieldError};
use auditlog_core::{ActorType, FieldChange, NewEvent, Outcome, Timestamp};
use auditlog_store::{
    Append, Applied, Change, Changed, Credential, CredentialKind, Org, Recorder, Role,
    ServiceAccount, StoreError, User,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::grant::{MemberOf, ReadableOrg, SignedIn};
use crate::Service;

/// The `service_name` of events the service records about itself.
pub const SERVICE_NAME: &str = "auditlog";
/// How long an access token from `POST /api/iam/token` lives.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;

/// A new random secret with a readable prefix that says what it is (`al_ingest_…`).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a secret: what the store keeps instead of the secret.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two hashes without an early exit, so the time taken says nothing about where
/// they differ.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Who performed an administrative action, as recorded in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// Id of the user or service account.
    pub id: Option<String>,
    /// Email of the user.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Kind of actor.
    pub kind: ActorType,
    /// Client address of the request.
    pub ip_address: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
}

impl Actor {
    /// How the actor is named where one line of text is kept (who requested an export, who
    /// placed a hold): the email, else the name, else the id.
    pub fn label(&self) -> String {
        self.email
            .clone()
            .or_else(|| self.name.clone())
            .or_else(|| self.id.clone())
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// The operator at the command line.
    pub fn operator() -> Actor {
        Actor {
            id: None,
            email: None,
            name: Some("auditlog operator".into()),
            kind: ActorType::System,
            ip_address: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// auditlog itself, acting on its own (an export job that failed).
    pub fn auditlog() -> Actor {
        Actor {
            id: None,
            email: None,
            name: Some(SERVICE_NAME.into()),
            kind: ActorType::System,
            ip_address: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// A user.
    pub fn user(user: &User) -> Actor {
        Actor {
            id: Some(user.id.to_string()),
            email: Some(user.email.clone()),
            name: Some(user.display_name.clone()),
            kind: ActorType::User,
            ip_address: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// A service account.
    pub fn service_account(account: &ServiceAccount) -> Actor {
        Actor {
            id: Some(account.id.to_string()),
            email: None,
            name: Some(account.name.clone()),
            kind: ActorType::ServiceAccount,
            ip_address: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// The same actor seen through a request.
    pub fn with_request(
        mut self,
        ip: Option<IpAddr>,
        user_agent: Option<String>,
        request_id: Option<String>,
    ) -> Actor {
        self.ip_address = ip;
        self.user_agent = user_agent.map(|ua| {
            ua.chars()
                .take(auditlog_core::validate::MAX_USER_AGENT)
                .collect()
        });
        self.request_id =
            request_id.map(|id| id.chars().take(auditlog_core::validate::MAX_ID).collect());
        self
    }
}

/// What a record of the service's own action is about.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Id.
    pub id: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// The identity a bearer credential stands for. Only [`Service::authenticate`] makes one
/// (each variant carries a [`Sealed`]), so what the grants decide on cannot be made up.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user, through a personal API token or a browser session.
    User {
        /// The user.
        user: User,
        /// The credential used.
        credential: Credential,
        /// Made by authentication only.
        sealed: Sealed,
    },
    /// A service account, through an access token.
    ServiceAccount {
        /// The account.
        account: ServiceAccount,
        /// The access token used.
        credential: Credential,
        /// Made by authentication only.
        sealed: Sealed,
    },
    /// A platform's ingest key.
    Ingest {
        /// The key.
        credential: Credential,
        /// Made by authentication only.
        sealed: Sealed,
    },
}

/// How long an authenticated credential is trusted without reading it again. Every change to
/// credentials, service accounts and roles made through this service forgets them all at
/// once; a change made by another process (the CLI, another replica) takes effect within
/// this time. Authentication is one to three store reads on every request, and this is what
/// keeps it off the path of a busy client.
pub const PRINCIPAL_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Most principals kept; beyond it the cache starts over.
const MAX_CACHED_PRINCIPALS: usize = 10_000;

/// Recently authenticated principals by their token's hash (see [`PRINCIPAL_TTL`]).
#[derive(Default)]
pub(crate) struct PrincipalCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, std::time::Instant)>>,
}

impl PrincipalCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Principal> {
        let entries = self.entries.lock().expect("lock");
        let (principal, at) = entries.get(hash)?;
        let live = at.elapsed() < PRINCIPAL_TTL
            && principal.credential().revoked_at.is_none()
            && principal.credential().is_live(Timestamp::now());
        live.then(|| principal.clone())
    }

    fn put(&self, hash: [u8; 32], principal: &Principal) {
        let mut entries = self.entries.lock().expect("lock");
        if entries.len() >= MAX_CACHED_PRINCIPALS {
            entries.clear();
        }
        entries.insert(hash, (principal.clone(), std::time::Instant::now()));
    }

    /// Forgets every principal: called after any change that could withdraw one.
    pub(crate) fn forget(&self) {
        self.entries.lock().expect("lock").clear();
    }
}

/// A value only this crate can make: a field of that type keeps a [`Principal`] from being
/// built anywhere but in authentication.
#[derive(Debug, Clone)]
pub struct Sealed(());

impl Principal {
    /// The credential used.
    pub fn credential(&self) -> &Credential {
        match self {
            Principal::User { credential, .. }
            | Principal::ServiceAccount { credential, .. }
            | Principal::Ingest { credential, .. } => credential,
        }
    }

    /// The actor to record for this principal's actions.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::User { user, .. } => Actor::user(user),
            Principal::ServiceAccount { account, .. } => Actor::service_account(account),
            Principal::Ingest { credential, .. } => Actor {
                id: Some(credential.id.to_string()),
                email: None,
                name: Some(credential.name.clone()),
                kind: ActorType::System,
                ip_address: None,
                user_agent: None,
                request_id: None,
            },
        }
    }
}

/// Why a request may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No credential, or one that is unknown, expired or revoked (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A valid credential without the right to do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The organization is not enrolled in the early-access program (403).
    #[error("audit logs are in early access and organization {0:?} is not enrolled; ask your account team to enable them")]
    NotEnrolled(String),
    /// A value given for an account (an email, a name) breaks its rule (422); the error
    /// names the field.
    #[error("{0}")]
    Invalid(FieldError),
    /// The organization does not exist (404).
    #[error("no organization is named {0:?}")]
    UnknownOrg(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::IngestError> for AccessError {
    /// An administrative change's error, for callers that answer with an [`AccessError`].
    fn from(error: crate::IngestError) -> AccessError {
        match error {
            crate::IngestError::Refused(e) => e,
            crate::IngestError::Store(e) => AccessError::Store(e),
            crate::IngestError::Invalid(mut errors) => AccessError::Invalid(errors.remove(0).error),
            e @ crate::IngestError::TooLarge(_) => {
                AccessError::Store(StoreError::Unrecorded(e.to_string()))
            }
        }
    }
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The current password given is not the user's.
    #[error("the current password is wrong")]
    WrongCurrent,
    /// The new password is too short or too long; the message says which.
    #[error("{0}")]
    Unacceptable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Service {
    /// Resolves a bearer token to its principal, or says why it cannot be used.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AccessError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AccessError::Unauthenticated(
                "the bearer token is malformed",
            ));
        }
        let hash = secret_hash(token);
        if let Some(principal) = self.principals.get(&hash) {
            return Ok(principal);
        }
        let principal = self.authenticate_uncached(hash).await?;
        self.principals.put(hash, &principal);
        Ok(principal)
    }

    /// [`Service::authenticate`] from the store.
    async fn authenticate_uncached(&self, hash: [u8; 32]) -> Result<Principal, AccessError> {
        let credential = self
            .store()
            .credential_by_hash(hash)
            .await?
            .filter(|c| constant_time_eq(&c.token_hash, &hash))
            .ok_or(AccessError::Unauthenticated(
                "the bearer token is not valid",
            ))?;
        if credential.revoked_at.is_some() {
            return Err(AccessError::Unauthenticated("the bearer token was revoked"));
        }
        if !credential.is_live(Timestamp::now()) {
            return Err(AccessError::Unauthenticated("the bearer token has expired"));
        }
        match credential.kind {
            CredentialKind::Ingest => Ok(Principal::Ingest {
                credential,
                sealed: Sealed(()),
            }),
            CredentialKind::SignInLink => Err(AccessError::Unauthenticated(
                "a sign-in link is not a bearer token",
            )),
            CredentialKind::ApiToken | CredentialKind::Session => {
                let user_id = credential.user_id.ok_or(AccessError::Unauthenticated(
                    "the bearer token is not valid",
                ))?;
                let user = self.store().find_user(&user_id.to_string()).await?.ok_or(
                    AccessError::Unauthenticated("the token's user no longer exists"),
                )?;
                Ok(Principal::User {
                    user,
                    credential,
                    sealed: Sealed(()),
                })
            }
            CredentialKind::AccessToken => {
                let account_id =
                    credential
                        .service_account_id
                        .ok_or(AccessError::Unauthenticated(
                            "the bearer token is not valid",
                        ))?;
                let org_id = credential.org_id.ok_or(AccessError::Unauthenticated(
                    "the bearer token is not valid",
                ))?;
                let account = self
                    .store()
                    .service_accounts(org_id)
                    .await?
                    .into_iter()
                    .find(|a| a.id == account_id)
                    .ok_or(AccessError::Unauthenticated(
                        "the token's service account was deleted",
                    ))?;
                Ok(Principal::ServiceAccount {
                    account,
                    credential,
                    sealed: Sealed(()),
                })
            }
        }
    }

    /// Records one of the service's own actions in the organization's log.
    pub async fn record(
        &self,
        org: &Org,
        actor: &Actor,
        action_key: &'static str,
        target: Target,
        meta: Map<String, Value>,
    ) -> Result<(), crate::IngestError> {
        let record = OwnRecord::new(org, actor, action_key, target, meta);
        self.apply_recorded(Vec::new(), move |_| vec![record])
            .await?;
        Ok(())
    }

    /// Applies `changes` and appends the records `records` makes from what they did, in one
    /// store transaction: the change and its audit record are stored together or not at all.
    /// A record the log refuses (it fails validation) undoes the change, answering
    /// [`StoreError::Unrecorded`]: the service fails closed. Records are validated against
    /// the catalog with the service's own actions (`Catalog::with_own_actions`), so a
    /// deployment whose catalog lacks them (the self-hosted preset) records them too.
    pub(crate) async fn apply_recorded(
        &self,
        changes: Vec<Change>,
        records: impl FnOnce(&[Changed]) -> Vec<OwnRecord> + Send + 'static,
    ) -> Result<Applied, StoreError> {
        let catalog = self.own_catalog.clone();
        let personal_meta = self.personal_meta.clone();
        let redaction = self.redaction.clone();
        let recorder: Recorder = Box::new(move |changed| {
            let now = Timestamp::now();
            let mut batch = Vec::new();
            for record in records(changed) {
                let org_id = record.org_id;
                let action_key = record.action_key;
                let mut body = validate(record.into_event(), &catalog, now).map_err(|errors| {
                    let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    format!("{action_key}: {}", reasons.join("; "))
                })?;
                redaction.apply(&mut body);
                crate::mark_personal_meta(&personal_meta, &mut body);
                batch.push(Append { org_id, body });
            }
            Ok(batch)
        });
        let applied = self.store().apply(changes, Some(recorder)).await;
        if let Err(StoreError::Unrecorded(reason)) = &applied {
            self.unrecorded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(%reason, "an action was refused: its audit record could not be made");
        }
        applied
    }

    /// Creates a user (or finds the existing one) and gives them `role` in `org`, recording
    /// `organization_user_added` or `organization_user_updated`.
    pub async fn add_user(
        &self,
        org: &Org,
        email: &str,
        display_name: Option<&str>,
        role: Role,
        actor: &Actor,
    ) -> Result<User, crate::IngestError> {
        self.add_user_with(org, email, display_name, role, actor, |_| Vec::new())
            .await
    }

    /// [`Service::add_user`], with `also` applied in the same transaction (a sign-in link
    /// for the user, say): none of it happens unless all of it does.
    async fn add_user_with(
        &self,
        org: &Org,
        email: &str,
        display_name: Option<&str>,
        role: Role,
        actor: &Actor,
        also: impl FnOnce(&User) -> Vec<Change>,
    ) -> Result<User, crate::IngestError> {
        check_email_address("email", email).map_err(invalid)?;
        let display_name = display_name.unwrap_or(email);
        check_display_name("display_name", display_name).map_err(invalid)?;
        let (user, mut changes) = match self.store().find_user(email).await? {
            Some(user) => (user, Vec::new()),
            None => {
                let user = User {
                    id: Uuid::now_v7(),
                    email: email.to_lowercase(),
                    display_name: display_name.to_string(),
                    password_hash: None,
                    created_at: Timestamp::now(),
                };
                (user.clone(), vec![Change::CreateUser(user)])
            }
        };
        changes.push(Change::SetRole {
            org_id: org.id,
            user_id: user.id,
            role: Some(role),
        });
        changes.extend(also(&user));
        let target = Target::user(&user);
        let (org, actor) = (org.clone(), actor.clone());
        self.apply_recorded(changes, move |changed| {
            let record = |action_key, meta| OwnRecord::new(&org, &actor, action_key, target, meta);
            match role_before(changed) {
                None => vec![record(
                    "organization_user_added",
                    meta(json!({"role": role.as_str()})),
                )],
                Some(previous) if previous != role => vec![record(
                    "organization_user_updated",
                    meta(json!({"previous_role": previous.as_str(), "new_role": role.as_str()})),
                )
                .with_changes(vec![FieldChange {
                    field: "role".to_string(),
                    before: Some(previous.as_str().into()),
                    after: Some(role.as_str().into()),
                }])],
                Some(_) => Vec::new(),
            }
        })
        .await?;
        self.principals.forget();
        Ok(user)
    }

    /// Removes a user from an organization, recording `organization_user_removed`.
    pub async fn remove_user(
        &self,
        org: &ReadableOrg,
        user: &User,
        actor: &Actor,
    ) -> Result<bool, crate::IngestError> {
        let change = Change::SetRole {
            org_id: org.id,
            user_id: user.id,
            role: None,
        };
        let target = Target::user(user);
        let (org, actor) = (org.org().clone(), actor.clone());
        let applied = self
            .apply_recorded(vec![change], move |changed| {
                role_before(changed)
                    .map(|role| {
                        let meta = meta(json!({"role": role.as_str()}));
                        OwnRecord::new(&org, &actor, "organization_user_removed", target, meta)
                    })
                    .into_iter()
                    .collect()
            })
            .await?;
        self.principals.forget();
        Ok(role_before(&applied.changed).is_some())
    }

    /// Creates a service account of `org`; returns it with its client secret, which is shown
    /// once and stored only as a hash. Records `service_account_created`.
    pub async fn create_service_account(
        &self,
        org: &ReadableOrg,
        name: &str,
        actor: &Actor,
    ) -> Result<(ServiceAccount, String), crate::IngestError> {
        check_display_name("name", name).map_err(invalid)?;
        let secret = new_secret("al_secret");
        let account = ServiceAccount {
            id: Uuid::now_v7(),
            org_id: org.id,
            name: name.to_string(),
            client_id: format!("al_client_{}", Uuid::new_v4().simple()),
            secret_hash: secret_hash(&secret),
            created_at: Timestamp::now(),
        };
        let change = Change::CreateServiceAccount(account.clone());
        self.apply_recorded(vec![change], {
            let (org, actor, account) = (org.org().clone(), actor.clone(), account.clone());
            move |_| {
                let meta = meta(json!({"client_id": account.client_id}));
                let target = Target::service_account(&account);
                vec![OwnRecord::new(
                    &org,
                    &actor,
                    "service_account_created",
                    target,
                    meta,
                )]
            }
        })
        .await?;
        Ok((account, secret))
    }

    /// Renames a service account, recording `service_account_updated`.
    pub async fn rename_service_account(
        &self,
        org: &ReadableOrg,
        id: Uuid,
        name: &str,
        actor: &Actor,
    ) -> Result<Option<ServiceAccount>, crate::IngestError> {
        check_display_name("name", name).map_err(invalid)?;
        let change = Change::RenameServiceAccount {
            org_id: org.id,
            id,
            name: name.to_string(),
        };
        let meta = meta(json!({ "name": name }));
        let account = self
            .change_service_account(org, change, actor, "service_account_updated", meta)
            .await?;
        // Its tokens' principals carry the old name.
        self.principals.forget();
        Ok(account)
    }

    /// Deletes a service account (its access tokens stop working), recording
    /// `service_account_deleted`.
    pub async fn delete_service_account(
        &self,
        org: &ReadableOrg,
        id: Uuid,
        actor: &Actor,
    ) -> Result<Option<ServiceAccount>, crate::IngestError> {
        let change = Change::DeleteServiceAccount {
            org_id: org.id,
            id,
            at: Timestamp::now(),
        };
        let account = self
            .change_service_account(org, change, actor, "service_account_deleted", Map::new())
            .await?;
        // Its access tokens were revoked with it.
        self.principals.forget();
        Ok(account)
    }

    /// Changes an existing service account, recording `action_key` when there was one.
    async fn change_service_account(
        &self,
        org: &ReadableOrg,
        change: Change,
        actor: &Actor,
        action_key: &'static str,
        meta: Map<String, Value>,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let (org, actor) = (org.org().clone(), actor.clone());
        let applied = self
            .apply_recorded(vec![change], move |changed| {
                changed_account(changed)
                    .map(|account| {
                        let target = Target::service_account(&account);
                        OwnRecord::new(&org, &actor, action_key, target, meta)
                    })
                    .into_iter()
                    .collect()
            })
            .await?;
        Ok(changed_account(&applied.changed))
    }

    /// Trades a service account's client credentials for a 15-minute access token, recording
    /// `authentication_success`. Unknown client id and wrong secret fail alike.
    pub async fn exchange_client_credentials(
        &self,
        client_id: &str,
        client_secret: &str,
        actor_context: Actor,
    ) -> Result<(String, i64), AccessError> {
        let denied = || AccessError::Unauthenticated("invalid client credentials");
        if client_id.len() > 128 || client_secret.len() > 256 {
            return Err(denied());
        }
        let account = self.store().service_account_by_client_id(client_id).await?;
        let offered = secret_hash(client_secret);
        let Some(account) = account else {
            return Err(denied());
        };
        let org = self.store().find_org(&account.org_id.to_string()).await?;
        if !constant_time_eq(&account.secret_hash, &offered) {
            if let Some(org) = &org {
                let actor = Actor::service_account(&account).with_request(
                    actor_context.ip_address,
                    actor_context.user_agent,
                    actor_context.request_id,
                );
                self.record_failed_sign_in(org, &actor, "wrong client secret")
                    .await;
            }
            return Err(denied());
        }
        let token = new_secret("al_access");
        let now = Timestamp::now();
        let credential = Credential {
            id: Uuid::now_v7(),
            kind: CredentialKind::AccessToken,
            token_hash: secret_hash(&token),
            org_id: Some(account.org_id),
            user_id: None,
            service_account_id: Some(account.id),
            name: format!("access token of {}", account.name),
            created_at: now,
            expires_at: Some(now.plus_millis(ACCESS_TOKEN_SECONDS * 1000)),
            revoked_at: None,
        };
        let actor = Actor::service_account(&account).with_request(
            actor_context.ip_address,
            actor_context.user_agent,
            actor_context.request_id,
        );
        self.apply_recorded(vec![Change::CreateCredential(credential)], move |_| {
            org.map(|org| {
                let meta = meta(json!({"method": "client_credentials"}));
                OwnRecord::new(
                    &org,
                    &actor,
                    "authentication_success",
                    Target::org(&org),
                    meta,
                )
            })
            .into_iter()
            .collect()
        })
        .await?;
        Ok((token, ACCESS_TOKEN_SECONDS))
    }

    /// Issues an ingest key: platform-wide, or for one organization. The token is shown once.
    pub async fn create_ingest_key(
        &self,
        org: Option<&Org>,
        name: &str,
    ) -> Result<(Credential, String), AccessError> {
        check_display_name("name", name).map_err(AccessError::Invalid)?;
        let token = new_secret("al_ingest");
        let credential = self
            .store()
            .create_credential(Credential {
                id: Uuid::now_v7(),
                kind: CredentialKind::Ingest,
                token_hash: secret_hash(&token),
                org_id: org.map(|o| o.id),
                user_id: None,
                service_account_id: None,
                name: name.to_string(),
                created_at: Timestamp::now(),
                expires_at: None,
                revoked_at: None,
            })
            .await?;
        Ok((credential, token))
    }

    /// Issues a personal API token of `user` for `org`, recording `token_created`. The token
    /// is shown once.
    pub async fn create_api_token(
        &self,
        org: &Org,
        user: &User,
        name: &str,
        expires_at: Option<Timestamp>,
        actor: &Actor,
    ) -> Result<(Credential, String), crate::IngestError> {
        check_display_name("name", name).map_err(invalid)?;
        let token = new_secret("al_token");
        let credential = Credential {
            id: Uuid::now_v7(),
            kind: CredentialKind::ApiToken,
            token_hash: secret_hash(&token),
            org_id: Some(org.id),
            user_id: Some(user.id),
            service_account_id: None,
            name: name.to_string(),
            created_at: Timestamp::now(),
            expires_at,
            revoked_at: None,
        };
        let target = Target {
            id: Some(credential.id.to_string()),
            email: Some(user.email.clone()),
            name: Some(name.to_string()),
        };
        let meta = meta(json!({"expires_at": expires_at.map(|t| t.to_string())}));
        let record = OwnRecord::new(org, actor, "token_created", target, meta);
        let change = Change::CreateCredential(credential.clone());
        self.apply_recorded(vec![change], move |_| vec![record])
            .await?;
        Ok((credential, token))
    }

    /// Revokes any personal API token of the organization (the operator's `token revoke`),
    /// recording `token_revoked`; `None` when there is no such token of that organization.
    pub async fn revoke_api_token(
        &self,
        org: &ReadableOrg,
        token_id: Uuid,
        actor: &Actor,
    ) -> Result<Option<Credential>, crate::IngestError> {
        self.revoke_token_of(org, token_id, actor).await
    }

    /// Revokes a personal API token of `org`, recording `token_revoked`; the callers decide
    /// whose tokens may be revoked.
    async fn revoke_token_of(
        &self,
        org: &Org,
        token_id: Uuid,
        actor: &Actor,
    ) -> Result<Option<Credential>, crate::IngestError> {
        let tokens = self
            .store()
            .credentials(CredentialKind::ApiToken, None, Some(org.id))
            .await?;
        let Some(token) = tokens.into_iter().find(|t| t.id == token_id) else {
            return Ok(None);
        };
        if token.revoked_at.is_some() {
            return Ok(Some(token));
        }
        let user = match token.user_id {
            Some(id) => self.store().find_user(&id.to_string()).await?,
            None => None,
        };
        let target = Target {
            id: Some(token.id.to_string()),
            email: user.map(|u| u.email),
            name: Some(token.name.clone()),
        };
        let change = Change::RevokeCredential {
            id: token.id,
            at: Timestamp::now(),
        };
        let (org, actor) = (org.clone(), actor.clone());
        self.apply_recorded(vec![change], move |changed| {
            // Recorded by whoever revoked it first.
            let first = matches!(changed, [Changed::Credential(Some(before))] if before.revoked_at.is_none());
            if first {
                vec![OwnRecord::new(&org, &actor, "token_revoked", target, Map::new())]
            } else {
                Vec::new()
            }
        })
        .await?;
        self.principals.forget();
        Ok(Some(token))
    }
}

impl Service {
    /// Every personal API token of an organization (the operator's `token list`).
    pub async fn api_tokens(&self, org: &ReadableOrg) -> Result<Vec<Credential>, StoreError> {
        self.store()
            .credentials(CredentialKind::ApiToken, None, Some(org.id))
            .await
    }

    /// A member's own personal API tokens of that organization.
    pub async fn own_tokens(&self, member: &MemberOf) -> Result<Vec<Credential>, StoreError> {
        self.store()
            .credentials(
                CredentialKind::ApiToken,
                Some(member.user().id),
                Some(member.org().id),
            )
            .await
    }

    /// Issues a member a personal API token of their organization, recording
    /// `token_created`. The token is shown once.
    pub async fn create_own_token(
        &self,
        member: &MemberOf,
        name: &str,
        expires_at: Option<Timestamp>,
        actor: &Actor,
    ) -> Result<(Credential, String), crate::IngestError> {
        self.create_api_token(member.org(), member.user(), name, expires_at, actor)
            .await
    }

    /// Revokes one of the member's own tokens, recording `token_revoked`; `None` when the
    /// member has no token with that id (another member's token is not theirs to revoke).
    pub async fn revoke_own_token(
        &self,
        member: &MemberOf,
        token_id: Uuid,
        actor: &Actor,
    ) -> Result<Option<Credential>, crate::IngestError> {
        if !self
            .own_tokens(member)
            .await?
            .iter()
            .any(|token| token.id == token_id)
        {
            return Ok(None);
        }
        self.revoke_token_of(member.org(), token_id, actor).await
    }
}

/// A JSON object literal as a meta map.
pub(crate) fn meta(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// How long a browser session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// How long a platform-minted sign-in link stays valid.
pub const SIGN_IN_LINK_SECONDS: i64 = 5 * 60;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (argon2 works on any length; this bounds the work per request).
pub const MAX_PASSWORD: usize = 256;

/// An argon2id hash (PHC string) of a password, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches an argon2 PHC string (the comparison is constant-time).
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the email is unknown, so that the answer takes as long as
/// for a known one and does not reveal whether the account exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing").unwrap_or_default())
}

/// A new random password for `auditlog user add` to print once.
pub fn new_password() -> String {
    new_secret("pw")
        .trim_start_matches("pw_")
        .chars()
        .take(20)
        .collect()
}

impl Service {
    /// Sets a user's password after checking its length.
    pub async fn set_password(&self, user: &User, password: &str) -> Result<(), AccessError> {
        let n = password.chars().count();
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
            return Err(AccessError::Forbidden(format!(
                "a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
            )));
        }
        let hash =
            hash_password(password).map_err(|e| AccessError::Store(StoreError::Backend(e)))?;
        self.store().set_password(user.id, Some(hash)).await?;
        Ok(())
    }

    /// Changes a signed-in user's own password: `current` must match the one they have (a
    /// user who never had one, signed in by a link, sets a first one). The check runs off
    /// the async workers, like sign-in's.
    pub async fn change_password(
        &self,
        viewer: &SignedIn,
        current: &str,
        new: &str,
    ) -> Result<(), PasswordError> {
        if let Some(hash) = viewer.user().password_hash.clone() {
            let current = current.to_string();
            let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &current))
                .await
                .unwrap_or(false);
            if !matches {
                return Err(PasswordError::WrongCurrent);
            }
        }
        match self.set_password(viewer.user(), new).await {
            Ok(()) => Ok(()),
            Err(AccessError::Forbidden(message)) => Err(PasswordError::Unacceptable(message)),
            Err(AccessError::Store(e)) => Err(PasswordError::Store(e)),
            Err(other) => Err(PasswordError::Store(StoreError::Backend(other.to_string()))),
        }
    }

    /// Checks email and password; on success opens a session and records
    /// `authentication_success` in each of the user's organizations. Unknown email and wrong
    /// password fail alike, after the same work.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        context: &Actor,
    ) -> Result<(User, String), AccessError> {
        let denied = || AccessError::Unauthenticated("wrong email or password");
        if email.len() > 320 || password.len() > MAX_PASSWORD * 4 {
            return Err(denied());
        }
        let user = self.store().find_user(email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let password = password.to_string();
        let checked = hash.clone().unwrap_or_else(|| decoy_hash().to_string());
        // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let matches = tokio::task::spawn_blocking(move || verify_password(&checked, &password))
            .await
            .unwrap_or(false);
        let Some(user) = user else {
            return Err(denied());
        };
        if hash.is_none() || !matches {
            // A known account's failed sign-in is recorded in its organizations, after the
            // answer: an unknown email has none, and must not be told apart by the time the
            // answer takes.
            let actor = Actor::user(&user).with_request(
                context.ip_address,
                context.user_agent.clone(),
                context.request_id.clone(),
            );
            let service = self.clone();
            tokio::spawn(async move {
                let orgs = match service.store().memberships(user.id).await {
                    Ok(orgs) => orgs,
                    Err(error) => {
                        tracing::warn!(%error, "a failed sign-in could not be recorded");
                        return;
                    }
                };
                for (org, _) in &orgs {
                    service
                        .record_failed_sign_in(org, &actor, "wrong password")
                        .await;
                }
            });
            return Err(denied());
        }
        let orgs: Vec<Org> = self
            .store()
            .memberships(user.id)
            .await?
            .into_iter()
            .map(|(org, _)| org)
            .collect();
        let token = self.open_session(&user, &orgs, context, "password").await?;
        Ok((user, token))
    }

    /// Opens a browser session for `user`, recording `authentication_success` (with
    /// `method`) in each of `orgs` in the same transaction: no session without its records.
    async fn open_session(
        &self,
        user: &User,
        orgs: &[Org],
        context: &Actor,
        method: &'static str,
    ) -> Result<String, AccessError> {
        let token = new_secret("al_session");
        let now = Timestamp::now();
        let session = Credential {
            id: Uuid::now_v7(),
            kind: CredentialKind::Session,
            token_hash: secret_hash(&token),
            org_id: None,
            user_id: Some(user.id),
            service_account_id: None,
            name: "browser session".into(),
            created_at: now,
            expires_at: Some(now.plus_millis(SESSION_SECONDS * 1000)),
            revoked_at: None,
        };
        let actor = Actor::user(user).with_request(
            context.ip_address,
            context.user_agent.clone(),
            context.request_id.clone(),
        );
        let records: Vec<OwnRecord> = orgs
            .iter()
            .map(|org| {
                let meta = meta(json!({ "method": method }));
                OwnRecord::new(
                    org,
                    &actor,
                    "authentication_success",
                    Target::org(org),
                    meta,
                )
            })
            .collect();
        self.apply_recorded(vec![Change::CreateCredential(session)], move |_| records)
            .await?;
        Ok(token)
    }

    /// Ends a browser session.
    pub async fn sign_out(&self, token: &str) -> Result<(), AccessError> {
        if let Some(credential) = self.store().credential_by_hash(secret_hash(token)).await? {
            if credential.kind == CredentialKind::Session {
                self.store()
                    .revoke_credential(credential.id, Timestamp::now())
                    .await?;
                self.principals.forget();
            }
        }
        Ok(())
    }

    /// Mints a one-time sign-in link token for `email` in the organization `org_name` names,
    /// on behalf of the platform whose ingest key `principal` is. With `role`, the platform
    /// also states the user's role (creating the user when new); without, the user must
    /// already be a member. A key bound to one organization mints links for it only, and
    /// learns nothing about whether others exist.
    pub async fn create_sign_in_link(
        &self,
        principal: &Principal,
        org_name: &str,
        email: &str,
        display_name: Option<&str>,
        role: Option<Role>,
    ) -> Result<(String, Timestamp), AccessError> {
        let Principal::Ingest {
            credential: ingest, ..
        } = principal
        else {
            return Err(AccessError::Forbidden(
                "only ingest keys may mint sign-in links".into(),
            ));
        };
        let refused = || {
            AccessError::Forbidden(
                "this credential may not mint sign-in links for that organization".into(),
            )
        };
        let org = match self.store().find_org(org_name).await? {
            Some(org) => org,
            None if ingest.org_id.is_some() => return Err(refused()),
            None => return Err(AccessError::UnknownOrg(org_name.to_string())),
        };
        if ingest.org_id.is_some_and(|bound| bound != org.id) {
            return Err(refused());
        }
        let actor = Actor {
            id: Some(ingest.id.to_string()),
            name: Some(ingest.name.clone()),
            ..Actor::operator()
        };
        let token = new_secret("al_link");
        let now = Timestamp::now();
        let expires_at = now.plus_millis(SIGN_IN_LINK_SECONDS * 1000);
        let link = |user: &User| Credential {
            id: Uuid::now_v7(),
            kind: CredentialKind::SignInLink,
            token_hash: secret_hash(&token),
            org_id: Some(org.id),
            user_id: Some(user.id),
            service_account_id: None,
            name: format!("sign-in link for {}", user.email),
            created_at: now,
            expires_at: Some(expires_at),
            revoked_at: None,
        };
        match role {
            // The user's membership, its record and the link: all of them or none.
            Some(role) => {
                let also = |user: &User| vec![Change::CreateCredential(link(user))];
                self.add_user_with(&org, email, display_name, role, &actor, also)
                    .await?;
            }
            None => {
                check_email_address("email", email).map_err(AccessError::Invalid)?;
                let user = match self.store().find_user(email).await? {
                    Some(user) if self.store().role_of(org.id, user.id).await?.is_some() => user,
                    _ => {
                        return Err(AccessError::Forbidden(format!(
                            "{email} is not a member of {}; pass a role to add them",
                            org.name
                        )))
                    }
                };
                self.store().create_credential(link(&user)).await?;
            }
        }
        Ok((token, expires_at))
    }

    /// Redeems a sign-in link once: opens a session and records `authentication_success`.
    pub async fn redeem_sign_in_link(
        &self,
        token: &str,
        context: &Actor,
    ) -> Result<(User, Org, String), AccessError> {
        let invalid =
            || AccessError::Unauthenticated("this sign-in link is invalid, used or expired");
        if token.len() > 256 {
            return Err(invalid());
        }
        let hash = secret_hash(token);
        let link = self
            .store()
            .credential_by_hash(hash)
            .await?
            .filter(|c| {
                c.kind == CredentialKind::SignInLink && constant_time_eq(&c.token_hash, &hash)
            })
            .ok_or_else(invalid)?;
        if !link.is_live(Timestamp::now()) {
            return Err(invalid());
        }
        // Single use: whoever revokes it first wins.
        let before = self
            .store()
            .revoke_credential(link.id, Timestamp::now())
            .await?;
        if before.is_none_or(|c| c.revoked_at.is_some()) {
            return Err(invalid());
        }
        let (Some(user_id), Some(org_id)) = (link.user_id, link.org_id) else {
            return Err(invalid());
        };
        let user = self
            .store()
            .find_user(&user_id.to_string())
            .await?
            .ok_or_else(invalid)?;
        let org = self
            .store()
            .find_org(&org_id.to_string())
            .await?
            .ok_or_else(invalid)?;
        // The link is spent before the session opens: a failure between the two leaves no
        // session and a link that cannot be replayed.
        let session = self
            .open_session(&user, std::slice::from_ref(&org), context, "sign_in_link")
            .await?;
        Ok((user, org, session))
    }
}

/// How often the failed or refused attempts of one source (a client address, else an
/// account) at one action in one organization are recorded: the first is, and the next after
/// this long, carrying the number in between (`meta.attempts_not_recorded`). A client that
/// guesses passwords cannot flood the log.
pub const ATTEMPT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Most sources remembered at once; past it, those whose window is over are forgotten.
const MAX_ATTEMPT_SOURCES: usize = 10_000;

/// The attempts recorded within the window, by source, organization and action, with the
/// number not recorded since.
#[derive(Default)]
pub(crate) struct AttemptRecords {
    seen: std::sync::Mutex<HashMap<AttemptKey, (std::time::Instant, u64)>>,
}

/// Whose attempts (a client address, else an account id), in which organization, at what.
type AttemptKey = (String, Uuid, &'static str);

impl AttemptRecords {
    /// Whether to record this attempt: `Some(n)` with the attempts not recorded since the
    /// last record, or `None` within the window.
    fn admit(&self, source: String, org_id: Uuid, action_key: &'static str) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ATTEMPT_SOURCES {
            seen.retain(|_, (at, _)| now.duration_since(*at) < ATTEMPT_WINDOW);
            if seen.len() >= MAX_ATTEMPT_SOURCES {
                // Every one of them is within its window: keep refusing new sources' records
                // rather than grow; their attempts are counted by whoever asks next.
                return None;
            }
        }
        match seen.get_mut(&(source.clone(), org_id, action_key)) {
            Some((at, skipped)) if now.duration_since(*at) < ATTEMPT_WINDOW => {
                *skipped += 1;
                None
            }
            Some(entry) => {
                let skipped = entry.1;
                *entry = (now, 0);
                Some(skipped)
            }
            None => {
                seen.insert((source, org_id, action_key), (now, 0));
                Some(0)
            }
        }
    }
}

impl Service {
    /// Records that `actor` attempted `action_key` on `target` in `org` and it did not happen
    /// (`outcome`: failure or denied) for `reason`, unless this source's attempts were
    /// recorded within [`ATTEMPT_WINDOW`]. The attempt was refused whatever happens here, so
    /// a record that cannot be stored is logged, not returned.
    pub(crate) async fn record_attempt(
        &self,
        org: &Org,
        actor: &Actor,
        action_key: &'static str,
        target: Target,
        outcome: Outcome,
        reason: &str,
    ) {
        let source = match (&actor.ip_address, &actor.id) {
            (Some(ip), _) => ip.to_string(),
            (None, Some(id)) => id.clone(),
            (None, None) => String::new(),
        };
        let Some(skipped) = self.attempts.admit(source, org.id, action_key) else {
            return;
        };
        let mut meta = Map::new();
        if skipped > 0 {
            meta.insert("attempts_not_recorded".into(), skipped.into());
        }
        let record = OwnRecord::new(org, actor, action_key, target, meta).not_done(outcome, reason);
        if let Err(error) = self.apply_recorded(Vec::new(), move |_| vec![record]).await {
            tracing::warn!(%error, action_key, "a refused attempt could not be recorded");
        }
    }

    /// [`Service::record_attempt`] for a sign-in into `org` that failed for `reason`.
    async fn record_failed_sign_in(&self, org: &Org, actor: &Actor, reason: &str) {
        let target = Target::org(org);
        self.record_attempt(
            org,
            actor,
            "authentication_success",
            target,
            Outcome::Failure,
            reason,
        )
        .await;
    }
}

/// One of the service's own actions, to record in an organization's log.
pub(crate) struct OwnRecord {
    org_id: Uuid,
    actor: Actor,
    action_key: &'static str,
    target: Target,
    meta: Map<String, Value>,
    outcome: Outcome,
    reason: Option<String>,
    changes: Vec<FieldChange>,
}

impl OwnRecord {
    /// `actor` did `action_key` to `target` in `org`.
    pub(crate) fn new(
        org: &Org,
        actor: &Actor,
        action_key: &'static str,
        target: Target,
        meta: Map<String, Value>,
    ) -> OwnRecord {
        OwnRecord {
            org_id: org.id,
            actor: actor.clone(),
            action_key,
            target,
            meta,
            outcome: Outcome::Success,
            reason: None,
            changes: Vec::new(),
        }
    }

    /// The same action, recorded as attempted and not done: `Outcome::Failure` or
    /// `Outcome::Denied`, for `reason`.
    pub(crate) fn not_done(mut self, outcome: Outcome, reason: &str) -> OwnRecord {
        self.outcome = outcome;
        self.reason = Some(reason.to_string());
        self
    }

    /// The same action, recording what it changed.
    pub(crate) fn with_changes(mut self, changes: Vec<FieldChange>) -> OwnRecord {
        self.changes = changes;
        self
    }

    /// The event, as any other client would send it.
    fn into_event(self) -> NewEvent {
        let OwnRecord {
            actor,
            action_key,
            target,
            meta,
            outcome,
            reason,
            changes,
            ..
        } = self;
        NewEvent {
            org: None,
            action_key: action_key.to_string(),
            action_verb: None,
            actor_id: actor.id,
            actor_email: actor.email,
            actor_name: actor.name,
            actor_type: Some(actor.kind.as_str().to_string()),
            target_id: target.id,
            target_email: target.email,
            target_name: target.name,
            target_type: None,
            service_name: Some(SERVICE_NAME.to_string()),
            ip_address: actor.ip_address.map(|ip| ip.to_string()),
            user_agent: actor.user_agent,
            request_id: actor.request_id,
            meta: Some(Value::Object(meta)),
            occurred_at: None,
            impersonator: None,
            changes: (!changes.is_empty())
                .then(|| serde_json::to_value(changes).expect("changes serialize")),
            outcome: (!outcome.is_success()).then(|| outcome.as_str().to_string()),
            reason,
        }
    }
}

impl Target {
    /// A user.
    fn user(user: &User) -> Target {
        Target {
            id: Some(user.id.to_string()),
            email: Some(user.email.clone()),
            name: Some(user.display_name.clone()),
        }
    }

    /// A service account.
    fn service_account(account: &ServiceAccount) -> Target {
        Target {
            id: Some(account.id.to_string()),
            email: None,
            name: Some(account.name.clone()),
        }
    }

    /// An organization (what a sign-in is into).
    pub(crate) fn org(org: &Org) -> Target {
        Target {
            id: Some(org.id.to_string()),
            email: None,
            name: Some(org.display_name.clone()),
        }
    }
}

/// The role a user had before the [`Change::SetRole`] among `changed`.
fn role_before(changed: &[Changed]) -> Option<Role> {
    changed.iter().find_map(|c| match c {
        Changed::Role(before) => *before,
        _ => None,
    })
}

/// The service account a change found, if it did.
fn changed_account(changed: &[Changed]) -> Option<ServiceAccount> {
    changed.iter().find_map(|c| match c {
        Changed::ServiceAccount(account) => account.clone(),
        _ => None,
    })
}

/// An account field that breaks its rule, as an ingest error (the callers' error type).
fn invalid(error: FieldError) -> crate::IngestError {
    crate::IngestError::Refused(AccessError::Invalid(error))
}
