//! The JSON shape of a stored event as the API returns it, exports write it and
//! `auditlog events --format jsonl` prints it: the reference API's `AuditLogResponse` plus our
//! extension fields. It converts back to an [`Event`] so an export can be verified offline.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::chain::decode_hex_array;
use crate::{
    message, ActorType, Catalog, Committed, Entry, Event, EventBody, Extensions, FieldChange,
    Impersonator, Outcome, Salts, Timestamp,
};

/// One event on the wire. Field order is the reference's, then ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Event id (UUIDv7).
    pub id: Uuid,
    /// Organization id.
    pub org_id: Uuid,
    /// Organization name.
    pub org_name: Option<String>,
    /// Action key.
    pub action_key: String,
    /// Action verb.
    pub action_verb: Option<String>,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Actor email.
    pub actor_email: Option<String>,
    /// `user`, `service_account` or `system`.
    pub actor_type: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// Target email.
    pub target_email: Option<String>,
    /// Target type.
    pub target_type: Option<String>,
    /// Emitting service.
    pub service_name: Option<String>,
    /// Details.
    pub meta: Option<Map<String, Value>>,
    /// When it happened.
    pub occurred_at: Option<Timestamp>,
    /// When it was stored.
    pub created_at: Timestamp,
    /// The human sentence.
    pub message: String,
    /// Extension: actor display name.
    pub actor_name: Option<String>,
    /// Extension: target display name.
    pub target_name: Option<String>,
    /// Extension: client address.
    pub ip_address: Option<String>,
    /// Extension: client user agent.
    pub user_agent: Option<String>,
    /// Extension: correlation id.
    pub request_id: Option<String>,
    /// Extension: position in the organization's chain.
    pub seq: u64,
    /// Extension: chain hash after this event, hex.
    pub hash: String,
    /// Extension, in exports: the chain hash before this event, hex, so that each exported
    /// event can be checked on its own (`docs/chain-format.md`, section 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// Extension, in exports: the event's inclusion proof in the organization's Merkle tree,
    /// against the signed tree checkpoint that ends the file (`docs/log-format.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProofWire>,
    /// Extension: how the event's leaf commits to its personal fields (a version-2 entry:
    /// `docs/log-format.md` §2); absent for a version-1 entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryWire>,
    /// Extension: `success`, `failure` or `denied` (`success` when a file predates it).
    #[serde(default)]
    pub outcome: Outcome,
    /// Extension: why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Extension: who really acted, when the actor was impersonated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Impersonator>,
    /// Extension: what changed, field by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// Extension: `occurred_at` lies before the arrival time by more than the deployment's
    /// backfill window (present only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfilled: bool,
    /// Extension: the paths of the values the deployment's rules replaced by `[REDACTED]`
    /// before the event was stored, sorted (present only when there are some).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

/// A version-2 entry's salts as the API and exports show them, so that anyone reading the
/// event can recompute its leaf: the per-event seed, or (after an erasure) each committed
/// field's salt or, for an erased field, its commitment; and the personal meta keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryWire {
    /// The entry's version: 2.
    pub v: u8,
    /// The seed of every salt, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Each committed field's salt or erased commitment, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salts: Option<std::collections::BTreeMap<String, CommittedWire>>,
    /// The keys of `meta` that are committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_meta: Vec<String>,
}

/// One committed field of [`EntryWire::salts`]: `{"salt": "<b64>"}` or
/// `{"erased": "<b64 commitment>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommittedWire {
    /// The field is stored; this is its salt.
    Salt(String),
    /// The field was erased; this is its commitment.
    Erased(String),
}

impl EntryWire {
    /// The wire form of an event's entry; `None` for version 1.
    pub fn of(entry: &Entry, personal_meta: &[String]) -> Option<EntryWire> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let Entry::V2(salts) = entry else {
            return None;
        };
        let (seed, salts) = match salts {
            Salts::Seed(seed) => (Some(b64(seed)), None),
            Salts::Explicit(fields) => (
                None,
                Some(
                    fields
                        .iter()
                        .map(|(name, committed)| {
                            let wire = match committed {
                                Committed::Salt(salt) => CommittedWire::Salt(b64(salt)),
                                Committed::Erased(c) => CommittedWire::Erased(b64(c)),
                            };
                            (name.clone(), wire)
                        })
                        .collect(),
                ),
            ),
        };
        Some(EntryWire {
            v: 2,
            seed,
            salts,
            personal_meta: personal_meta.to_vec(),
        })
    }

    /// The entry and personal meta keys back, for verification.
    pub fn to_entry(&self) -> Result<(Entry, Vec<String>), String> {
        fn bytes<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("entry: {what} is not {N} bytes of base64"))
        }
        if self.v != 2 {
            return Err(format!("entry: version {} is unknown", self.v));
        }
        let salts = match (&self.seed, &self.salts) {
            (Some(seed), None) => Salts::Seed(bytes(seed, "the seed")?),
            (None, Some(fields)) => Salts::Explicit(
                fields
                    .iter()
                    .map(|(name, wire)| {
                        Ok((
                            name.clone(),
                            match wire {
                                CommittedWire::Salt(s) => Committed::Salt(bytes(s, name)?),
                                CommittedWire::Erased(c) => Committed::Erased(bytes(c, name)?),
                            },
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err("entry: give either a seed or salts".to_string()),
        };
        Ok((Entry::V2(salts), self.personal_meta.clone()))
    }
}

/// An inclusion proof as an export carries it: the event's leaf index (its `seq` − 1), the
/// size of the tree it is proven in, and the audit path, bottom up, each hash in standard
/// base64 (RFC 9162 §2.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProofWire {
    /// The leaf index: `seq` − 1.
    pub leaf_index: u64,
    /// Leaves in the tree the proof leads to.
    pub tree_size: u64,
    /// The event's leaf hash, in standard base64: what a standard RFC 9162 verifier (Go's
    /// `tlog.CheckRecord`, say) needs besides the path, without knowing how an entry is
    /// encoded. JSON Lines exports carry it; `auditlog verify` recomputes it from the event's
    /// fields and requires the two to match. Absent from CSV cells and from older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<String>,
    /// The audit path.
    pub hashes: Vec<String>,
}

impl EventRecord {
    /// The wire form of a stored event.
    pub fn new(event: &Event, org_name: Option<&str>, catalog: &Catalog) -> EventRecord {
        let body = &event.body;
        EventRecord {
            id: event.id,
            org_id: event.org_id,
            org_name: org_name.map(str::to_string),
            action_key: body.action_key.clone(),
            action_verb: body.action_verb.clone(),
            actor_id: body.actor_id.clone(),
            actor_email: body.actor_email.clone(),
            actor_type: Some(body.actor_type.as_str().to_string()),
            target_id: body.target_id.clone(),
            target_email: body.target_email.clone(),
            target_type: body.target_type.clone(),
            service_name: body.service_name.clone(),
            meta: Some(body.meta.clone()),
            occurred_at: Some(body.occurred_at),
            created_at: event.created_at,
            message: message::render(event, catalog),
            actor_name: body.actor_name.clone(),
            target_name: body.target_name.clone(),
            ip_address: body.ip_address.map(|ip| ip.to_string()),
            user_agent: body.user_agent.clone(),
            request_id: body.request_id.clone(),
            seq: event.seq,
            hash: hex::encode(event.hash),
            entry: EntryWire::of(&event.entry, &body.personal_meta),
            prev_hash: None,
            inclusion_proof: None,
            outcome: body.extensions.outcome,
            reason: body.extensions.reason.clone(),
            impersonator: body.extensions.impersonator.clone(),
            changes: body.extensions.changes.clone(),
            backfilled: body.extensions.backfilled,
            redacted: body.extensions.redacted.clone(),
        }
    }

    /// [`EventRecord::new`] for an event the caller no longer needs: its strings and `meta`
    /// move into the record instead of being copied (pages and exports write thousands).
    pub fn from_event(event: Event, org_name: Option<&str>, catalog: &Catalog) -> EventRecord {
        let message = message::render(&event, catalog);
        let entry = EntryWire::of(&event.entry, &event.body.personal_meta);
        let body = event.body;
        EventRecord {
            id: event.id,
            org_id: event.org_id,
            org_name: org_name.map(str::to_string),
            action_key: body.action_key,
            action_verb: body.action_verb,
            actor_id: body.actor_id,
            actor_email: body.actor_email,
            actor_type: Some(body.actor_type.as_str().to_string()),
            target_id: body.target_id,
            target_email: body.target_email,
            target_type: body.target_type,
            service_name: body.service_name,
            meta: Some(body.meta),
            occurred_at: Some(body.occurred_at),
            created_at: event.created_at,
            message,
            actor_name: body.actor_name,
            target_name: body.target_name,
            ip_address: body.ip_address.map(|ip| ip.to_string()),
            user_agent: body.user_agent,
            request_id: body.request_id,
            seq: event.seq,
            hash: hex::encode(event.hash),
            entry,
            prev_hash: None,
            inclusion_proof: None,
            outcome: body.extensions.outcome,
            reason: body.extensions.reason,
            impersonator: body.extensions.impersonator,
            changes: body.extensions.changes,
            backfilled: body.extensions.backfilled,
            redacted: body.extensions.redacted,
        }
    }

    /// The stored event this record describes, for offline verification. Fails when a field
    /// the chain covers is missing or malformed.
    pub fn to_event(&self) -> Result<Event, String> {
        let actor_type = match self.actor_type.as_deref() {
            None => ActorType::User,
            Some(text) => {
                ActorType::parse(text).ok_or_else(|| format!("actor_type {text:?} is unknown"))?
            }
        };
        let ip_address = match &self.ip_address {
            None => None,
            Some(text) => Some(
                text.parse()
                    .map_err(|_| format!("ip_address {text:?} is not an address"))?,
            ),
        };
        let (entry, personal_meta) = match &self.entry {
            Some(wire) => wire.to_entry()?,
            None => (Entry::V1, Vec::new()),
        };
        // Numbers in the one form they are stored in: a file may write `0` as `-0` or `1` as
        // `1.0`, which hash alike (RFC 8785) and are the same value.
        let mut meta = self.meta.clone().unwrap_or_default();
        meta.values_mut()
            .for_each(crate::validate::normalize_json_numbers);
        let mut changes = self.changes.clone();
        for change in &mut changes {
            for side in [&mut change.before, &mut change.after]
                .into_iter()
                .flatten()
            {
                crate::validate::normalize_json_numbers(side);
            }
        }
        Ok(Event {
            entry,
            id: self.id,
            org_id: self.org_id,
            seq: self.seq,
            created_at: self.created_at,
            hash: decode_hex_array::<32>(&self.hash).ok_or("hash is not 64 hex digits")?,
            body: EventBody {
                action_key: self.action_key.clone(),
                action_verb: self.action_verb.clone(),
                actor_id: self.actor_id.clone(),
                actor_email: self.actor_email.clone(),
                actor_name: self.actor_name.clone(),
                actor_type,
                target_id: self.target_id.clone(),
                target_email: self.target_email.clone(),
                target_name: self.target_name.clone(),
                target_type: self.target_type.clone(),
                service_name: self.service_name.clone(),
                ip_address,
                user_agent: self.user_agent.clone(),
                request_id: self.request_id.clone(),
                meta,
                occurred_at: self.occurred_at.ok_or("occurred_at is missing")?,
                personal_meta,
                extensions: Extensions {
                    impersonator: self.impersonator.clone(),
                    changes,
                    outcome: self.outcome,
                    reason: self.reason.clone(),
                    backfilled: self.backfilled,
                    redacted: self.redacted.clone(),
                },
            },
        })
    }
}
