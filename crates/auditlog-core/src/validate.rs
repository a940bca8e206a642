//! The limits every event respects, checked once on the way in (`docs/limits.md` lists them).
//!
//! Validation turns a [`NewEvent`] into an [`EventBody`] or into every [`FieldError`] it
//! finds, each naming the field, so a client can fix a whole batch in one round trip.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    ActorType, Catalog, EventBody, Extensions, FieldChange, Impersonator, NewEvent, Outcome,
    Timestamp,
};

/// Longest email address accepted (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 320;
/// Longest id (`actor_id`, `target_id`, `request_id`).
pub const MAX_ID: usize = 128;
/// Longest type or verb (`actor_type`, `target_type`, `action_verb`, `service_name`); the
/// reference API's schema caps these at 100.
pub const MAX_TYPE: usize = 100;
/// Longest display name (`actor_name`, `target_name`).
pub const MAX_NAME: usize = 256;
/// Longest action key.
pub const MAX_ACTION_KEY: usize = 64;
/// Longest user agent.
pub const MAX_USER_AGENT: usize = 512;
/// Largest `meta`, as compact JSON.
pub const MAX_META_BYTES: usize = 16 * 1024;
/// Deepest nesting of `meta` (the object itself is depth 1).
pub const MAX_META_DEPTH: usize = 16;
/// How far in the future `occurred_at` may be, to allow for clock skew but not for typos.
pub const MAX_FUTURE_MS: i64 = 24 * 60 * 60 * 1000;
/// Most `changes` one event may list.
pub const MAX_CHANGES: usize = 100;
/// Largest `changes`, as compact JSON (the same as `meta`).
pub const MAX_CHANGES_BYTES: usize = 16 * 1024;
/// Longest `reason`.
pub const MAX_REASON: usize = 512;

/// What kind of rule a value broke; stable, machine-readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A required value is missing or empty.
    Missing,
    /// Longer than its limit.
    TooLong,
    /// Not of the required form.
    Invalid,
    /// Nested deeper than allowed.
    TooDeep,
    /// An action the catalog does not know.
    UnknownAction,
    /// A time too far in the future.
    InFuture,
}

impl ErrorKind {
    /// The wire name, e.g. `too_long`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Missing => "missing",
            ErrorKind::TooLong => "too_long",
            ErrorKind::Invalid => "invalid",
            ErrorKind::TooDeep => "too_deep",
            ErrorKind::UnknownAction => "unknown_action",
            ErrorKind::InFuture => "in_future",
        }
    }
}

/// One broken rule, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, e.g. `actor_email` or `meta`.
    pub field: String,
    /// Which rule.
    pub kind: ErrorKind,
    /// A sentence for a person.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    fn new(field: &str, kind: ErrorKind, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            kind,
            message: message.into(),
        }
    }
}

/// Validates `event` against the limits and the catalog, at time `now`.
pub fn validate(
    event: NewEvent,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<EventBody, Vec<FieldError>> {
    let mut errors = Vec::new();
    let NewEvent {
        org: _,
        action_key,
        action_verb,
        actor_id,
        actor_email,
        actor_name,
        actor_type,
        target_id,
        target_email,
        target_name,
        target_type,
        service_name,
        ip_address,
        user_agent,
        request_id,
        meta,
        occurred_at,
        impersonator,
        changes,
        outcome,
        reason,
    } = event;

    let catalog_action = catalog.get(&action_key);
    check_text(&mut errors, "action_key", Some(&action_key), MAX_ACTION_KEY);
    if !action_key.is_empty() && catalog_action.is_none() {
        if !is_action_key(&action_key) {
            errors.push(FieldError::new(
                "action_key",
                ErrorKind::Invalid,
                "must be lowercase letters, digits and underscores, starting with a letter",
            ));
        } else if !catalog.accept_unknown {
            errors.push(FieldError::new(
                "action_key",
                ErrorKind::UnknownAction,
                format!("unknown action {action_key:?}: it is not in this deployment's catalog (GET /api/audit-logs/actions lists it)"),
            ));
        }
    }

    check_text(&mut errors, "action_verb", action_verb.as_deref(), MAX_TYPE);
    let action_verb = match (catalog_action, action_verb) {
        (Some(action), Some(verb)) if verb != action.verb => {
            errors.push(FieldError::new(
                "action_verb",
                ErrorKind::Invalid,
                format!(
                    "{verb:?} disagrees with the catalog's verb {:?} for {action_key}",
                    action.verb
                ),
            ));
            None
        }
        (Some(action), _) => Some(action.verb.clone()),
        (None, verb) => verb,
    };

    check_text(&mut errors, "actor_id", actor_id.as_deref(), MAX_ID);
    check_email(&mut errors, "actor_email", actor_email.as_deref());
    check_text(&mut errors, "actor_name", actor_name.as_deref(), MAX_NAME);
    let actor_type = match actor_type.as_deref() {
        None => ActorType::User,
        Some(text) => ActorType::parse(text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "actor_type",
                ErrorKind::Invalid,
                format!("{text:?} is not one of user, service_account, system"),
            ));
            ActorType::User
        }),
    };

    check_text(&mut errors, "target_id", target_id.as_deref(), MAX_ID);
    check_email(&mut errors, "target_email", target_email.as_deref());
    check_text(&mut errors, "target_name", target_name.as_deref(), MAX_NAME);
    check_text(&mut errors, "target_type", target_type.as_deref(), MAX_TYPE);
    let target_type = target_type.or_else(|| catalog_action.map(|a| a.target_type.clone()));

    check_text(
        &mut errors,
        "service_name",
        service_name.as_deref(),
        MAX_TYPE,
    );
    check_text(
        &mut errors,
        "user_agent",
        user_agent.as_deref(),
        MAX_USER_AGENT,
    );
    check_text(&mut errors, "request_id", request_id.as_deref(), MAX_ID);

    let ip_address = ip_address.and_then(|text| match text.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errors.push(FieldError::new(
                "ip_address",
                ErrorKind::Invalid,
                format!("{:?} is not an IPv4 or IPv6 address", truncate(&text)),
            ));
            None
        }
    });

    let meta = match meta {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(mut map)) => {
            check_meta(&mut errors, &map);
            let mut path = String::from("meta");
            for (key, value) in map.iter_mut() {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                normalize_numbers(&mut errors, &mut path, value);
                path.truncate(len);
            }
            map
        }
        Some(_) => {
            errors.push(FieldError::new(
                "meta",
                ErrorKind::Invalid,
                "must be a JSON object",
            ));
            Map::new()
        }
    };

    let occurred_at = match occurred_at {
        None => now,
        Some(text) => match Timestamp::parse(&text) {
            Ok(at) if at.as_millis() > now.as_millis() + MAX_FUTURE_MS => {
                errors.push(FieldError::new(
                    "occurred_at",
                    ErrorKind::InFuture,
                    format!("{at} is more than a day in the future"),
                ));
                now
            }
            Ok(at) => at,
            Err(e) => {
                errors.push(FieldError::new(
                    "occurred_at",
                    ErrorKind::Invalid,
                    e.to_string(),
                ));
                now
            }
        },
    };

    let extensions = Extensions {
        impersonator: impersonator.and_then(|value| check_impersonator(&mut errors, value)),
        changes: changes.map_or_else(Vec::new, |value| check_changes(&mut errors, value)),
        outcome: match outcome.as_deref() {
            None => Outcome::Success,
            Some(text) => Outcome::parse(text).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "outcome",
                    ErrorKind::Invalid,
                    format!(
                        "{:?} is not one of success, failure, denied",
                        truncate(text)
                    ),
                ));
                Outcome::Success
            }),
        },
        reason: {
            check_text(&mut errors, "reason", reason.as_deref(), MAX_REASON);
            reason
        },
        // The service flags a backlog and redacts by its rules; a client does neither.
        backfilled: false,
        redacted: Vec::new(),
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(EventBody {
        action_key,
        action_verb,
        actor_id,
        actor_email,
        actor_name,
        actor_type,
        target_id,
        target_email,
        target_name,
        target_type,
        service_name,
        ip_address,
        user_agent,
        request_id,
        meta,
        occurred_at,
        // The deployment's personal meta keys are the service's to mark.
        personal_meta: Vec::new(),
        extensions,
    })
}

/// `impersonator`: an object with `id` and/or `email`, and an optional `type`.
fn check_impersonator(errors: &mut Vec<FieldError>, value: Value) -> Option<Impersonator> {
    let Value::Object(members) = value else {
        if !value.is_null() {
            errors.push(FieldError::new(
                "impersonator",
                ErrorKind::Invalid,
                "must be an object: {\"id\", \"email\", \"type\"}",
            ));
        }
        return None;
    };
    let before = errors.len();
    let mut text = |name: &str| -> Option<String> {
        match members.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                errors.push(FieldError::new(
                    &format!("impersonator.{name}"),
                    ErrorKind::Invalid,
                    "must be a string",
                ));
                None
            }
        }
    };
    let (id, email, kind) = (text("id"), text("email"), text("type"));
    if let Some(unknown) = members
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "email" | "type"))
    {
        let shown: String = unknown.chars().take(64).collect();
        errors.push(FieldError::new(
            &format!("impersonator.{shown}"),
            ErrorKind::Invalid,
            "unknown field; known fields are id, email, type",
        ));
    }
    check_text(errors, "impersonator.id", id.as_deref(), MAX_ID);
    check_email(errors, "impersonator.email", email.as_deref());
    let kind = match kind.as_deref() {
        None => ActorType::User,
        Some(text) => ActorType::parse(text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "impersonator.type",
                ErrorKind::Invalid,
                format!(
                    "{:?} is not one of user, service_account, system",
                    truncate(text)
                ),
            ));
            ActorType::User
        }),
    };
    if id.is_none() && email.is_none() && errors.len() == before {
        errors.push(FieldError::new(
            "impersonator",
            ErrorKind::Missing,
            "needs an id or an email",
        ));
    }
    Some(Impersonator { id, email, kind })
}

/// `changes`: a list of `{"field", "before", "after"}`, each value any JSON (numbers held to
/// the same form as `meta`'s), within [`MAX_CHANGES`] and [`MAX_CHANGES_BYTES`].
fn check_changes(errors: &mut Vec<FieldError>, value: Value) -> Vec<FieldChange> {
    let items = match value {
        Value::Null => return Vec::new(),
        Value::Array(items) => items,
        _ => {
            errors.push(FieldError::new(
                "changes",
                ErrorKind::Invalid,
                "must be a list of {\"field\", \"before\", \"after\"}",
            ));
            return Vec::new();
        }
    };
    if items.len() > MAX_CHANGES {
        errors.push(FieldError::new(
            "changes",
            ErrorKind::TooLong,
            format!("lists {} changes; the limit is {MAX_CHANGES}", items.len()),
        ));
        return Vec::new();
    }
    let mut counter = ByteCount(0);
    let size = serde_json::to_writer(&mut counter, &items)
        .map(|()| counter.0)
        .unwrap_or(usize::MAX);
    if size > MAX_CHANGES_BYTES {
        errors.push(FieldError::new(
            "changes",
            ErrorKind::TooLong,
            format!("is {size} bytes as JSON; the limit is {MAX_CHANGES_BYTES}"),
        ));
        return Vec::new();
    }
    let mut changes = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = format!("changes[{index}]");
        let Value::Object(mut members) = item else {
            errors.push(FieldError::new(
                &at,
                ErrorKind::Invalid,
                "must be an object: {\"field\", \"before\", \"after\"}",
            ));
            continue;
        };
        if let Some(unknown) = members
            .keys()
            .find(|k| !matches!(k.as_str(), "field" | "before" | "after"))
        {
            let shown: String = unknown.chars().take(64).collect();
            errors.push(FieldError::new(
                &format!("{at}.{shown}"),
                ErrorKind::Invalid,
                "unknown field; known fields are field, before, after",
            ));
        }
        let field = match members.remove("field") {
            Some(Value::String(field)) => {
                check_text(errors, &format!("{at}.field"), Some(&field), MAX_TYPE);
                field
            }
            None | Some(Value::Null) => {
                errors.push(FieldError::new(
                    &format!("{at}.field"),
                    ErrorKind::Missing,
                    "is required",
                ));
                continue;
            }
            Some(_) => {
                errors.push(FieldError::new(
                    &format!("{at}.field"),
                    ErrorKind::Invalid,
                    "must be a string",
                ));
                continue;
            }
        };
        let mut side = |name: &str| {
            let mut value = members.remove(name)?;
            let mut path = format!("{at}.{name}");
            let depth = 1 + depth_of(&value);
            if depth > MAX_META_DEPTH {
                errors.push(FieldError::new(
                    &path,
                    ErrorKind::TooDeep,
                    format!("is nested {depth} levels deep; the limit is {MAX_META_DEPTH}"),
                ));
            }
            normalize_numbers(errors, &mut path, &mut value);
            Some(value)
        };
        let (before, after) = (side("before"), side("after"));
        changes.push(FieldChange {
            field,
            before,
            after,
        });
    }
    changes
}

/// The rule every email address follows, in an event and on an account (a user that the
/// service creates is recorded with this email, so both must accept the same addresses).
pub fn check_email_address(field: &str, value: &str) -> Result<(), FieldError> {
    let mut errors = Vec::new();
    check_email(&mut errors, field, Some(value));
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// The rule every display name follows: a user's, a service account's or a token's name is
/// recorded as an event's `actor_name` or `target_name`, so it obeys that field's limits.
pub fn check_display_name(field: &str, value: &str) -> Result<(), FieldError> {
    let mut errors = Vec::new();
    check_text(&mut errors, field, Some(value), MAX_NAME);
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// True for `snake_case` keys: a lowercase letter, then lowercase letters, digits, `_`.
pub fn is_action_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && key.len() <= MAX_ACTION_KEY
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, max_chars: usize) {
    let Some(value) = value else { return };
    if value.is_empty() {
        errors.push(FieldError::new(
            field,
            ErrorKind::Missing,
            "must not be empty (leave it out instead)",
        ));
    } else if value.chars().count() > max_chars {
        errors.push(FieldError::new(
            field,
            ErrorKind::TooLong,
            format!("is longer than {max_chars} characters"),
        ));
    } else if value.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            ErrorKind::Invalid,
            "must not contain control characters",
        ));
    }
}

fn check_email(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) {
    let before = errors.len();
    check_text(errors, field, value, MAX_EMAIL);
    let Some(value) = value else { return };
    if errors.len() > before {
        return;
    }
    let well_formed = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !well_formed {
        errors.push(FieldError::new(
            field,
            ErrorKind::Invalid,
            format!("{:?} is not an email address", truncate(value)),
        ));
    }
}

/// Counts the bytes written to it and keeps none: measuring `meta` must not copy it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_meta(errors: &mut Vec<FieldError>, meta: &Map<String, Value>) {
    let mut counter = ByteCount(0);
    let size = serde_json::to_writer(&mut counter, meta)
        .map(|()| counter.0)
        .unwrap_or(usize::MAX);
    if size > MAX_META_BYTES {
        errors.push(FieldError::new(
            "meta",
            ErrorKind::TooLong,
            format!("is {size} bytes as JSON; the limit is {MAX_META_BYTES}"),
        ));
    }
    let depth = 1 + meta.values().map(depth_of).max().unwrap_or(0);
    if depth > MAX_META_DEPTH {
        errors.push(FieldError::new(
            "meta",
            ErrorKind::TooDeep,
            format!("is nested {depth} levels deep; the limit is {MAX_META_DEPTH}"),
        ));
    }
}

/// Puts every number of `value` in the one form validation stores ([`normalize_numbers`]),
/// leaving a number no double holds as it is: how a verifier reads a value back from a file,
/// where `-0` and `0`, or `1.0` and `1`, hash alike.
pub fn normalize_json_numbers(value: &mut Value) {
    normalize_numbers(&mut Vec::new(), &mut String::new(), value);
}

/// Puts every number of `value` in the one form it is stored, returned and exported in: an
/// integral value within ±2^53 as an integer (`1.0` becomes `1`), any other as the double it
/// is. An integer that is not exactly a double (beyond 2^53 and odd, say) is refused, naming
/// its path: RFC 8785 hashes numbers as doubles and could not tell it from its neighbour.
/// (Text read from a client went through [`crate::strict_json`] first, which refuses the
/// decimals a parser would round.)
fn normalize_numbers(errors: &mut Vec<FieldError>, path: &mut String, value: &mut Value) {
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(number) => {
            if let Some(double) = number.as_f64().filter(|_| number.is_f64()) {
                if double.fract() == 0.0 && double.abs() <= EXACT_INTEGERS {
                    *number = serde_json::Number::from(double as i64);
                }
            } else {
                let integer = number
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| number.as_u64().map(i128::from))
                    .unwrap_or_default();
                if (integer as f64) as i128 != integer {
                    errors.push(FieldError::new(
                        path,
                        ErrorKind::Invalid,
                        format!("the number {integer} is not exactly an IEEE 754 double (RFC 7493); send it as a string to keep every digit"),
                    ));
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                normalize_numbers(errors, path, item);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                normalize_numbers(errors, path, item);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn depth_of(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// Shortens an echoed bad value so an error message stays readable.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-06-01T00:00:00Z").unwrap()
    }

    fn base() -> NewEvent {
        NewEvent {
            action_key: "channel_created".into(),
            actor_email: Some("alice@example.com".into()),
            target_name: Some("ml-prod".into()),
            occurred_at: Some("2026-05-31T10:00:00.5+02:00".into()),
            ..NewEvent::default()
        }
    }

    fn errors_of(event: NewEvent) -> Vec<(String, ErrorKind)> {
        validate(event, &Catalog::builtin(), now())
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.kind))
            .collect()
    }

    fn one(field: &str, kind: ErrorKind) -> Vec<(String, ErrorKind)> {
        vec![(field.to_string(), kind)]
    }

    #[test]
    fn fills_verb_and_target_type_from_the_catalog_and_normalizes_time() {
        let body = validate(base(), &Catalog::builtin(), now()).unwrap();
        assert_eq!(body.action_verb.as_deref(), Some("created"));
        assert_eq!(body.target_type.as_deref(), Some("channel"));
        assert_eq!(body.actor_type, ActorType::User);
        assert_eq!(body.occurred_at.to_string(), "2026-05-31T08:00:00.500Z");
        assert!(body.meta.is_empty());
    }

    #[test]
    fn every_rule_names_its_field() {
        let long = |n: usize| Some("x".repeat(n));
        let cases: Vec<(NewEvent, &str, ErrorKind)> = vec![
            (
                NewEvent {
                    action_key: "".into(),
                    ..base()
                },
                "action_key",
                ErrorKind::Missing,
            ),
            (
                NewEvent {
                    action_key: "made_up_action".into(),
                    ..base()
                },
                "action_key",
                ErrorKind::UnknownAction,
            ),
            (
                NewEvent {
                    action_key: "Bad Key".into(),
                    ..base()
                },
                "action_key",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    action_verb: Some("deleted".into()),
                    ..base()
                },
                "action_verb",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    actor_id: long(129),
                    ..base()
                },
                "actor_id",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    actor_id: Some("a\u{0}b".into()),
                    ..base()
                },
                "actor_id",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    actor_id: Some("".into()),
                    ..base()
                },
                "actor_id",
                ErrorKind::Missing,
            ),
            (
                NewEvent {
                    actor_email: Some(format!("{}@example.com", "a".repeat(320))),
                    ..base()
                },
                "actor_email",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    actor_email: Some("not-an-email".into()),
                    ..base()
                },
                "actor_email",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    actor_name: long(257),
                    ..base()
                },
                "actor_name",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    actor_type: Some("robot".into()),
                    ..base()
                },
                "actor_type",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    target_id: long(129),
                    ..base()
                },
                "target_id",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    target_email: Some("a b@c".into()),
                    ..base()
                },
                "target_email",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    target_name: Some("line\nbreak".into()),
                    ..base()
                },
                "target_name",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    target_type: long(101),
                    ..base()
                },
                "target_type",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    service_name: long(101),
                    ..base()
                },
                "service_name",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    ip_address: Some("999.1.1.1".into()),
                    ..base()
                },
                "ip_address",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    user_agent: long(513),
                    ..base()
                },
                "user_agent",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    request_id: long(129),
                    ..base()
                },
                "request_id",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    meta: Some(json!([1, 2])),
                    ..base()
                },
                "meta",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    meta: Some(json!({"blob": "x".repeat(16 * 1024)})),
                    ..base()
                },
                "meta",
                ErrorKind::TooLong,
            ),
            (
                NewEvent {
                    occurred_at: Some("2026-05-31 10:00".into()),
                    ..base()
                },
                "occurred_at",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    occurred_at: Some("2026-05-31T10:00:00".into()),
                    ..base()
                },
                "occurred_at",
                ErrorKind::Invalid,
            ),
            (
                NewEvent {
                    occurred_at: Some("2026-06-02T00:00:01Z".into()),
                    ..base()
                },
                "occurred_at",
                ErrorKind::InFuture,
            ),
        ];
        for (event, field, kind) in cases {
            assert_eq!(errors_of(event), one(field, kind), "case {field} {kind:?}");
        }
    }

    #[test]
    fn meta_depth_is_limited() {
        let mut deep = json!(1);
        for _ in 0..17 {
            deep = json!({ "k": deep });
        }
        assert_eq!(
            errors_of(NewEvent {
                meta: Some(deep),
                ..base()
            }),
            one("meta", ErrorKind::TooDeep)
        );
        let mut ok = json!(1);
        for _ in 0..16 {
            ok = json!({ "k": ok });
        }
        assert!(validate(
            NewEvent {
                meta: Some(ok),
                ..base()
            },
            &Catalog::builtin(),
            now()
        )
        .is_ok());
    }

    #[test]
    fn reports_every_error_at_once() {
        let event = NewEvent {
            actor_email: Some("nope".into()),
            ip_address: Some("x".into()),
            ..base()
        };
        assert_eq!(errors_of(event).len(), 2);
    }

    #[test]
    fn unknown_actions_pass_when_the_deployment_opts_in() {
        let mut catalog = Catalog::builtin();
        catalog.accept_unknown = true;
        let body = validate(
            NewEvent {
                action_key: "widget_frobbed".into(),
                action_verb: Some("frobbed".into()),
                ..base()
            },
            &catalog,
            now(),
        )
        .unwrap();
        assert_eq!(body.action_verb.as_deref(), Some("frobbed"));
        assert_eq!(body.target_type, None);
    }

    #[test]
    fn accepts_ipv6_and_exact_limits() {
        let event = NewEvent {
            ip_address: Some("2001:db8::1".into()),
            actor_id: Some("x".repeat(128)),
            actor_name: Some("é".repeat(256)),
            ..base()
        };
        assert!(validate(event, &Catalog::builtin(), now()).is_ok());
    }

    #[test]
    fn extensions_are_taken_and_each_broken_rule_names_its_path() {
        let event = NewEvent {
            impersonator: Some(json!({"id": "staff-7", "email": "support@example.net"})),
            changes: Some(json!([
                {"field": "role", "before": "member", "after": "admin"},
                {"field": "nickname", "before": null},
                {"field": "quota", "after": 1.0}
            ])),
            outcome: Some("denied".into()),
            reason: Some("not an admin of the organization".into()),
            ..base()
        };
        let body = validate(event, &Catalog::builtin(), now()).unwrap();
        let extensions = &body.extensions;
        let real = extensions.impersonator.as_ref().unwrap();
        assert_eq!(real.email.as_deref(), Some("support@example.net"));
        assert_eq!(real.kind, ActorType::User);
        assert_eq!(extensions.outcome, Outcome::Denied);
        assert_eq!(extensions.changes.len(), 3);
        // A present null is a value (the field was unset); an absent side is none.
        assert_eq!(extensions.changes[1].before, Some(Value::Null));
        assert_eq!(extensions.changes[1].after, None);
        // Numbers take the one form `meta`'s do.
        assert_eq!(extensions.changes[2].after, Some(json!(1)));
        assert!(!extensions.backfilled, "a client cannot flag a backlog");

        let cases = [
            (
                NewEvent {
                    impersonator: Some(json!("support@example.net")),
                    ..base()
                },
                one("impersonator", ErrorKind::Invalid),
            ),
            (
                NewEvent {
                    impersonator: Some(json!({"type": "user"})),
                    ..base()
                },
                one("impersonator", ErrorKind::Missing),
            ),
            (
                NewEvent {
                    impersonator: Some(json!({"email": "nobody", "kind": "user"})),
                    ..base()
                },
                vec![
                    ("impersonator.kind".to_string(), ErrorKind::Invalid),
                    ("impersonator.email".to_string(), ErrorKind::Invalid),
                ],
            ),
            (
                NewEvent {
                    impersonator: Some(json!({"id": "s", "type": "robot"})),
                    ..base()
                },
                one("impersonator.type", ErrorKind::Invalid),
            ),
            (
                NewEvent {
                    changes: Some(json!({"field": "role"})),
                    ..base()
                },
                one("changes", ErrorKind::Invalid),
            ),
            (
                NewEvent {
                    changes: Some(json!([{"field": "role"}, {"before": 1}, 7])),
                    ..base()
                },
                vec![
                    ("changes[1].field".to_string(), ErrorKind::Missing),
                    ("changes[2]".to_string(), ErrorKind::Invalid),
                ],
            ),
            (
                NewEvent {
                    changes: Some(json!([{"field": "role", "old": 1}])),
                    ..base()
                },
                one("changes[0].old", ErrorKind::Invalid),
            ),
            (
                NewEvent {
                    changes: Some(json!([{"field": "n", "after": 9007199254740993u64}])),
                    ..base()
                },
                one("changes[0].after", ErrorKind::Invalid),
            ),
            (
                NewEvent {
                    changes: Some(Value::Array(vec![json!({"field": "f"}); MAX_CHANGES + 1])),
                    ..base()
                },
                one("changes", ErrorKind::TooLong),
            ),
            (
                NewEvent {
                    changes: Some(json!([{"field": "f", "after": "x".repeat(MAX_CHANGES_BYTES)}])),
                    ..base()
                },
                one("changes", ErrorKind::TooLong),
            ),
            (
                NewEvent {
                    outcome: Some("maybe".into()),
                    ..base()
                },
                one("outcome", ErrorKind::Invalid),
            ),
            (
                NewEvent {
                    reason: Some("r".repeat(MAX_REASON + 1)),
                    ..base()
                },
                one("reason", ErrorKind::TooLong),
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(errors_of(event.clone()), expected, "{event:?}");
        }
    }
}
