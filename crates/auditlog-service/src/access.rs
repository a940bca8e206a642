//! Identities and what they may do: secret tokens, the principal a bearer token stands for,
//! the checks that decide whether it may read or write an organization's log, and the
//! administrative actions (users, roles, service accounts, tokens) that are themselves recorded
//! in the organization's log with `service_name: "auditlog"`.

use std::net::IpAddr;

use auditlog_core::{ActorType, NewEvent, Timestamp};
use auditlog_store::{Credential, CredentialKind, Org, Role, ServiceAccount, StoreError, User};
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
    /// The organization does not exist (404).
    #[error("no organization is named {0:?}")]
    UnknownOrg(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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
        action_key: &str,
        target: Target,
        meta: Map<String, Value>,
    ) -> Result<(), crate::IngestError> {
        // A deployment whose catalog lacks the service's own actions (the self-hosted preset
        // has none of them) gets the action done without its record, rather than refused.
        if self.catalog().get(action_key).is_none() && !self.catalog().accept_unknown {
            tracing::info!(action_key, org = %org.name, "not recorded: the catalog has no such action");
            return Ok(());
        }
        let event = NewEvent {
            org: None,
            action_key: action_key.to_string(),
            action_verb: None,
            actor_id: actor.id.clone(),
            actor_email: actor.email.clone(),
            actor_name: actor.name.clone(),
            actor_type: Some(actor.kind.as_str().to_string()),
            target_id: target.id,
            target_email: target.email,
            target_name: target.name,
            target_type: None,
            service_name: Some(SERVICE_NAME.to_string()),
            ip_address: actor.ip_address.map(|ip| ip.to_string()),
            user_agent: actor.user_agent.clone(),
            request_id: actor.request_id.clone(),
            meta: Some(Value::Object(meta)),
            occurred_at: None,
        };
        self.ingest(Some(org), vec![event]).await.map(|_| ())
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
        let user = match self.store().find_user(email).await? {
            Some(user) => user,
            None => {
                self.store()
                    .create_user(User {
                        id: Uuid::now_v7(),
                        email: email.to_lowercase(),
                        display_name: display_name
                            .map_or_else(|| email.to_string(), str::to_string),
                        password_hash: None,
                        created_at: Timestamp::now(),
                    })
                    .await?
            }
        };
        let before = self.store().set_role(org.id, user.id, Some(role)).await?;
        self.principals.forget();
        let target = Target {
            id: Some(user.id.to_string()),
            email: Some(user.email.clone()),
            name: Some(user.display_name.clone()),
        };
        match before {
            None => {
                self.record(
                    org,
                    actor,
                    "organization_user_added",
                    target,
                    meta(json!({"role": role.as_str()})),
                )
                .await?
            }
            Some(previous) if previous != role => {
                self.record(
                    org,
                    actor,
                    "organization_user_updated",
                    target,
                    meta(json!({"previous_role": previous.as_str(), "new_role": role.as_str()})),
                )
                .await?
            }
            Some(_) => {}
        }
        Ok(user)
    }

    /// Removes a user from an organization, recording `organization_user_removed`.
    pub async fn remove_user(
        &self,
        org: &ReadableOrg,
        user: &User,
        actor: &Actor,
    ) -> Result<bool, crate::IngestError> {
        let before = self.store().set_role(org.id, user.id, None).await?;
        self.principals.forget();
        if let Some(role) = before {
            let target = Target {
                id: Some(user.id.to_string()),
                email: Some(user.email.clone()),
                name: Some(user.display_name.clone()),
            };
            self.record(
                org,
                actor,
                "organization_user_removed",
                target,
                meta(json!({"role": role.as_str()})),
            )
            .await?;
        }
        Ok(before.is_some())
    }

    /// Creates a service account of `org`; returns it with its client secret, which is shown
    /// once and stored only as a hash. Records `service_account_created`.
    pub async fn create_service_account(
        &self,
        org: &ReadableOrg,
        name: &str,
        actor: &Actor,
    ) -> Result<(ServiceAccount, String), crate::IngestError> {
        let secret = new_secret("al_secret");
        let account = self
            .store()
            .create_service_account(ServiceAccount {
                id: Uuid::now_v7(),
                org_id: org.id,
                name: name.to_string(),
                client_id: format!("al_client_{}", Uuid::new_v4().simple()),
                secret_hash: secret_hash(&secret),
                created_at: Timestamp::now(),
            })
            .await?;
        let target = Target {
            id: Some(account.id.to_string()),
            email: None,
            name: Some(account.name.clone()),
        };
        self.record(
            org,
            actor,
            "service_account_created",
            target,
            meta(json!({"client_id": account.client_id})),
        )
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
        let Some(account) = self
            .store()
            .rename_service_account(org.id, id, name)
            .await?
        else {
            return Ok(None);
        };
        // Its tokens' principals carry the old name.
        self.principals.forget();
        let target = Target {
            id: Some(account.id.to_string()),
            email: None,
            name: Some(account.name.clone()),
        };
        self.record(
            org,
            actor,
            "service_account_updated",
            target,
            meta(json!({"name": name})),
        )
        .await?;
        Ok(Some(account))
    }

    /// Deletes a service account (its access tokens stop working), recording
    /// `service_account_deleted`.
    pub async fn delete_service_account(
        &self,
        org: &ReadableOrg,
        id: Uuid,
        actor: &Actor,
    ) -> Result<Option<ServiceAccount>, crate::IngestError> {
        let Some(account) = self
            .store()
            .delete_service_account(org.id, id, Timestamp::now())
            .await?
        else {
            return Ok(None);
        };
        // Its access tokens were revoked with it.
        self.principals.forget();
        let target = Target {
            id: Some(account.id.to_string()),
            email: None,
            name: Some(account.name.clone()),
        };
        self.record(org, actor, "service_account_deleted", target, Map::new())
            .await?;
        Ok(Some(account))
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
        let Some(account) = account.filter(|a| constant_time_eq(&a.secret_hash, &offered)) else {
            return Err(denied());
        };
        let token = new_secret("al_access");
        let now = Timestamp::now();
        self.store()
            .create_credential(Credential {
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
            })
            .await?;
        if let Some(org) = self.store().find_org(&account.org_id.to_string()).await? {
            let actor = Actor {
                ..Actor::service_account(&account)
            }
            .with_request(
                actor_context.ip_address,
                actor_context.user_agent,
                actor_context.request_id,
            );
            let target = Target {
                id: Some(org.id.to_string()),
                email: None,
                name: Some(org.display_name.clone()),
            };
            self.record(
                &org,
                &actor,
                "authentication_success",
                target,
                meta(json!({"method": "client_credentials"})),
            )
            .await
            .map_err(|e| AccessError::Store(StoreError::Backend(e.to_string())))?;
        }
        Ok((token, ACCESS_TOKEN_SECONDS))
    }

    /// Issues an ingest key: platform-wide, or for one organization. The token is shown once.
    pub async fn create_ingest_key(
        &self,
        org: Option<&Org>,
        name: &str,
    ) -> Result<(Credential, String), StoreError> {
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
        let token = new_secret("al_token");
        let credential = self
            .store()
            .create_credential(Credential {
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
            })
            .await?;
        let target = Target {
            id: Some(credential.id.to_string()),
            email: Some(user.email.clone()),
            name: Some(name.to_string()),
        };
        self.record(
            org,
            actor,
            "token_created",
            target,
            meta(json!({"expires_at": expires_at.map(|t| t.to_string())})),
        )
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
        self.store()
            .revoke_credential(token.id, Timestamp::now())
            .await?;
        self.principals.forget();
        let user = match token.user_id {
            Some(id) => self.store().find_user(&id.to_string()).await?,
            None => None,
        };
        let target = Target {
            id: Some(token.id.to_string()),
            email: user.map(|u| u.email),
            name: Some(token.name.clone()),
        };
        self.record(org, actor, "token_revoked", target, Map::new())
            .await?;
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
fn meta(value: Value) -> Map<String, Value> {
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
        let (Some(user), Some(_), true) = (user, hash, matches) else {
            return Err(denied());
        };
        let token = self.open_session(&user).await?;
        for (org, _) in self.store().memberships(user.id).await? {
            self.record_sign_in(&org, &user, context, "password")
                .await?;
        }
        Ok((user, token))
    }

    async fn open_session(&self, user: &User) -> Result<String, AccessError> {
        let token = new_secret("al_session");
        let now = Timestamp::now();
        self.store()
            .create_credential(Credential {
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
            })
            .await?;
        Ok(token)
    }

    async fn record_sign_in(
        &self,
        org: &Org,
        user: &User,
        context: &Actor,
        method: &str,
    ) -> Result<(), AccessError> {
        let actor = Actor::user(user).with_request(
            context.ip_address,
            context.user_agent.clone(),
            context.request_id.clone(),
        );
        let target = Target {
            id: Some(org.id.to_string()),
            email: None,
            name: Some(org.display_name.clone()),
        };
        self.record(
            org,
            &actor,
            "authentication_success",
            target,
            meta(json!({ "method": method })),
        )
        .await
        .map_err(|e| AccessError::Store(StoreError::Backend(e.to_string())))
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
        let org = &org;
        let actor = Actor {
            id: Some(ingest.id.to_string()),
            name: Some(ingest.name.clone()),
            ..Actor::operator()
        };
        let user = match role {
            Some(role) => self
                .add_user(org, email, display_name, role, &actor)
                .await
                .map_err(|e| AccessError::Store(StoreError::Backend(e.to_string())))?,
            None => {
                let user = self.store().find_user(email).await?;
                match user {
                    Some(user) if self.store().role_of(org.id, user.id).await?.is_some() => user,
                    _ => {
                        return Err(AccessError::Forbidden(format!(
                            "{email} is not a member of {}; pass a role to add them",
                            org.name
                        )))
                    }
                }
            }
        };
        let token = new_secret("al_link");
        let now = Timestamp::now();
        let expires_at = now.plus_millis(SIGN_IN_LINK_SECONDS * 1000);
        self.store()
            .create_credential(Credential {
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
            })
            .await?;
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
        let session = self.open_session(&user).await?;
        self.record_sign_in(&org, &user, context, "sign_in_link")
            .await?;
        Ok((user, org, session))
    }
}
