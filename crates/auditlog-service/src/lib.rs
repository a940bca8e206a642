//! The application layer of auditlog, shared by the command line and the HTTP server: it
//! validates and appends events, pages through them with cursors, verifies chains against
//! signed checkpoints, and holds the signing key. It talks to storage only through
//! `Arc<dyn Store>`, and knows nothing of HTTP.
//!
//! - [`keys`]: the Ed25519 signing key file.
//! - [`grant`]: who may do what, decided once; the grants every read takes.
//! - [`read`]: the reads of an organization's data (pages, counts, facets, one event).
//! - [`access`]: tokens, principals, sessions, and the administrative actions the service
//!   records about itself.
//! - [`operator`]: what only the operator's commands do.
//! - [`log`]: each organization's log as a transparency log: signed tree checkpoints,
//!   tiles, inclusion and consistency proofs.
//! - [`rejections`]: counts of the events ingest requests had refused by validation, per
//!   organization and action, in memory.
//! - [`Service`]: ingest, checkpoints and verification.
//!
//! The store is private to this crate: the server and the command line reach it only
//! through these methods, so the rules above are the only way in.

use std::collections::HashMap;
use std::sync::Arc;

use auditlog_core::chain::{
    ChainError, ChainVerifier, Checkpoint, SignatureError, SignedCheckpoint,
};
use auditlog_core::redact::RedactionRules;
use auditlog_core::validate::{validate, FieldError};
use auditlog_core::{Catalog, Event, NewEvent, Timestamp};
use auditlog_store::{Append, AppendOutcome, IdempotencyKey, Org, Store, StoreError};

use crate::access::{AccessError, Principal};
use crate::grant::ReadableOrg;
use ed25519_dalek::SigningKey;
use uuid::Uuid;

pub mod access;
pub mod allocator;
pub mod compliance;
pub mod export;
pub mod grant;
pub mod jobs;
pub mod keys;
pub mod log;
pub mod operator;
pub mod read;
pub mod rejections;
pub mod retention;

/// Most events one ingest call accepts.
pub const MAX_BATCH: usize = 1000;

/// One event of a batch that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// Position of the event in its batch (0-based), or its line number for imports.
    pub index: usize,
    /// What is wrong with it.
    pub error: FieldError,
}

/// Why an ingest stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// At least one event is invalid; every problem found is listed.
    #[error("{} invalid event(s); first: event {}: {}", .0.len(), .0[0].index, .0[0].error)]
    Invalid(Vec<EventError>),
    /// More events than [`MAX_BATCH`].
    #[error("a batch holds at most {MAX_BATCH} events; this one has {0}")]
    TooLarge(usize),
    /// The credential may not write these events (a read credential, or an ingest key bound
    /// to another organization), or the named organization does not exist.
    #[error(transparent)]
    Refused(AccessError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of events and the cursor that continues it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The events, in the requested order.
    pub events: Vec<Event>,
    /// Continues after the last event; `None` when this page is the last.
    pub next_cursor: Option<String>,
}

/// Where a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// An event does not match the chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The head the store records is not where the events end.
    #[error("the recorded chain head (seq {recorded}) differs from the last event (seq {found}): events were removed or the head was altered")]
    HeadMismatch {
        /// The head seq recorded.
        recorded: u64,
        /// The last verified seq.
        found: u64,
    },
    /// A stored checkpoint does not carry a valid signature.
    #[error("the checkpoint at seq {seq} is not validly signed: {error}")]
    Signature {
        /// The checkpoint's seq.
        seq: u64,
        /// Why.
        error: SignatureError,
    },
    /// The store failed while reading.
    #[error("cannot read the store: {0}")]
    Store(String),
}

/// What a successful verification of one organization covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Events checked.
    pub events: u64,
    /// The seq of the signed checkpoint checked against, if there is one.
    pub checkpoint_seq: Option<u64>,
}

/// Marks which of a validated body's `meta` keys are personal: those of `keys` it has, sorted.
pub(crate) fn mark_personal_meta(keys: &[String], body: &mut auditlog_core::EventBody) {
    body.personal_meta = keys
        .iter()
        .filter(|key| body.meta.contains_key(key.as_str()))
        .cloned()
        .collect();
}

/// The service: a store, the catalog and the signing key.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    /// The catalog and the actions the service records about itself that it lacks
    /// (`Catalog::with_own_actions`): what the service's own records are validated against.
    own_catalog: Arc<Catalog>,
    signing_key: Arc<SigningKey>,
    /// The key name of signed tree checkpoints and the prefix of their origins (`log`).
    log_name: Arc<str>,
    /// The `meta` keys whose values are personal data: committed with salts in each entry,
    /// like the personal fields (docs/log-format.md §2).
    personal_meta: Arc<Vec<String>>,
    /// Recently authenticated credentials, shared by every clone of the service.
    principals: Arc<access::PrincipalCache>,
    /// Hashed tiles above level 0, shared by every clone of the service.
    upper_tiles: Arc<log::UpperTiles>,
    /// How long before its arrival an event may have happened without being flagged
    /// `backfilled`, in milliseconds.
    backfill_window_ms: i64,
    /// The deployment's redaction rules: the values they match are replaced before an event
    /// is stored or hashed (`auditlog_core::redact`).
    redaction: Arc<RedactionRules>,
    /// The failed and refused attempts recorded lately, by source: at most one record per
    /// source, organization and action a window (`access::AttemptRecords`).
    attempts: Arc<access::AttemptRecords>,
    /// Actions not taken because their audit record could not be made (fail closed).
    unrecorded: Arc<std::sync::atomic::AtomicU64>,
    /// Events ingest requests had refused, shared by every clone of the service.
    rejections: Arc<rejections::Rejections>,
    /// How long organizations' events are kept (`retention`).
    retention: retention::RetentionPolicy,
}

/// The backfill window a service starts with: a day.
pub const DEFAULT_BACKFILL_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Service {
    /// Composes a service.
    pub fn new(store: Arc<dyn Store>, catalog: Catalog, signing_key: SigningKey) -> Service {
        Service {
            store,
            own_catalog: Arc::new(catalog.with_own_actions()),
            catalog: Arc::new(catalog),
            signing_key: Arc::new(signing_key),
            log_name: Arc::from(log::DEFAULT_LOG_NAME),
            personal_meta: Arc::default(),
            principals: Arc::default(),
            upper_tiles: Arc::default(),
            backfill_window_ms: DEFAULT_BACKFILL_WINDOW.as_millis() as i64,
            redaction: Arc::default(),
            attempts: Arc::default(),
            unrecorded: Arc::default(),
            rejections: Arc::default(),
            retention: retention::RetentionPolicy::default(),
        }
    }

    /// How many actions were refused since start because their audit record could not be
    /// made: the change was undone and the caller answered 503 (the `/metrics` counter
    /// `auditlog_unrecorded_actions_total`).
    pub fn unrecorded_actions(&self) -> u64 {
        self.unrecorded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The service with `window` as its backfill window: an event whose `occurred_at` lies
    /// further before its arrival is stored with its own time, as always, and flagged
    /// `backfilled` (docs/events.md).
    pub fn with_backfill_window(mut self, window: std::time::Duration) -> Service {
        self.backfill_window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// The service with `rules` as the deployment's redaction rules: every event it stores,
    /// from any path, has the values they match replaced by `[REDACTED]` first, and lists
    /// their paths in `redacted` (docs/events.md, "Redaction at ingest").
    pub fn with_redaction(mut self, rules: RedactionRules) -> Service {
        self.redaction = Arc::new(rules);
        self
    }

    /// The redaction rules in force.
    pub fn redaction(&self) -> &RedactionRules {
        &self.redaction
    }

    /// The service with `keys` as the `meta` keys that hold personal data in this
    /// deployment's events (an email, a phone number): each event's values under them are
    /// committed with salts in its entry, so that they can be erased without breaking a
    /// proof.
    pub fn with_personal_meta(mut self, keys: &[String]) -> Service {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        self.personal_meta = Arc::new(keys);
        self
    }

    /// The service with `name` as its transparency logs' key name and origin prefix
    /// (`<name>/<organization id>`), such as the deployment's host name. It must be a
    /// signed-note key name: no spaces and no `+`.
    pub fn with_log_name(mut self, name: &str) -> Result<Service, String> {
        if !auditlog_core::note::is_valid_key_name(name) {
            return Err(format!(
                "{name:?} cannot name a log: use letters, digits and punctuation other than +, \
                 without spaces"
            ));
        }
        self.log_name = Arc::from(name);
        Ok(self)
    }

    /// The store underneath: private to this crate, so that every use of it passes through
    /// the rules of the service.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.find_org("readyz-probe").await.map(|_| ())
    }

    /// How far derived state (indexes, rollups, search postings) trails the stored events
    /// (for `/readyz` and `/metrics`; reads are complete whatever it is).
    pub async fn index_lag(&self) -> Result<auditlog_store::IndexLag, StoreError> {
        self.store.index_lag().await
    }

    /// The store's size on disk in bytes, where it knows it (for `/metrics`).
    pub async fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.store.disk_bytes().await
    }

    /// Stops the store (the embedded one's writer finishes what it holds). The process that
    /// composed the service calls it once, when shutting down.
    pub fn close(&self) {
        self.store.close();
    }

    /// The catalog in force.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// Validates a batch and, when every event is valid, appends it atomically. Each event
    /// names its organization in `org` (name or id) or falls back to `default_org`. This is
    /// the in-process path (imports, the demo, the service's own records); requests from the
    /// network go through [`Service::ingest_request`].
    pub async fn ingest(
        &self,
        default_org: Option<&Org>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>, IngestError> {
        let batch = self
            .prepare(default_org.cloned(), None, OrgCache::new(), events)
            .await?
            .valid()?;
        Ok(self.store.append(batch).await?)
    }

    /// Like [`Service::ingest`], remembering `key`: a retry with the same key and request
    /// stores nothing and answers with the ids stored the first time.
    pub async fn ingest_idempotent(
        &self,
        default_org: Option<&Org>,
        events: Vec<NewEvent>,
        key: IdempotencyKey,
    ) -> Result<AppendOutcome, IngestError> {
        let batch = self
            .prepare(default_org.cloned(), None, OrgCache::new(), events)
            .await?
            .valid()?;
        Ok(self.store.append_idempotent(batch, key).await?)
    }

    /// One ingest request from the network: `principal` must be an ingest key; `org_header`
    /// (the `X-Org-Name` value) names the organization of events that do not name their own.
    /// A key bound to one organization writes only its events, and learns nothing about
    /// whether other organizations exist. Each organization named is looked up once per
    /// request. With `key`, a retry stores nothing and answers with the first ids. Events
    /// refused by validation are counted ([`rejections`]).
    pub async fn ingest_request(
        &self,
        principal: &Principal,
        org_header: Option<&str>,
        events: Vec<NewEvent>,
        key: Option<IdempotencyKey>,
    ) -> Result<AppendOutcome, IngestError> {
        let Principal::Ingest { credential, .. } = principal else {
            return Err(IngestError::Refused(AccessError::Forbidden(
                "only ingest keys may write events".into(),
            )));
        };
        let bound = credential.org_id;
        let mut orgs = OrgCache::new();
        let default_org = self
            .default_ingest_org(bound, org_header, &mut orgs)
            .await?;
        let batch = match self.prepare(default_org, bound, orgs, events).await? {
            Checked::Valid(batch) => batch,
            Checked::Invalid { errors, events } => {
                self.count_invalid_events(events);
                return Err(IngestError::Invalid(errors));
            }
        };
        Ok(match key {
            Some(key) => self.store.append_idempotent(batch, key).await?,
            None => AppendOutcome::Stored(self.store.append(batch).await?),
        })
    }

    /// The organization an ingest request's events belong to when they name none: the one
    /// `org_header` names, or the ingest key's own (`bound`).
    async fn default_ingest_org(
        &self,
        bound: Option<Uuid>,
        org_header: Option<&str>,
        orgs: &mut OrgCache,
    ) -> Result<Option<Org>, IngestError> {
        Ok(match org_header {
            Some(name) => match orgs.find(self, name).await? {
                Some(org) if bound.is_none_or(|bound| bound == org.id) => Some(org),
                Some(_) => return Err(foreign_ingest()),
                // Like reads (and a per-event `org`), a key bound to one organization learns
                // nothing about whether others exist.
                None if bound.is_some() => return Err(foreign_ingest()),
                None => {
                    return Err(IngestError::Refused(AccessError::UnknownOrg(
                        name.to_string(),
                    )))
                }
            },
            None => match bound {
                Some(bound) => orgs.find(self, &bound.to_string()).await?,
                None => None,
            },
        })
    }

    /// Resolves each event's organization (through `orgs`, once per name) and validates it;
    /// every problem is reported, with the events that have them. With `bound`, an event
    /// naming any other organization refuses the whole batch.
    async fn prepare(
        &self,
        default_org: Option<Org>,
        bound: Option<Uuid>,
        mut orgs: OrgCache,
        events: Vec<NewEvent>,
    ) -> Result<Checked, IngestError> {
        if events.len() > MAX_BATCH {
            return Err(IngestError::TooLarge(events.len()));
        }
        let now = Timestamp::now();
        let mut batch = Vec::with_capacity(events.len());
        let mut errors = Vec::new();
        let mut invalid = Vec::new();
        let mut foreign = false;
        for (index, mut event) in events.into_iter().enumerate() {
            // Validation ignores `org` (resolved here); it and the action key are kept to
            // count the event if it is refused.
            let named_org = event.org.take();
            let action_key = event.action_key.clone();
            let first_error = errors.len();
            let org_id = match named_org.as_deref() {
                Some(name) => match orgs.find(self, name).await? {
                    Some(org) if bound.is_none_or(|bound| bound == org.id) => Some(org.id),
                    _ if bound.is_some() => {
                        foreign = true;
                        None
                    }
                    _ => {
                        errors.push(EventError {
                            index,
                            error: field_error("org", format!("no organization is named {name:?}")),
                        });
                        None
                    }
                },
                None => {
                    match &default_org {
                        Some(org) => Some(org.id),
                        None => {
                            errors.push(EventError { index, error: field_error("org", "is required: name the organization in the event or the request".to_string()) });
                            None
                        }
                    }
                }
            };
            match validate(event, &self.catalog, now) {
                Ok(mut body) => {
                    self.redaction.apply(&mut body);
                    mark_personal_meta(&self.personal_meta, &mut body);
                    body.extensions.backfilled = body.occurred_at.as_millis()
                        < now.as_millis().saturating_sub(self.backfill_window_ms);
                    if let Some(org_id) = org_id {
                        batch.push(Append { org_id, body });
                    }
                }
                Err(field_errors) => {
                    errors.extend(
                        field_errors
                            .into_iter()
                            .map(|error| EventError { index, error }),
                    );
                }
            }
            if errors.len() > first_error {
                let org = match (&named_org, org_id) {
                    (_, None) => None,
                    (Some(name), Some(_)) => orgs.find(self, name).await?,
                    (None, Some(_)) => default_org.clone(),
                };
                invalid.push(rejections::InvalidEvent {
                    org,
                    action_key,
                    problem: (&errors[first_error].error).into(),
                });
            }
        }
        // The key's binding is a refusal of the request, before what is wrong with it.
        if foreign {
            return Err(foreign_ingest());
        }
        if !errors.is_empty() {
            return Ok(Checked::Invalid {
                errors,
                events: invalid,
            });
        }
        Ok(Checked::Valid(batch))
    }

    /// Signs the organization's current chain head and keeps the checkpoint. When the newest
    /// checkpoint already covers the head, it is returned instead of signing again.
    pub async fn checkpoint(&self, org: &ReadableOrg) -> Result<SignedCheckpoint, StoreError> {
        let org_id = org.id;
        let head = self.store.chain_head(org_id).await?;
        if let Some(latest) = self.store.latest_checkpoint(org_id).await? {
            if latest.checkpoint.seq == head.seq && latest.checkpoint.hash == head.hash {
                return Ok(latest);
            }
        }
        let signed = Checkpoint {
            org_id,
            seq: head.seq,
            hash: head.hash,
            signed_at: Timestamp::now(),
        }
        .sign(&self.signing_key);
        self.store.save_checkpoint(&signed).await?;
        Ok(signed)
    }

    /// A signed checkpoint of the organization's chain at exactly `seq` (which it must have
    /// reached): the newest one when it is at `seq`, else one signed now with the hash of the
    /// event at `seq`. An export cuts its chain checkpoint where its tree checkpoint is.
    pub async fn checkpoint_at(
        &self,
        org: &ReadableOrg,
        seq: u64,
    ) -> Result<SignedCheckpoint, StoreError> {
        let org_id = org.id;
        if let Some(latest) = self.store.latest_checkpoint(org_id).await? {
            if latest.checkpoint.seq == seq {
                return Ok(latest);
            }
        }
        let hash = match seq {
            0 => auditlog_core::chain::GENESIS,
            _ => self
                .store
                .events_by_seq(org_id, seq - 1, 1)
                .await?
                .into_iter()
                .find(|event| event.seq == seq)
                .map(|event| event.hash)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("organization {org_id} has no event at seq {seq}"))
                })?,
        };
        let signed = Checkpoint {
            org_id,
            seq,
            hash,
            signed_at: Timestamp::now(),
        }
        .sign(&self.signing_key);
        self.store.save_checkpoint(&signed).await?;
        Ok(signed)
    }

    /// Walks an organization's whole chain, checking every event, the recorded head, and the
    /// newest signed checkpoint. `progress` is told how many events were checked so far.
    pub async fn verify_org(
        &self,
        org_id: Uuid,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Verified, VerifyError> {
        let store_err = |e: StoreError| VerifyError::Store(e.to_string());
        let checkpoint = self
            .store
            .latest_checkpoint(org_id)
            .await
            .map_err(store_err)?;
        if let Some(cp) = &checkpoint {
            cp.verify(&self.signing_key.verifying_key())
                .map_err(|error| VerifyError::Signature {
                    seq: cp.checkpoint.seq,
                    error,
                })?;
        }
        // After a purge the chain starts from the hash of the last purged event, which the
        // store keeps; the remaining events must chain from it to the head.
        let purged = self
            .store
            .retention(org_id)
            .await
            .map_err(store_err)?
            .purged;
        let mut verifier = match purged {
            Some(purged) => ChainVerifier::resume(org_id, purged.through_seq, purged.hash),
            None => ChainVerifier::new(org_id),
        };
        let mut hash_at_checkpoint = purged
            .filter(|p| {
                checkpoint
                    .as_ref()
                    .is_some_and(|cp| cp.checkpoint.seq == p.through_seq)
            })
            .map(|p| p.hash);
        let mut n_events = 0u64;
        loop {
            let (after, _) = verifier.head();
            let chunk = self
                .store
                .events_by_seq(org_id, after, 5_000)
                .await
                .map_err(store_err)?;
            if chunk.is_empty() {
                break;
            }
            for event in &chunk {
                verifier.push(event)?;
                if checkpoint
                    .as_ref()
                    .is_some_and(|cp| cp.checkpoint.seq == event.seq)
                {
                    hash_at_checkpoint = Some(event.hash);
                }
            }
            n_events += chunk.len() as u64;
            progress(n_events);
        }
        let (seq, hash) = verifier.head();
        let recorded = self.store.chain_head(org_id).await.map_err(store_err)?;
        if recorded.seq != seq || recorded.hash != hash {
            return Err(VerifyError::HeadMismatch {
                recorded: recorded.seq,
                found: seq,
            });
        }
        if let Some(cp) = &checkpoint {
            if cp.checkpoint.seq == 0 {
                hash_at_checkpoint = Some(auditlog_core::chain::GENESIS);
            }
            // A checkpoint of a purged event cannot be compared with it any more; the tree's
            // consistency proofs still cover it (docs/retention.md).
            let purged_past = purged.is_some_and(|p| cp.checkpoint.seq < p.through_seq);
            if !purged_past {
                ChainVerifier::check_checkpoint(&cp.checkpoint, seq, hash_at_checkpoint)?;
            }
        }
        Ok(Verified {
            events: n_events,
            checkpoint_seq: checkpoint.map(|cp| cp.checkpoint.seq),
        })
    }
}

/// A batch checked by [`Service::prepare`].
enum Checked {
    /// Every event is valid: the batch to append.
    Valid(Vec<Append>),
    /// Some are not: every problem, and each refused event's organization and action.
    Invalid {
        errors: Vec<EventError>,
        events: Vec<rejections::InvalidEvent>,
    },
}

impl Checked {
    /// The batch, or the problems as the in-process paths report them (uncounted: only
    /// requests from the network are).
    fn valid(self) -> Result<Vec<Append>, IngestError> {
        match self {
            Checked::Valid(batch) => Ok(batch),
            Checked::Invalid { errors, .. } => Err(IngestError::Invalid(errors)),
        }
    }
}

/// The organizations one request names, each looked up once.
struct OrgCache {
    found: HashMap<String, Option<Org>>,
}

impl OrgCache {
    fn new() -> OrgCache {
        OrgCache {
            found: HashMap::new(),
        }
    }

    async fn find(&mut self, service: &Service, name: &str) -> Result<Option<Org>, StoreError> {
        if let Some(found) = self.found.get(name) {
            return Ok(found.clone());
        }
        let found = service.store.find_org(name).await?;
        self.found.insert(name.to_string(), found.clone());
        Ok(found)
    }
}

fn foreign_ingest() -> IngestError {
    IngestError::Refused(AccessError::Forbidden(
        "this ingest key may only write events of its own organization".into(),
    ))
}

fn field_error(field: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_string(),
        kind: auditlog_core::validate::ErrorKind::Invalid,
        message,
    }
}
