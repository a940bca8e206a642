//! The storage boundary of auditlog: the [`Store`] trait every backend implements and the
//! types that cross it. The test suite every backend must pass is the `auditlog-conformance`
//! crate, so this one carries no test code and no runtime.
//!
//! This crate knows no database driver. A backend crate (`auditlog-sqlite`,
//! `auditlog-postgres`) implements [`Store`]; only the binary knows which one runs.
//!
//! Invariants every backend keeps (the conformance suite checks each):
//! - An organization's events get `seq` 1, 2, 3, … in append order with no gap, and each
//!   event's `hash` chains to the previous one (`auditlog_core::chain`).
//! - [`Store::append`] is atomic: every event of the batch is stored, or none is. It returns
//!   only once the events are durable.
//! - Every read is scoped to one organization inside the store: no method returns an event of
//!   an organization other than the one it was asked about.
//! - Pages are ordered by `(occurred_at, seq)` and keyset pages neither skip nor repeat events.
//! - [`Store::apply`] is atomic too: the account changes and the events that record them are
//!   stored together, or nothing is.
//! - [`Store::restore_org`] and [`Store::restore_events`] (for migrations between backends)
//!   store organizations and events exactly as given, and only events that continue the
//!   organization's chain, so the invariants above hold for restored data too.

use async_trait::async_trait;
use auditlog_core::chain::SignedCheckpoint;
use auditlog_core::query::{Filter, Query};
use auditlog_core::{Event, EventBody, Timestamp};
use uuid::Uuid;

pub mod accounts;
pub mod change;

pub use accounts::{
    check_holds_for_purge, AppendOutcome, Credential, CredentialKind, Erasure, ExportJob,
    IdempotencyKey, JobStatus, LegalHold, Role, ServiceAccount, User,
};
pub use change::{Applied, Change, Changed, Recorder};

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Stable id.
    pub id: Uuid,
    /// Unique name, used in `X-Org-Name` and on the command line.
    pub name: String,
    /// Name for people.
    pub display_name: String,
    /// Whether the organization is enrolled in the audit-log feature (early access).
    pub audit_logs_enabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What is needed to create an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrg {
    /// Unique name.
    pub name: String,
    /// Name for people.
    pub display_name: String,
    /// Enrolled at creation.
    pub audit_logs_enabled: bool,
}

/// One event to append to one organization's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    /// The organization.
    pub org_id: Uuid,
    /// The validated event.
    pub body: EventBody,
}

/// A count that may have been capped to keep it cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// The count, or the cap when `exact` is false.
    pub n: u64,
    /// False when there are at least `n` matches and counting further was not worth it.
    pub exact: bool,
}

/// How many events of a filter there are per action and per actor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facets {
    /// `(action_key, count)`, most frequent first.
    pub actions: Vec<(String, u64)>,
    /// Actors, most frequent first.
    pub actors: Vec<ActorCount>,
}

/// One actor in the facets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorCount {
    /// The actor's id, if events carry one.
    pub actor_id: Option<String>,
    /// The actor's email, if events carry one.
    pub actor_email: Option<String>,
    /// A display name seen for the actor.
    pub actor_name: Option<String>,
    /// How many events.
    pub count: u64,
}

/// How far a store's derived state (access paths, rollups, search postings) trails its log.
/// Reads never miss an event because of it (backends read what is not indexed yet from the
/// log); a growing lag only makes them slower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexLag {
    /// Events stored but not indexed yet.
    pub events: u64,
    /// When the oldest of them was stored (`None` when there are none).
    pub oldest: Option<Timestamp>,
}

/// The newest point of an organization's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The last `seq` (0 when the organization has no events).
    pub seq: u64,
    /// The hash after it (`chain::GENESIS` when none).
    pub hash: [u8; 32],
}

/// Errors of every store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (an organization name or id) is taken, or restored events do not
    /// continue their organization's chain.
    #[error("{0}")]
    Conflict(String),
    /// An organization named by an append does not exist.
    #[error("organization {0} does not exist")]
    UnknownOrg(Uuid),
    /// The stored data contradicts itself (a malformed row, a broken reference).
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The data was written by a newer version of auditlog.
    #[error("the store has schema version {found}; this auditlog supports up to {supported}: upgrade auditlog")]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A change was not made because the events recording it could not be built
    /// ([`Store::apply`]); the message says why.
    #[error("the change was not made: its audit record was refused: {0}")]
    Unrecorded(String),
    /// The store has been shut down.
    #[error("the store is shut down")]
    Closed,
    /// The store cannot do this now — the disk holding it is full, the database is restarting
    /// or unreachable — and nothing was changed; the same request may succeed later. The
    /// message says which, for the client (it names no path or address).
    #[error("the store is unavailable for now: {0}")]
    Unavailable(String),
    /// The database failed (I/O, driver); details for the log.
    #[error("database error: {0}")]
    Backend(String),
}

/// The storage boundary. Backends implement it; the service layer and tools use it through
/// `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an organization; a taken name is [`StoreError::Conflict`].
    async fn create_org(&self, org: NewOrg) -> Result<Org, StoreError>;

    /// Sets whether an organization is enrolled; `None` when it does not exist.
    async fn set_org_enabled(&self, org_id: Uuid, enabled: bool)
        -> Result<Option<Org>, StoreError>;

    /// Finds an organization by name, or by id when `name_or_id` is a UUID.
    async fn find_org(&self, name_or_id: &str) -> Result<Option<Org>, StoreError>;

    /// Every organization, by name.
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError>;

    /// Appends a batch atomically and durably, assigning `id`, `seq`, `created_at` and `hash`.
    /// Events of one organization keep their batch order. Returns the stored events in batch
    /// order. An unknown organization fails the whole batch.
    async fn append(&self, batch: Vec<Append>) -> Result<Vec<Event>, StoreError>;

    /// Creates an organization exactly as given (its id and created_at kept), for migrations; a
    /// taken id or name is `StoreError::Conflict`.
    async fn restore_org(&self, org: Org) -> Result<Org, StoreError>;

    /// Stores already-chained events exactly as given (id, seq, created_at, hash), for
    /// migrations. They must continue the organization's chain: the first has seq = head + 1,
    /// each hash equals `chain::expected_hash(previous, event)`; otherwise nothing is stored and
    /// the error is `StoreError::Conflict` naming the first offending seq. Atomic like `append`;
    /// rollups, search words and the head are maintained as for `append`.
    ///
    /// Every event must name `org_id` and carry an id the organization does not have yet (both
    /// are a `Conflict` too, naming the seq); an unknown organization is
    /// [`StoreError::UnknownOrg`]; an empty batch stores nothing and succeeds, like an empty
    /// append. Later appends continue the restored chain.
    async fn restore_events(&self, org_id: Uuid, events: Vec<Event>) -> Result<(), StoreError>;

    /// One event of one organization.
    async fn get_event(&self, org_id: Uuid, id: Uuid) -> Result<Option<Event>, StoreError>;

    /// A page of an organization's events.
    async fn query(&self, org_id: Uuid, query: &Query) -> Result<Vec<Event>, StoreError>;

    /// How many events match; may stop at `cap` and say so, when counting exactly would cost
    /// more than a page (backends document when).
    async fn count(&self, org_id: Uuid, filter: &Filter, cap: u64) -> Result<Count, StoreError>;

    /// Counts per action and per actor of the events that match, at most `max_each` of each.
    async fn facets(
        &self,
        org_id: Uuid,
        filter: &Filter,
        max_each: usize,
    ) -> Result<Facets, StoreError>;

    /// Events per UTC day (days since the epoch, ascending) of the events that match.
    async fn daily_counts(
        &self,
        org_id: Uuid,
        filter: &Filter,
    ) -> Result<Vec<(i64, u64)>, StoreError>;

    /// Up to `limit` events with `seq > after_seq`, in `seq` order: the walk `verify` makes.
    async fn events_by_seq(
        &self,
        org_id: Uuid,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// The organization's chain head as the store records it.
    async fn chain_head(&self, org_id: Uuid) -> Result<ChainHead, StoreError>;

    /// Keeps a signed checkpoint.
    async fn save_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError>;

    /// The newest signed checkpoint of an organization.
    async fn latest_checkpoint(&self, org_id: Uuid)
        -> Result<Option<SignedCheckpoint>, StoreError>;

    // ---- the Merkle tree (docs/log-format.md) ----

    /// Stored tiles of an organization's Merkle tree, in the order asked by `(level, index)`,
    /// each as stored (`None` when there is no such tile). Every append, restore and recorded
    /// change grows the tree in its own transaction through `auditlog_core::tree::append`, so
    /// the tiles always cover exactly the events stored. A stored tile may be wider than the
    /// same tile of a smaller tree; `auditlog_core::tree::reader_for` cuts it.
    async fn read_tiles(
        &self,
        org_id: Uuid,
        tiles: &[(u8, u64)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Keeps a signed tree checkpoint (a C2SP signed note) of `size` leaves. A second note for
    /// a size already kept is ignored: the first one stands.
    async fn save_tree_checkpoint(
        &self,
        org_id: Uuid,
        size: u64,
        note: &str,
    ) -> Result<(), StoreError>;

    /// The signed tree checkpoint of the largest size kept for an organization: its size
    /// and note.
    async fn latest_tree_checkpoint(
        &self,
        org_id: Uuid,
    ) -> Result<Option<(u64, String)>, StoreError>;

    /// Bytes the store occupies on disk (for benchmarks and `/metrics`).
    async fn disk_bytes(&self) -> Result<u64, StoreError>;

    /// How far derived state trails the log. Backends that maintain everything inside the
    /// append's transaction have no lag.
    async fn index_lag(&self) -> Result<IndexLag, StoreError> {
        Ok(IndexLag::default())
    }

    /// Discards every piece of derived state and rebuilds it from the stored events; reads
    /// stay correct meanwhile (and slower). Backends without separate derived state do
    /// nothing.
    async fn rebuild_derived(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits until derived state covers every event stored before the call (or the backend
    /// has none).
    async fn wait_indexed(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Finishes queued writes and stops background work; later calls fail with
    /// [`StoreError::Closed`]. Backends without background work need not do anything.
    fn close(&self) {}

    // ---- users, roles and credentials ----

    /// Applies `changes` in order and appends the events `record` builds from what they did,
    /// in one transaction: all of it is stored, or none of it. Without `record`, the changes
    /// alone. Durable when it returns, like [`Store::append`]. The single-change methods
    /// below are this with one change and no record.
    async fn apply(
        &self,
        changes: Vec<Change>,
        record: Option<Recorder>,
    ) -> Result<Applied, StoreError>;

    /// Creates a user; a taken email is [`StoreError::Conflict`].
    async fn create_user(&self, user: User) -> Result<User, StoreError> {
        let applied = self.apply(vec![Change::CreateUser(user)], None).await?;
        match applied.changed.into_iter().next() {
            Some(Changed::User(user)) => Ok(user),
            _ => Err(unexpected()),
        }
    }

    /// Finds a user by email (case-insensitive) or by id.
    async fn find_user(&self, email_or_id: &str) -> Result<Option<User>, StoreError>;

    /// Sets (or clears) a user's password hash.
    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: Option<String>,
    ) -> Result<(), StoreError>;

    /// Gives a user a role in an organization, or removes them with `None`. Returns the role
    /// they had before.
    async fn set_role(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        role: Option<Role>,
    ) -> Result<Option<Role>, StoreError> {
        let change = Change::SetRole {
            org_id,
            user_id,
            role,
        };
        match self
            .apply(vec![change], None)
            .await?
            .changed
            .into_iter()
            .next()
        {
            Some(Changed::Role(before)) => Ok(before),
            _ => Err(unexpected()),
        }
    }

    /// The user's role in the organization.
    async fn role_of(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<Role>, StoreError>;

    /// The organizations a user belongs to, by name.
    async fn memberships(&self, user_id: Uuid) -> Result<Vec<(Org, Role)>, StoreError>;

    /// The members of an organization, by email.
    async fn members(&self, org_id: Uuid) -> Result<Vec<(User, Role)>, StoreError>;

    /// Creates a service account; a taken client id is [`StoreError::Conflict`].
    async fn create_service_account(
        &self,
        account: ServiceAccount,
    ) -> Result<ServiceAccount, StoreError> {
        one_account(self, Change::CreateServiceAccount(account))
            .await?
            .ok_or_else(unexpected)
    }

    /// Finds a service account by client id.
    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError>;

    /// An organization's service accounts, by name.
    async fn service_accounts(&self, org_id: Uuid) -> Result<Vec<ServiceAccount>, StoreError>;

    /// Renames a service account of the organization; `None` when it does not exist there.
    async fn rename_service_account(
        &self,
        org_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let change = Change::RenameServiceAccount {
            org_id,
            id,
            name: name.to_string(),
        };
        one_account(self, change).await
    }

    /// Deletes a service account of the organization and revokes its credentials; `None` when
    /// it does not exist there.
    async fn delete_service_account(
        &self,
        org_id: Uuid,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        one_account(self, Change::DeleteServiceAccount { org_id, id, at }).await
    }

    /// Stores a credential.
    async fn create_credential(&self, credential: Credential) -> Result<Credential, StoreError> {
        one_credential(self, Change::CreateCredential(credential))
            .await?
            .ok_or_else(unexpected)
    }

    /// The credential whose secret hashes to `token_hash`, live or not.
    async fn credential_by_hash(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<Credential>, StoreError>;

    /// Credentials of a kind, optionally only one user's or one organization's, newest first.
    async fn credentials(
        &self,
        kind: CredentialKind,
        user_id: Option<Uuid>,
        org_id: Option<Uuid>,
    ) -> Result<Vec<Credential>, StoreError>;

    /// Revokes a credential; returns it as it was before, `None` when unknown.
    async fn revoke_credential(
        &self,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Option<Credential>, StoreError> {
        one_credential(self, Change::RevokeCredential { id, at }).await
    }

    /// Deletes credentials that expired before `before`; returns how many.
    async fn purge_expired_credentials(&self, before: Timestamp) -> Result<u64, StoreError>;

    // ---- idempotent ingest ----

    /// Like [`Store::append`], but remembers `key` in the same transaction: a later call with
    /// the same scope and request hash stores nothing and returns the ids stored the first
    /// time; the same scope with another request hash is [`StoreError::Conflict`].
    async fn append_idempotent(
        &self,
        batch: Vec<Append>,
        key: IdempotencyKey,
    ) -> Result<AppendOutcome, StoreError>;

    // ---- export jobs ----

    /// Stores a new job.
    async fn create_job(&self, job: ExportJob) -> Result<ExportJob, StoreError> {
        match self
            .apply(vec![Change::CreateJob(job)], None)
            .await?
            .changed
            .into_iter()
            .next()
        {
            Some(Changed::Job(job)) => Ok(job),
            _ => Err(unexpected()),
        }
    }

    /// One job of one organization.
    async fn get_job(&self, org_id: Uuid, id: Uuid) -> Result<Option<ExportJob>, StoreError>;

    /// Writes a job's state back.
    async fn update_job(&self, job: &ExportJob) -> Result<(), StoreError>;

    /// Claims the oldest pending job, or a running one whose heartbeat is older than
    /// `stale_before` (its runner died), for `runner`.
    async fn claim_job(
        &self,
        runner: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<Option<ExportJob>, StoreError>;

    /// Completed jobs whose files expire before `now`.
    async fn expired_jobs(&self, now: Timestamp) -> Result<Vec<ExportJob>, StoreError>;

    // ---- legal holds ----

    /// The organization's legal holds, live and lifted, newest first.
    async fn legal_holds(&self, org_id: Uuid) -> Result<Vec<LegalHold>, StoreError>;

    // ---- retention ----

    /// The organization's retention setting and how far its history was purged.
    async fn retention(&self, org_id: Uuid) -> Result<Retention, StoreError>;

    /// Purges the oldest events of the organization, at most `max_events` of them: the
    /// events just after what was purged before, in `seq` order, up to (not including) the
    /// first that was recorded (`created_at`) at or after `before`, that a live legal hold
    /// protects (`LegalHold::covers_event`; a hold of the whole organization protects all),
    /// or that lies in the last 256 `seq`s' tile of the organization's Merkle tree that is
    /// not full yet, or is its head (both are kept: the tree grows from them). Purged
    /// events leave every read (lists, counts, facets, search, `get_event`,
    /// `events_by_seq`), while the tree's tiles and signed checkpoints stay as they were,
    /// so every proof of the events that remain still verifies. Returns what this call
    /// purged; a call with nothing to purge changes nothing.
    async fn purge(
        &self,
        org_id: Uuid,
        before: Timestamp,
        max_events: u32,
    ) -> Result<PurgeBatch, StoreError>;
}

/// An organization's retention: its own setting and what was purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Days to keep events, as the organization set it; `None` follows the deployment.
    pub days: Option<u32>,
    /// How far its history was purged; `None` while nothing was.
    pub purged: Option<Purged>,
}

/// How far an organization's history was purged: its events `1..=through_seq` are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// The last purged `seq`; the history starts after it.
    pub through_seq: u64,
    /// That event's chain hash, from which the chain of the events that remain verifies
    /// (`auditlog_core::chain::ChainVerifier::resume`).
    pub hash: [u8; 32],
    /// The cutoff of the last purge: events recorded before it may be gone.
    pub before: Timestamp,
}

/// What one [`Store::purge`] call removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeBatch {
    /// Events purged by this call.
    pub events: u64,
    /// The organization's purge state after it; `None` while nothing was ever purged.
    pub purged: Option<Purged>,
}

/// The `seq` up to which an organization's events may be purged when its head is
/// `head_seq`: the end of the last full tile of its Merkle tree (256 leaves) that does not
/// hold the head. The events of the partial tile (and the head) are where the tree and the
/// chain grow from, so they stay.
pub fn purgeable_through(head_seq: u64) -> u64 {
    const TILE: u64 = 256;
    head_seq.saturating_sub(1) / TILE * TILE
}

/// A store answered a change with an outcome of another kind: a backend bug.
fn unexpected() -> StoreError {
    StoreError::Backend("the store answered a change with an outcome of another kind".into())
}

/// Applies one change to a service account, unrecorded.
async fn one_account<S: Store + ?Sized>(
    store: &S,
    change: Change,
) -> Result<Option<ServiceAccount>, StoreError> {
    match store
        .apply(vec![change], None)
        .await?
        .changed
        .into_iter()
        .next()
    {
        Some(Changed::ServiceAccount(account)) => Ok(account),
        _ => Err(unexpected()),
    }
}

/// Applies one change to a credential, unrecorded.
async fn one_credential<S: Store + ?Sized>(
    store: &S,
    change: Change,
) -> Result<Option<Credential>, StoreError> {
    match store
        .apply(vec![change], None)
        .await?
        .changed
        .into_iter()
        .next()
    {
        Some(Changed::Credential(credential)) => Ok(credential),
        _ => Err(unexpected()),
    }
}
