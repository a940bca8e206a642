//! The per-organization hash chain and its signed checkpoints (DESIGN.md §5,
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

use crate::{canonical, Event, Timestamp};

/// The chain hash before an organization's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// Domain-separation prefix of the bytes a checkpoint signature covers.
const CHECKPOINT_CONTEXT: &[u8] = b"auditlog checkpoint v1\n";

/// The canonical JSON object of an event: every stored field except `hash` (which is derived
/// from it) and `org_name` (a rename must not break the chain). Absent values are `null`.
pub fn canonical_value(event: &Event) -> Value {
    let body = &event.body;
    json!({
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
    })
}

/// `SHA-256(0x00 ‖ canonical(event))`.
pub fn leaf_hash(event: &Event) -> [u8; 32] {
    let mut bytes = vec![0x00];
    canonical::encode_into(&canonical_value(event), &mut bytes);
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
