//! Who may do what: users and their roles in organizations, service accounts, credentials
//! (ingest keys, API tokens, access tokens, browser sessions), idempotency records and export
//! jobs — everything besides events that the service keeps, so that replicas share nothing
//! but the store.

use auditlog_core::Timestamp;
use uuid::Uuid;

/// A user's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May read, filter and export the audit log and manage service accounts.
    Admin,
    /// A member without access to the audit log.
    Member,
}

impl Role {
    /// `admin` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Parses `admin` or `member`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id.
    pub id: Uuid,
    /// Unique email address (stored lowercase).
    pub email: String,
    /// Name shown to people.
    pub display_name: String,
    /// Argon2id PHC string; `None` until a password is set.
    pub password_hash: Option<String>,
    /// When the user was created.
    pub created_at: Timestamp,
}

/// A machine identity of one organization, authenticating with client id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Stable id.
    pub id: Uuid,
    /// The organization it belongs to.
    pub org_id: Uuid,
    /// A label for people.
    pub name: String,
    /// The public half of its credentials (unique).
    pub client_id: String,
    /// SHA-256 of the client secret.
    pub secret_hash: [u8; 32],
    /// When it was created.
    pub created_at: Timestamp,
}

/// What a bearer credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// Writes events: for one organization, or platform-wide when `org_id` is `None`.
    Ingest,
    /// A user's personal API token for one organization.
    ApiToken,
    /// A short-lived token traded for a service account's client credentials.
    AccessToken,
    /// A browser session of a user.
    Session,
    /// A one-time sign-in link that a platform minted for one user and organization.
    SignInLink,
}

impl CredentialKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Ingest => "ingest",
            CredentialKind::ApiToken => "api_token",
            CredentialKind::AccessToken => "access_token",
            CredentialKind::Session => "session",
            CredentialKind::SignInLink => "sign_in_link",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<CredentialKind> {
        match text {
            "ingest" => Some(CredentialKind::Ingest),
            "api_token" => Some(CredentialKind::ApiToken),
            "access_token" => Some(CredentialKind::AccessToken),
            "session" => Some(CredentialKind::Session),
            "sign_in_link" => Some(CredentialKind::SignInLink),
            _ => None,
        }
    }
}

/// A bearer credential. Only the SHA-256 of the secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Stable id.
    pub id: Uuid,
    /// What it is for.
    pub kind: CredentialKind,
    /// SHA-256 of the secret token (unique).
    pub token_hash: [u8; 32],
    /// The organization it is limited to, if any.
    pub org_id: Option<Uuid>,
    /// The user it acts for, if any.
    pub user_id: Option<Uuid>,
    /// The service account it acts for, if any.
    pub service_account_id: Option<Uuid>,
    /// A label for people.
    pub name: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl Credential {
    /// True when it may be used at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// An idempotency key of an append: `scope` names the key within its credential, and
/// `request_hash` is the SHA-256 of the request body it was first used with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The credential's id and the client's key, joined.
    pub scope: String,
    /// SHA-256 of the request.
    pub request_hash: [u8; 32],
}

/// The result of an idempotent append.
#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    /// The events were stored now.
    Stored(Vec<auditlog_core::Event>),
    /// The same key and request were seen before: the ids stored then, nothing stored now.
    Replayed(Vec<Uuid>),
}

/// The state of an export job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for a runner.
    Pending,
    /// A runner is writing the file.
    Running,
    /// The file is ready.
    Completed,
    /// The job failed; `error_message` says why.
    Failed,
    /// The file was deleted after its expiry.
    Expired,
}

impl JobStatus {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Expired => "expired",
        }
    }

    /// Parses the API's name.
    pub fn parse(text: &str) -> Option<JobStatus> {
        match text {
            "pending" => Some(JobStatus::Pending),
            "running" => Some(JobStatus::Running),
            "completed" => Some(JobStatus::Completed),
            "failed" => Some(JobStatus::Failed),
            "expired" => Some(JobStatus::Expired),
            _ => None,
        }
    }
}

/// An asynchronous export of an organization's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportJob {
    /// Stable id.
    pub id: Uuid,
    /// The organization exported.
    pub org_id: Uuid,
    /// Where it stands.
    pub status: JobStatus,
    /// The request as JSON (filter, format, compression), replayed when the job runs.
    pub request: String,
    /// Who asked (a user's email or a service account's name), for the log.
    pub requested_by: String,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// When it finished.
    pub completed_at: Option<Timestamp>,
    /// 0–100.
    pub progress: u8,
    /// Events written, once known.
    pub total_records: Option<u64>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// The file, once complete, relative to the export directory.
    pub file_name: Option<String>,
    /// When the file will be deleted.
    pub expires_at: Option<Timestamp>,
    /// Which runner holds it while running, and since when (ms), so that a dead runner's
    /// job can be taken over.
    pub claimed_by: Option<String>,
    /// When the runner last reported progress.
    pub heartbeat_at: Option<Timestamp>,
}

/// A legal hold: while it is live, nothing it covers may be erased (or, with retention,
/// purged). Placing and lifting one are recorded in the organization's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    /// Its id.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// The person it protects, by actor id or email; `None` holds the whole organization.
    pub subject: Option<String>,
    /// Why (a case number, say).
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When.
    pub placed_at: Timestamp,
    /// When it was lifted; `None` while live.
    pub lifted_at: Option<Timestamp>,
    /// Who lifted it.
    pub lifted_by: Option<String>,
}

impl LegalHold {
    /// Whether the hold is live and protects `subject` (a person known by an email, an actor
    /// id or both): a hold of the whole organization protects everyone.
    pub fn covers(&self, subject: &auditlog_core::entry::Subject) -> bool {
        if self.lifted_at.is_some() {
            return false;
        }
        let Some(held) = &self.subject else {
            return true;
        };
        subject.id.as_deref() == Some(held.as_str())
            || subject
                .email
                .as_deref()
                .is_some_and(|email| email.eq_ignore_ascii_case(held))
    }

    /// Whether the hold is live and protects an event: a hold of the whole organization
    /// protects every event, a hold of a person the events that name them as actor, target
    /// or impersonator, by id or email.
    pub fn covers_event(&self, body: &auditlog_core::EventBody) -> bool {
        if self.lifted_at.is_some() {
            return false;
        }
        let Some(held) = &self.subject else {
            return true;
        };
        let is = |value: Option<&str>| value.is_some_and(|v| v.eq_ignore_ascii_case(held));
        let impersonator = body.extensions.impersonator.as_ref();
        is(body.actor_id.as_deref())
            || is(body.actor_email.as_deref())
            || is(body.target_id.as_deref())
            || is(body.target_email.as_deref())
            || impersonator.is_some_and(|i| is(i.id.as_deref()) || is(i.email.as_deref()))
    }

    /// The refusal of an erasure or purge of records this hold protects.
    pub fn refusal(&self) -> crate::StoreError {
        crate::StoreError::Conflict(format!(
            "a legal hold placed by {} on {} protects these records",
            self.placed_by, self.placed_at
        ))
    }
}

/// Whether an erasure of `subject` from the event `body` may go ahead: the refusal of the
/// first of `holds` that protects the person or the event.
fn check_holds(
    holds: &[LegalHold],
    subject: &auditlog_core::entry::Subject,
    body: &auditlog_core::EventBody,
) -> Result<(), crate::StoreError> {
    match holds
        .iter()
        .find(|hold| hold.covers(subject) || hold.covers_event(body))
    {
        Some(hold) => Err(hold.refusal()),
        None => Ok(()),
    }
}

impl Erasure {
    /// Erases `subject` from `event` (`auditlog_core::entry::subject_fields`, then `erase`)
    /// and counts what it did: the same decision on every backend, which then writes the
    /// event back when this answers true. An event that does not name the subject is left
    /// alone; one that does but that a live hold of `holds` protects refuses the whole
    /// erasure; a version-1 entry is counted as unerasable.
    pub fn apply(
        &mut self,
        event: &mut auditlog_core::Event,
        subject: &auditlog_core::entry::Subject,
        holds: &[LegalHold],
    ) -> Result<bool, crate::StoreError> {
        let fields = auditlog_core::entry::subject_fields(&event.body, subject);
        if fields.is_empty() {
            return Ok(false);
        }
        check_holds(holds, subject, &event.body)?;
        if event.entry == auditlog_core::Entry::V1 {
            self.unerasable += 1;
            return Ok(false);
        }
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        auditlog_core::entry::erase(event, &names)
            .map_err(|e| crate::StoreError::Corrupt(format!("event {}: {e}", event.id)))?;
        self.events += 1;
        self.fields += fields.len() as u64;
        Ok(true)
    }
}

/// Whether a purge may remove the event `body`: the refusal of the first live hold of
/// `holds` that protects it (a hold of the whole organization protects every event).
pub fn check_holds_for_purge(
    holds: &[LegalHold],
    body: &auditlog_core::EventBody,
) -> Result<(), crate::StoreError> {
    match holds.iter().find(|hold| hold.covers_event(body)) {
        Some(hold) => Err(hold.refusal()),
        None => Ok(()),
    }
}

/// What an erasure of a data subject did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Erasure {
    /// Events from which fields were erased.
    pub events: u64,
    /// Fields erased, over all of them.
    pub fields: u64,
    /// Events that name the subject but were stored before personal fields were committed
    /// with salts (version-1 entries): erasing their values would change their leaves.
    pub unerasable: u64,
}
