//! The per-organization hash chain and its signed checkpoints (docs/design.md, "Integrity";
//! `docs/chain-format.md`).
//!
//! `leaf = SHA-256(0x00 ‖ canonical(event))`, `hash = SHA-256(0x01 ‖ previous hash ‖ leaf)`,
//! with 32 zero bytes as the hash before the first event. A checkpoint signs an
//! organization's `(seq, hash)` at a moment with the server's Ed25519 key, so that removing the
//! newest events, or rewriting the whole chain, is caught too.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::{Entry, Salts};
use crate::{canonical, Event, EventBody, Timestamp};

/// The chain hash before an organization's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Domain-separation prefix of the bytes a checkpoint signature covers.
const CHECKPOINT_CONTEXT: &[u8] = b"auditlog checkpoint v1\n";

/// The canonical JSON object of an event: every stored field except `hash` (which is derived
/// from it) and `org_name` (a rename must not break the chain). Absent values are `null`.
pub fn canonical_value(event: &Event) -> Value {
    let body = &event.body;
    let mut value = json!({
        "id": event.id.to_string(),
        "org_id": event.org_id.to_string(),
        "seq": event.seq,
        "created_at": event.created_at.to_string(),
        "occurred_at": body.occurred_at.to_string(),
        "action_key": body.action_key,
        "action_verb": body.action_verb,
        "actor_id": body.actor_id,
        "actor_email": body.actor_email,
        "actor_name": body.actor_name,
        "actor_type": body.actor_type.as_str(),
        "target_id": body.target_id,
        "target_email": body.target_email,
        "target_name": body.target_name,
        "target_type": body.target_type,
        "service_name": body.service_name,
        "ip_address": body.ip_address.map(|ip| ip.to_string()),
        "user_agent": body.user_agent,
        "request_id": body.request_id,
        "meta": Value::Object(body.meta.clone()),
    });
    let Value::Object(members) = &mut value else {
        unreachable!("an object")
    };
    // The extensions are members only when the event has them, so that an event without
    // them is encoded exactly as before they existed.
    let extensions = &body.extensions;
    if extensions.backfilled {
        members.insert("backfilled".into(), Value::Bool(true));
    }
    if !extensions.changes.is_empty() {
        let changes = serde_json::to_value(&extensions.changes).expect("changes serialize");
        members.insert("changes".into(), changes);
    }
    if let Some(impersonator) = &extensions.impersonator {
        members.insert(
            "impersonator".into(),
            json!({
                "email": impersonator.email,
                "id": impersonator.id,
                "type": impersonator.kind.as_str(),
            }),
        );
    }
    if !extensions.outcome.is_success() {
        members.insert("outcome".into(), extensions.outcome.as_str().into());
    }
    if let Some(reason) = &extensions.reason {
        members.insert("reason".into(), reason.as_str().into());
    }
    if !extensions.redacted.is_empty() {
        members.insert("redacted".into(), extensions.redacted.clone().into());
    }
    value
}

/// Appends the canonical encoding of [`canonical_value`] to `out`, without building the
/// value: the members are written straight from the event in their RFC 8785 order (every
/// key is ASCII, so byte order is UTF-16 order). This is what appends and verification run
/// for a version-1 entry; `canonical_value` stays the readable definition, and a test keeps
/// the two identical.
pub fn encode_canonical(event: &Event, out: &mut Vec<u8>) {
    encode_members(event, None, out)
}

/// [`encode_canonical`], with a version-2 entry's `commitments` (name → base64) and `v`
/// members when given (`crate::entry` nulls the committed members first).
pub(crate) fn encode_members(
    event: &Event,
    commitments: Option<&serde_json::Map<String, Value>>,
    out: &mut Vec<u8>,
) {
    fn key(out: &mut Vec<u8>, first: bool, name: &str) {
        if !first {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    }
    fn text(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            Some(value) => canonical::encode_string(value, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    fn shown(out: &mut Vec<u8>, value: impl std::fmt::Display) {
        use std::io::Write;
        out.push(b'"');
        // Timestamps, UUIDs and IP addresses never need escaping.
        let _ = write!(out, "{value}");
        out.push(b'"');
    }
    let body = &event.body;
    out.push(b'{');
    key(out, true, "action_key");
    canonical::encode_string(&body.action_key, out);
    key(out, false, "action_verb");
    text(out, body.action_verb.as_deref());
    key(out, false, "actor_email");
    text(out, body.actor_email.as_deref());
    key(out, false, "actor_id");
    text(out, body.actor_id.as_deref());
    key(out, false, "actor_name");
    text(out, body.actor_name.as_deref());
    key(out, false, "actor_type");
    canonical::encode_string(body.actor_type.as_str(), out);
    let extensions = &body.extensions;
    if extensions.backfilled {
        key(out, false, "backfilled");
        out.extend_from_slice(b"true");
    }
    if !extensions.changes.is_empty() {
        key(out, false, "changes");
        out.push(b'[');
        for (index, change) in extensions.changes.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let mut first = true;
            out.push(b'{');
            if let Some(after) = &change.after {
                key(out, first, "after");
                canonical::encode_into(after, out);
                first = false;
            }
            if let Some(before) = &change.before {
                key(out, first, "before");
                canonical::encode_into(before, out);
                first = false;
            }
            key(out, first, "field");
            canonical::encode_string(&change.field, out);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(commitments) = commitments {
        key(out, false, "commitments");
        canonical::encode_object(commitments, out);
    }
    key(out, false, "created_at");
    shown(out, event.created_at);
    key(out, false, "id");
    shown(out, event.id.hyphenated());
    if let Some(impersonator) = &extensions.impersonator {
        key(out, false, "impersonator");
        out.push(b'{');
        key(out, true, "email");
        text(out, impersonator.email.as_deref());
        key(out, false, "id");
        text(out, impersonator.id.as_deref());
        key(out, false, "type");
        canonical::encode_string(impersonator.kind.as_str(), out);
        out.push(b'}');
    }
    key(out, false, "ip_address");
    match body.ip_address {
        Some(ip) => shown(out, ip),
        None => out.extend_from_slice(b"null"),
    }
    key(out, false, "meta");
    canonical::encode_object(&body.meta, out);
    key(out, false, "occurred_at");
    shown(out, body.occurred_at);
    key(out, false, "org_id");
    shown(out, event.org_id.hyphenated());
    if !extensions.outcome.is_success() {
        key(out, false, "outcome");
        canonical::encode_string(extensions.outcome.as_str(), out);
    }
    if let Some(reason) = &extensions.reason {
        key(out, false, "reason");
        canonical::encode_string(reason, out);
    }
    if !extensions.redacted.is_empty() {
        key(out, false, "redacted");
        out.push(b'[');
        for (index, path) in extensions.redacted.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            canonical::encode_string(path, out);
        }
        out.push(b']');
    }
    key(out, false, "request_id");
    text(out, body.request_id.as_deref());
    key(out, false, "seq");
    canonical::encode_double(event.seq as f64, out);
    key(out, false, "service_name");
    text(out, body.service_name.as_deref());
    key(out, false, "target_email");
    text(out, body.target_email.as_deref());
    key(out, false, "target_id");
    text(out, body.target_id.as_deref());
    key(out, false, "target_name");
    text(out, body.target_name.as_deref());
    key(out, false, "target_type");
    text(out, body.target_type.as_deref());
    key(out, false, "user_agent");
    text(out, body.user_agent.as_deref());
    if commitments.is_some() {
        key(out, false, "v");
        out.push(b'2');
    }
    out.push(b'}');
}

/// `SHA-256(0x00 ‖ canonical(event))`, the canonical form of the event's entry version. An
/// entry whose salts do not match its fields (a value where an erased commitment stands)
/// has no canonical form; its leaf is then a hash no event can have, so it fails to verify.
pub fn leaf_hash(event: &Event) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(896);
    bytes.push(0x00);
    match &event.entry {
        Entry::V1 => encode_canonical(event, &mut bytes),
        Entry::V2(salts) => match crate::entry::commitments(&event.body, salts) {
            Ok(commitments) => crate::entry::encode_canonical_v2(event, &commitments, &mut bytes),
            Err(_) => bytes.extend_from_slice(b"\xffan entry that does not match its salts"),
        },
    }
    Sha256::digest(&bytes).into()
}

/// `SHA-256(0x01 ‖ previous ‖ leaf)`.
pub fn chain_hash(previous: &[u8; 32], leaf: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(previous);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// The hash an event must carry given the hash before it.
pub fn expected_hash(previous: &[u8; 32], event: &Event) -> [u8; 32] {
    chain_hash(previous, &leaf_hash(event))
}

/// One organization's chain head as a store advances it: the one place where an appended
/// event gets its `seq`, id and hash, and where restored events are checked to continue the
/// chain. Both backends run every event through it, inside their serialized append path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// The organization.
    pub org_id: Uuid,
    /// The last `seq` (0 before the first event).
    pub seq: u64,
    /// The hash after it ([`GENESIS`] before the first event).
    pub hash: [u8; 32],
    /// The id of the last event, which the next id must exceed.
    pub last_id: Option<Uuid>,
}

impl ChainTip {
    /// Mints the next event of the chain from a validated body and moves the tip to it (see
    /// [`ChainTip::append_with_leaf`] for `seed`):
    /// `seq` is one more, the id is a UUIDv7 greater than the last one ([`next_id`]), and the
    /// hash chains to the previous one. `random` supplies the id's 62 random bits (the caller
    /// owns the randomness: this crate does no I/O).
    pub fn append(
        &mut self,
        body: EventBody,
        now: Timestamp,
        random: u64,
        seed: [u8; 16],
    ) -> Event {
        self.append_with_leaf(body, now, random, seed).0
    }

    /// [`ChainTip::append`], answering also the event's [`leaf_hash`], which is its leaf in
    /// the organization's Merkle tree: computed once for both. The entry is version 2, its
    /// personal fields committed with salts derived from `seed`, which must be random and
    /// new (the caller owns the randomness).
    pub fn append_with_leaf(
        &mut self,
        body: EventBody,
        now: Timestamp,
        random: u64,
        seed: [u8; 16],
    ) -> (Event, [u8; 32]) {
        let mut event = Event {
            id: next_id(now.as_millis(), self.last_id, random),
            org_id: self.org_id,
            seq: self.seq + 1,
            created_at: now,
            hash: [0; 32],
            body,
            entry: Entry::V2(Salts::Seed(seed)),
        };
        let leaf = leaf_hash(&event);
        event.hash = chain_hash(&self.hash, &leaf);
        self.advance(&event);
        (event, leaf)
    }

    /// Checks that a ready-made event (a migration's) continues the chain exactly, and moves
    /// the tip to it. (Whether its id is new is the store's to check: ids are unique there.)
    pub fn restore(&mut self, event: &Event) -> Result<(), ChainError> {
        let mut verifier = ChainVerifier::resume(self.org_id, self.seq, self.hash);
        verifier.push(event)?;
        self.advance(event);
        Ok(())
    }

    fn advance(&mut self, event: &Event) {
        self.seq = event.seq;
        self.hash = event.hash;
        // Ids minted later must exceed every UUIDv7 of the chain; ids of other versions (a
        // restored history may carry them) say nothing about time and are not compared.
        if event.id.get_version_num() == 7 && self.last_id.is_none_or(|last| event.id > last) {
            self.last_id = Some(event.id);
        }
    }
}

/// The next event id of an organization: a UUIDv7 (48 bits of milliseconds, a 12-bit counter
/// for ids in the same millisecond, 62 random bits) strictly greater than `last`, even when
/// the clock is behind the one that minted `last` (another replica's, or a restored event's).
pub fn next_id(now_ms: i64, last: Option<Uuid>, random: u64) -> Uuid {
    let mut ms = now_ms.max(0) as u128;
    let mut counter = 0u128;
    if let Some(last) = last.filter(|id| id.get_version_num() == 7) {
        let bits = last.as_u128();
        let (last_ms, last_counter) = (bits >> 80, (bits >> 64) & 0x0fff);
        if ms <= last_ms {
            if last_counter < 0x0fff {
                (ms, counter) = (last_ms, last_counter + 1);
            } else {
                // The counter is exhausted within that millisecond: borrow the next one.
                (ms, counter) = (last_ms + 1, 0);
            }
        }
    }
    Uuid::from_u128(
        ((ms & 0xffff_ffff_ffff) << 80)
            | (0x7 << 76)
            | (counter << 64)
            | (0b10 << 62)
            | (u128::from(random) & 0x3fff_ffff_ffff_ffff),
    )
}

/// The first place where a history stops matching its chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An event of another organization appeared in this organization's chain.
    #[error("event {id} (seq {seq}) belongs to organization {found}, not {expected}")]
    WrongOrganization {
        /// The event.
        id: Uuid,
        /// Its sequence number.
        seq: u64,
        /// The organization being verified.
        expected: Uuid,
        /// The organization the event names.
        found: Uuid,
    },
    /// A sequence number is missing, repeated or out of order (a deleted or reordered event).
    #[error("event {id} has seq {found} where seq {expected} was expected (an event is missing, repeated or out of order)")]
    SequenceGap {
        /// The event found at the position.
        id: Uuid,
        /// The sequence number expected there.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// The stored hash does not match the event's content and its predecessor.
    #[error("event {id} (seq {seq}) does not match its hash: its content or an earlier event was changed")]
    HashMismatch {
        /// The event.
        id: Uuid,
        /// Its sequence number.
        seq: u64,
    },
    /// The chain is shorter than, or differs from, a signed checkpoint.
    #[error("signed checkpoint at seq {seq} does not match the history: {reason}")]
    CheckpointMismatch {
        /// The checkpoint's sequence number.
        seq: u64,
        /// What differs.
        reason: String,
    },
}

/// Checks one organization's events, fed in `seq` order, against their chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    org_id: Uuid,
    last_seq: u64,
    last_hash: [u8; 32],
}

impl ChainVerifier {
    /// A verifier starting at the beginning of the organization's chain.
    pub fn new(org_id: Uuid) -> ChainVerifier {
        ChainVerifier::resume(org_id, 0, GENESIS)
    }

    /// A verifier that trusts the chain up to `(seq, hash)` and checks what follows.
    pub fn resume(org_id: Uuid, seq: u64, hash: [u8; 32]) -> ChainVerifier {
        ChainVerifier {
            org_id,
            last_seq: seq,
            last_hash: hash,
        }
    }

    /// Checks the next event; on success it becomes the new head.
    pub fn push(&mut self, event: &Event) -> Result<(), ChainError> {
        if event.org_id != self.org_id {
            return Err(ChainError::WrongOrganization {
                id: event.id,
                seq: event.seq,
                expected: self.org_id,
                found: event.org_id,
            });
        }
        if event.seq != self.last_seq + 1 {
            return Err(ChainError::SequenceGap {
                id: event.id,
                expected: self.last_seq + 1,
                found: event.seq,
            });
        }
        if expected_hash(&self.last_hash, event) != event.hash {
            return Err(ChainError::HashMismatch {
                id: event.id,
                seq: event.seq,
            });
        }
        self.last_seq = event.seq;
        self.last_hash = event.hash;
        Ok(())
    }

    /// The sequence number and hash of the last verified event (0 and [`GENESIS`] before any).
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.last_seq, self.last_hash)
    }

    /// Checks that a signed checkpoint is consistent with what was verified so far: the chain
    /// must reach the checkpoint's `seq`, and the hash at that `seq` must be the signed one.
    /// Call it when the verified head is at (or past, with `hash_at_seq`) the checkpoint.
    pub fn check_checkpoint(
        checkpoint: &Checkpoint,
        head_seq: u64,
        hash_at_seq: Option<[u8; 32]>,
    ) -> Result<(), ChainError> {
        if head_seq < checkpoint.seq {
            return Err(ChainError::CheckpointMismatch {
                seq: checkpoint.seq,
                reason: format!(
                    "the history ends at seq {head_seq}: events {}..={} were removed",
                    head_seq + 1,
                    checkpoint.seq
                ),
            });
        }
        match hash_at_seq {
            Some(hash) if hash == checkpoint.hash => Ok(()),
            Some(_) => Err(ChainError::CheckpointMismatch {
                seq: checkpoint.seq,
                reason: "the event at that seq has a different hash: the chain was rewritten"
                    .to_string(),
            }),
            None => Err(ChainError::CheckpointMismatch {
                seq: checkpoint.seq,
                reason: "no event has that seq".to_string(),
            }),
        }
    }
}

/// A statement that an organization's chain reached `(seq, hash)` at `signed_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The organization.
    pub org_id: Uuid,
    /// The head's sequence number.
    pub seq: u64,
    /// The head's chain hash.
    pub hash: [u8; 32],
    /// When it was signed.
    pub signed_at: Timestamp,
}

impl Checkpoint {
    /// The exact bytes the signature covers: a context line, then the canonical JSON of
    /// `{hash (hex), org_id, seq, signed_at}`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = CHECKPOINT_CONTEXT.to_vec();
        canonical::encode_into(
            &json!({
                "org_id": self.org_id.to_string(),
                "seq": self.seq,
                "hash": hex::encode(self.hash),
                "signed_at": self.signed_at.to_string(),
            }),
            &mut bytes,
        );
        bytes
    }

    /// Signs the checkpoint.
    pub fn sign(self, key: &SigningKey) -> SignedCheckpoint {
        let signature = key.sign(&self.signing_bytes()).to_bytes();
        SignedCheckpoint {
            key_id: key_id(&key.verifying_key()),
            checkpoint: self,
            signature,
        }
    }
}

/// A checkpoint with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What was signed.
    pub checkpoint: Checkpoint,
    /// Which key signed it ([`key_id`]).
    pub key_id: String,
    /// The Ed25519 signature over [`Checkpoint::signing_bytes`].
    pub signature: [u8; 64],
}

/// Why a signed checkpoint is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Signed by a key other than the one given.
    #[error("checkpoint was signed by key {found}, not by key {expected}")]
    OtherKey {
        /// The key expected.
        expected: String,
        /// The key named in the checkpoint.
        found: String,
    },
    /// The signature does not verify: the checkpoint was altered or forged.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

impl SignedCheckpoint {
    /// Verifies the signature with `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(SignatureError::OtherKey {
                expected,
                found: self.key_id.clone(),
            });
        }
        key.verify(
            &self.checkpoint.signing_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| SignatureError::BadSignature)
    }

    /// The JSON form used in exports and the API.
    pub fn to_wire(&self) -> CheckpointWire {
        CheckpointWire {
            kind: "checkpoint".to_string(),
            org_id: self.checkpoint.org_id,
            seq: self.checkpoint.seq,
            hash: hex::encode(self.checkpoint.hash),
            signed_at: self.checkpoint.signed_at,
            key_id: self.key_id.clone(),
            signature: hex::encode(self.signature),
        }
    }
}

/// The JSON form of a signed checkpoint (`{"type":"checkpoint", …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointWire {
    /// Always `checkpoint`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The organization.
    pub org_id: Uuid,
    /// The head's sequence number.
    pub seq: u64,
    /// The head's chain hash, hex.
    pub hash: String,
    /// When it was signed.
    pub signed_at: Timestamp,
    /// The signing key's id.
    pub key_id: String,
    /// The signature, hex.
    pub signature: String,
}

impl CheckpointWire {
    /// Parses the hex fields back into a [`SignedCheckpoint`].
    pub fn into_signed(self) -> Result<SignedCheckpoint, String> {
        if self.kind != "checkpoint" {
            return Err(format!("type is {:?}, expected \"checkpoint\"", self.kind));
        }
        let hash = decode_hex_array::<32>(&self.hash).ok_or("hash is not 64 hex digits")?;
        let signature =
            decode_hex_array::<64>(&self.signature).ok_or("signature is not 128 hex digits")?;
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint {
                org_id: self.org_id,
                seq: self.seq,
                hash,
                signed_at: self.signed_at,
            },
            key_id: self.key_id,
            signature,
        })
    }
}

/// Decodes exactly `N` bytes of hex.
pub fn decode_hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

/// A short, stable name for a public key: the first 8 bytes of SHA-256 of its 32 bytes, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActorType;

    fn parts(id: Uuid) -> (u128, u128) {
        let bits = id.as_u128();
        (bits >> 80, (bits >> 64) & 0x0fff)
    }

    #[test]
    fn ids_are_v7_and_increase_whatever_the_clock() {
        let first = next_id(1_000, None, u64::MAX);
        assert_eq!(first.get_version_num(), 7);
        assert_eq!(parts(first), (1_000, 0));
        // The same millisecond, and a clock that went back: the counter moves on.
        let second = next_id(1_000, Some(first), 0);
        let third = next_id(999, Some(second), 0);
        assert!(first < second && second < third);
        assert_eq!(parts(third), (1_000, 2));
        // A full counter borrows the next millisecond.
        let full = Uuid::from_u128((1_000u128 << 80) | (0x7 << 76) | (0x0fff << 64));
        let next = next_id(1_000, Some(full), 0);
        assert!(full < next);
        assert_eq!(parts(next), (1_001, 0));
        // A later clock starts the counter over; an id of another version is not compared.
        assert_eq!(parts(next_id(5_000, Some(next), 7)), (5_000, 0));
        assert_eq!(
            parts(next_id(5, Some(Uuid::from_u128(u128::MAX)), 0)),
            (5, 0)
        );
    }

    fn body(action: &str) -> EventBody {
        EventBody {
            action_key: action.into(),
            action_verb: None,
            actor_id: Some("u-1".into()),
            actor_email: None,
            actor_name: None,
            actor_type: ActorType::User,
            target_id: None,
            target_email: None,
            target_name: None,
            target_type: None,
            service_name: None,
            ip_address: None,
            user_agent: None,
            request_id: None,
            meta: serde_json::Map::new(),
            occurred_at: Timestamp::from_millis(1_000).unwrap(),
            personal_meta: Vec::new(),
            extensions: Default::default(),
        }
    }

    #[test]
    fn a_tip_mints_a_chain_that_verifies_and_restores_only_what_continues_it() {
        let org_id = Uuid::from_u128(42);
        let now = Timestamp::from_millis(2_000).unwrap();
        let mut tip = ChainTip {
            org_id,
            seq: 0,
            hash: GENESIS,
            last_id: None,
        };
        let events: Vec<Event> = (0..5)
            .map(|i| tip.append(body("token_created"), now, i, [i as u8; 16]))
            .collect();
        let mut verifier = ChainVerifier::new(org_id);
        for pair in events.windows(2) {
            assert!(pair[0].id < pair[1].id, "ids increase with seq");
        }
        for event in &events {
            verifier.push(event).unwrap();
        }
        assert_eq!(verifier.head(), (tip.seq, tip.hash));

        // Restoring the same events into an empty tip reproduces it; a gap or an edit fails.
        let mut restored = ChainTip {
            org_id,
            seq: 0,
            hash: GENESIS,
            last_id: None,
        };
        assert!(matches!(
            restored.clone().restore(&events[1]),
            Err(ChainError::SequenceGap { .. })
        ));
        let mut edited = events[0].clone();
        edited.body.action_key = "token_revoked".into();
        assert!(matches!(
            restored.clone().restore(&edited),
            Err(ChainError::HashMismatch { .. })
        ));
        for event in &events {
            restored.restore(event).unwrap();
        }
        assert_eq!(restored, tip);
        // The next id minted after a restore still exceeds the restored ones.
        let next = restored.append(
            body("token_revoked"),
            Timestamp::from_millis(1).unwrap(),
            0,
            [9; 16],
        );
        assert!(next.id > events[4].id && next.seq == 6);
    }
}
