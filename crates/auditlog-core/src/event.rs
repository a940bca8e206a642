//! The event in its three stages: `NewEvent` as a client sends it, `EventBody` once validated,
//! and `Event` once stored (with id, sequence number and chain hash).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Timestamp;

/// An event as a client sends it: the ingest format of the HTTP API and of `auditlog import`.
///
/// Every field but `action_key` is optional. Unknown fields are rejected so that a typo
/// (`actor_mail`) is an error rather than silently lost data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Organization name or id; used by batch ingest when events span organizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Catalog key of the action, e.g. `channel_created`.
    pub action_key: String,
    /// Verb of the action; taken from the catalog when absent, and must agree with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_verb: Option<String>,
    /// Who did it: an id in the emitting platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// Who did it: an email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    /// Who did it: a display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    /// `user` (default), `service_account` or `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_type: Option<String>,
    /// What it was done to: an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// What it was done to: an email address, when the target is a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_email: Option<String>,
    /// What it was done to: a display name (a channel name, a policy name, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// What kind of thing the target is; taken from the catalog when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// The service that emitted the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The client address of the request that caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The user agent of that request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The emitting service's request id, for correlation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Free-form details: a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    /// When it happened (RFC 3339 with offset); the arrival time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Who really acted, when the actor was impersonated: `{"id", "email", "type"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Value>,
    /// What changed: `[{"field", "before", "after"}, …]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Value>,
    /// `success` (default), `failure` or `denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The kind of principal that performed an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    /// A person.
    User,
    /// A machine credential belonging to an organization.
    ServiceAccount,
    /// The platform itself (scheduled jobs, automatic processes).
    System,
}

impl ActorType {
    /// The wire name: `user`, `service_account` or `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::ServiceAccount => "service_account",
            ActorType::System => "system",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<ActorType> {
        match text {
            "user" => Some(ActorType::User),
            "service_account" => Some(ActorType::ServiceAccount),
            "system" => Some(ActorType::System),
            _ => None,
        }
    }
}

/// The validated content of an event: what a store appends. Only [`crate::validate`] makes
/// one from client input, so a store never sees an event that breaks a documented limit.
#[derive(Clone, Debug, PartialEq)]
pub struct EventBody {
    /// Catalog key of the action.
    pub action_key: String,
    /// Verb of the action (from the catalog).
    pub action_verb: Option<String>,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Actor email.
    pub actor_email: Option<String>,
    /// Actor display name.
    pub actor_name: Option<String>,
    /// Actor kind.
    pub actor_type: ActorType,
    /// Target id.
    pub target_id: Option<String>,
    /// Target email.
    pub target_email: Option<String>,
    /// Target display name.
    pub target_name: Option<String>,
    /// Target kind.
    pub target_type: Option<String>,
    /// Emitting service.
    pub service_name: Option<String>,
    /// Client address.
    pub ip_address: Option<IpAddr>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Correlation id.
    pub request_id: Option<String>,
    /// Details: always a JSON object (empty when the client sent none).
    pub meta: Map<String, Value>,
    /// When it happened, UTC, millisecond precision.
    pub occurred_at: Timestamp,
    /// The keys of `meta` whose values are personal data, sorted: like the personal fields,
    /// a version-2 entry commits to them through salted hashes (see [`Entry`]). Set by the
    /// service from the deployment's list; empty unless it names some.
    pub personal_meta: Vec<String>,
    /// What the event says beyond the reference API's fields: the real actor under
    /// impersonation, before and after values, the outcome, the backfill flag, the values
    /// redacted at ingest.
    pub extensions: Extensions,
}

/// The fields an auditor asks for that the reference API has no place for (docs/events.md,
/// "Beyond the reference"). Each is optional; an event without any of them is encoded, hashed
/// and stored exactly as it was before they existed. Its serde form is the stored one (one
/// JSON object, members left out when absent) and the members the API adds to an event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extensions {
    /// Who really acted when `actor` is the account being impersonated (support staff acting
    /// as a customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Impersonator>,
    /// What the action changed: each field's value before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// Whether the action happened, failed, or was refused.
    #[serde(default, skip_serializing_if = "Outcome::is_success")]
    pub outcome: Outcome,
    /// Why it failed or was refused (or any short explanation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set by the service when `occurred_at` lies further before the arrival time than the
    /// deployment's backfill window: the time is the client's, kept as sent, and flagged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfilled: bool,
    /// Set by the service when the deployment's redaction rules replaced values of the event
    /// before it was stored: the path of each (`meta.api_token`, `changes[0].before`), sorted
    /// ([`crate::redact`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

impl Extensions {
    /// True when the event has none of the extensions: nothing to store or encode.
    pub fn is_empty(&self) -> bool {
        *self == Extensions::default()
    }
}

/// The person (or machine) acting as an event's actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impersonator {
    /// Their id in the emitting platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Their email address: personal, committed like `actor_email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `user` (default), `service_account` or `system`.
    #[serde(rename = "type")]
    pub kind: ActorType,
}

/// One field an action changed. `before` and `after` are JSON values (`null` is a value: the
/// field was unset); either may be absent (a field created or removed, or an erased value).
/// Both are personal data: a version-2 entry commits to each (`changes.<i>.before`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    /// The changed field's name, e.g. `role`.
    pub field: String,
    /// Its value before.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub before: Option<Value>,
    /// Its value after.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub after: Option<Value>,
}

/// A member that is present is `Some`, even when it is `null`; an absent one is `None`
/// (through `default`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Whether the action an event records happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened (every event that says nothing else).
    #[default]
    Success,
    /// It was attempted and failed (a wrong password, an export that ran out of space).
    Failure,
    /// It was refused for lack of permission.
    Denied,
}

impl Outcome {
    /// Every outcome, in the order the docs list them.
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

    /// The wire name: `success`, `failure` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// True for [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        *self == Outcome::Success
    }
}

/// The fields of an event that hold personal data. In a version-2 entry each one present is
/// committed to through a salted hash instead of being written in the leaf, so that it can
/// be erased later without changing the leaf (docs/log-format.md §2).
pub const PERSONAL_FIELDS: [&str; 6] = [
    "actor_email",
    "actor_name",
    "target_email",
    "target_name",
    "ip_address",
    "user_agent",
];

/// How an event's leaf is made from it (docs/log-format.md §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Version 1: every field written as it is. Events stored before version 2.
    V1,
    /// Version 2: each personal field present (and each personal meta key) enters the leaf
    /// as a salted commitment.
    V2(Salts),
}

/// The salts of a version-2 entry's committed fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Salts {
    /// One random seed per event, from which each committed field's salt is derived
    /// (`entry::salt`): 16 bytes stored for all of them.
    Seed([u8; 16]),
    /// Each committed field's salt, or, once the field was erased, only its commitment: what
    /// an erasure leaves (keyed `actor_email`, …, or `meta.<key>`).
    Explicit(std::collections::BTreeMap<String, Committed>),
}

/// One committed field of an entry whose salts are explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed {
    /// The field's value is stored, and this is its salt.
    Salt([u8; 16]),
    /// The field was erased: its value and salt are gone, its commitment stays.
    Erased([u8; 32]),
}

/// A stored event: the body plus what the store assigned on append.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// UUIDv7 assigned on append; ids of one organization increase with `seq`.
    pub id: Uuid,
    /// The organization the event belongs to.
    pub org_id: Uuid,
    /// Position in the organization's chain: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// When the store accepted the event.
    pub created_at: Timestamp,
    /// The chain hash after this event (see `docs/chain-format.md`).
    pub hash: [u8; 32],
    /// The validated content.
    pub body: EventBody,
    /// How its leaf is made: version 1 for events stored before version 2.
    pub entry: Entry,
}

/// The fields of [`NewEvent`], in the order the docs list them.
pub const NEW_EVENT_FIELDS: [&str; 21] = [
    "org",
    "action_key",
    "action_verb",
    "actor_id",
    "actor_email",
    "actor_name",
    "actor_type",
    "target_id",
    "target_email",
    "target_name",
    "target_type",
    "service_name",
    "ip_address",
    "user_agent",
    "request_id",
    "meta",
    "occurred_at",
    "impersonator",
    "changes",
    "outcome",
    "reason",
];

impl NewEvent {
    /// Reads a client's JSON value as an event, with an error that names the offending field
    /// (serde's own messages name a position, not a field, for type errors).
    pub fn from_json(value: Value) -> Result<NewEvent, crate::validate::FieldError> {
        use crate::validate::{ErrorKind, FieldError};
        let error = |field: &str, kind, message: String| FieldError {
            field: field.to_string(),
            kind,
            message,
        };
        let Value::Object(members) = &value else {
            return Err(error(
                "",
                ErrorKind::Invalid,
                "an event must be a JSON object".into(),
            ));
        };
        for (key, member) in members {
            if !NEW_EVENT_FIELDS.contains(&key.as_str()) {
                // An empty field name would read as an error about the whole event.
                let shown: String = match key.as_str() {
                    "" => "\"\"".to_string(),
                    _ => key.chars().take(64).collect(),
                };
                return Err(error(
                    &shown,
                    ErrorKind::Invalid,
                    format!(
                        "unknown field; known fields are {}",
                        NEW_EVENT_FIELDS.join(", ")
                    ),
                ));
            }
            let structured = matches!(key.as_str(), "meta" | "impersonator" | "changes");
            if !structured && !matches!(member, Value::String(_) | Value::Null) {
                return Err(error(key, ErrorKind::Invalid, "must be a string".into()));
            }
        }
        // `null` stands for an absent value in every other field; here it is as good as
        // absent too, and must be reported by name rather than as a type error.
        if members.get("action_key").is_none_or(Value::is_null) {
            return Err(error(
                "action_key",
                ErrorKind::Missing,
                "is required".into(),
            ));
        }
        serde_json::from_value(value).map_err(|e| error("", ErrorKind::Invalid, e.to_string()))
    }

    /// Parses one JSON text as an event (see [`NewEvent::from_json`]).
    /// The text must also be I-JSON where a parser would silently pick one reading
    /// ([`crate::strict_json`]: no repeated key, no number a double cannot hold).
    pub fn from_json_str(text: &str) -> Result<NewEvent, crate::validate::FieldError> {
        crate::strict_json::check(text.as_bytes()).map_err(|problem| {
            crate::validate::FieldError {
                field: problem.dotted_path(),
                kind: crate::validate::ErrorKind::Invalid,
                message: problem.message,
            }
        })?;
        let value: Value = serde_json::from_str(text).map_err(|e| crate::validate::FieldError {
            field: String::new(),
            kind: crate::validate::ErrorKind::Invalid,
            // A position is useful, but serde counts lines within this text, not the file's.
            message: format!(
                "not valid JSON ({})",
                e.to_string().replace(" at line 1 column", " at column")
            ),
        })?;
        NewEvent::from_json(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_action_key_is_reported_missing_by_name() {
        let error = NewEvent::from_json_str(r#"{"action_key":null}"#).unwrap_err();
        assert_eq!(error.field, "action_key");
        assert_eq!(error.kind, crate::validate::ErrorKind::Missing);
    }

    #[test]
    fn a_member_with_an_empty_name_is_named_in_the_error() {
        let unknown =
            NewEvent::from_json_str(r#"{"action_key":"channel_created","":"x"}"#).unwrap_err();
        assert_eq!(unknown.field, r#""""#);
        assert!(
            unknown.to_string().starts_with(r#""": unknown field"#),
            "{unknown}"
        );
        let inexact = NewEvent::from_json_str(r#"{"":1e400}"#).unwrap_err();
        assert_eq!(inexact.field, r#""""#);
    }

    #[test]
    fn a_client_cannot_send_what_the_service_sets() {
        for field in ["backfilled", "redacted"] {
            let text = format!(r#"{{"action_key":"channel_created","{field}":["meta.x"]}}"#);
            let error = NewEvent::from_json_str(&text).unwrap_err();
            assert_eq!(error.field, field);
            assert!(error.message.starts_with("unknown field"), "{error}");
        }
    }
}
