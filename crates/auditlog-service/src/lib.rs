//! The application layer of auditlog, shared by the command line and the HTTP server: it
//! validates and appends events, pages through them with cursors, verifies chains against
//! signed checkpoints, and holds the signing key. It talks to storage only through
//! `Arc<dyn Store>`, and knows nothing of HTTP.
//!
//! - [`keys`]: the Ed25519 signing key file.
//! - [`access`]: tokens, principals, authorization, and the administrative actions the
//!   service records about itself.
//! - [`Service`]: ingest, pages, checkpoints and verification.

use std::collections::HashMap;
use std::sync::Arc;

use auditlog_core::chain::{
    ChainError, ChainVerifier, Checkpoint, SignatureError, SignedCheckpoint,
};
use auditlog_core::query::{Cursor, Filter, Order, Position, Query, Start};
use auditlog_core::validate::{validate, FieldError};
use auditlog_core::{Catalog, Event, NewEvent, Timestamp};
use auditlog_store::{Append, AppendOutcome, IdempotencyKey, Org, Store, StoreError};
use ed25519_dalek::SigningKey;
use uuid::Uuid;

pub mod access;
pub mod export;
pub mod jobs;
pub mod keys;

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

/// The service: a store, the catalog and the signing key.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    signing_key: Arc<SigningKey>,
}

impl Service {
    /// Composes a service.
    pub fn new(store: Arc<dyn Store>, catalog: Catalog, signing_key: SigningKey) -> Service {
        Service {
            store,
            catalog: Arc::new(catalog),
            signing_key: Arc::new(signing_key),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
    /// names its organization in `org` (name or id) or falls back to `default_org`.
    pub async fn ingest(
        &self,
        default_org: Option<&Org>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>, IngestError> {
        let batch = self.prepare(default_org, events).await?;
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
        let batch = self.prepare(default_org, events).await?;
        Ok(self.store.append_idempotent(batch, key).await?)
    }

    /// Resolves each event's organization and validates it; every problem is reported.
    async fn prepare(
        &self,
        default_org: Option<&Org>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Append>, IngestError> {
        if events.len() > MAX_BATCH {
            return Err(IngestError::TooLarge(events.len()));
        }
        let now = Timestamp::now();
        let mut orgs: HashMap<String, Option<Uuid>> = HashMap::new();
        let mut batch = Vec::with_capacity(events.len());
        let mut errors = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            let org_id = match event.org.as_deref() {
                Some(name) => {
                    if !orgs.contains_key(name) {
                        let found = self.store.find_org(name).await?.map(|org| org.id);
                        orgs.insert(name.to_string(), found);
                    }
                    match orgs[name] {
                        Some(id) => Some(id),
                        None => {
                            errors.push(EventError {
                                index,
                                error: field_error(
                                    "org",
                                    format!("no organization is named {name:?}"),
                                ),
                            });
                            None
                        }
                    }
                }
                None => {
                    match default_org {
                        Some(org) => Some(org.id),
                        None => {
                            errors.push(EventError { index, error: field_error("org", "is required: name the organization in the event or the request".to_string()) });
                            None
                        }
                    }
                }
            };
            match validate(event, &self.catalog, now) {
                Ok(body) => {
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
        }
        if !errors.is_empty() {
            return Err(IngestError::Invalid(errors));
        }
        Ok(batch)
    }

    /// One page of an organization's events. `cursor`, when given, must come from a page of
    /// the same order; it takes precedence over `offset`.
    pub async fn page(
        &self,
        org: &Org,
        filter: Filter,
        order: Order,
        limit: u32,
        start: Start,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, auditlog_core::query::MAX_LIMIT);
        let events = self
            .store
            .query(
                org.id,
                &Query {
                    filter,
                    order,
                    limit,
                    start,
                },
            )
            .await?;
        let next_cursor = (events.len() == limit as usize).then(|| {
            let last = events.last().expect("a full page is not empty");
            Cursor {
                order,
                position: Position::of(last),
            }
            .encode()
        });
        Ok(Page {
            events,
            next_cursor,
        })
    }

    /// Signs the organization's current chain head and keeps the checkpoint. When the newest
    /// checkpoint already covers the head, it is returned instead of signing again.
    pub async fn checkpoint(&self, org_id: Uuid) -> Result<SignedCheckpoint, StoreError> {
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
        let mut verifier = ChainVerifier::new(org_id);
        let mut hash_at_checkpoint = None;
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
            ChainVerifier::check_checkpoint(&cp.checkpoint, seq, hash_at_checkpoint)?;
        }
        Ok(Verified {
            events: n_events,
            checkpoint_seq: checkpoint.map(|cp| cp.checkpoint.seq),
        })
    }
}

fn field_error(field: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_string(),
        kind: auditlog_core::validate::ErrorKind::Invalid,
        message,
    }
}
