//! What the `ingest` and `import` targets both assert about an event read from JSON: the two
//! ways the service parses one agree, an error names where the input is wrong, and an accepted
//! event survives every form it is written in (its ingest JSON, its canonical bytes, its wire
//! record) unchanged.

use std::sync::OnceLock;

use auditlog_core::chain::{canonical_value, encode_canonical, ChainTip, ChainVerifier, GENESIS};
use auditlog_core::event::NEW_EVENT_FIELDS;
use auditlog_core::redact::{RedactionRules, REDACTED};
use auditlog_core::validate::{validate, FieldError};
use auditlog_core::wire::EventRecord;
use auditlog_core::{canonical, strict_json, Catalog, EventBody, NewEvent, Timestamp};
use serde_json::Value;
use uuid::Uuid;

/// The instant validation runs at: fixed, so that a run can be repeated.
pub fn now() -> Timestamp {
    Timestamp::parse("2026-06-01T00:00:00Z").unwrap()
}

/// The built-in catalog, and the same one accepting unknown actions: validation has a path
/// for each.
pub fn catalogs() -> &'static [Catalog; 2] {
    static CATALOGS: OnceLock<[Catalog; 2]> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        let mut open = Catalog::builtin();
        open.accept_unknown = true;
        [Catalog::builtin(), open]
    })
}

/// Parses one event the way the HTTP API does: the I-JSON check on the raw bytes, then
/// `serde_json` on the bytes, then [`NewEvent::from_json`].
pub fn parse_like_http(bytes: &[u8]) -> Result<NewEvent, ()> {
    strict_json::check(bytes).map_err(drop)?;
    let value: Value = serde_json::from_slice(bytes).map_err(drop)?;
    NewEvent::from_json(value).map_err(drop)
}

/// Parses `text` as `auditlog import` does and checks what holds for any text, whatever the
/// outcome: it agrees with the HTTP API's parse, and an error says where the text is wrong.
/// Then validates an event against both catalogs and checks the result. Returns the outcome.
pub fn check_event_text(text: &str) -> String {
    let parsed = NewEvent::from_json_str(text);
    assert_eq!(
        parsed.as_ref().ok(),
        parse_like_http(text.as_bytes()).as_ref().ok(),
        "the API and the importer read the same text differently"
    );
    let event = match parsed {
        Err(error) => {
            assert_located(text, &error);
            return format!(
                "refused {} {}",
                known_root(&error.field),
                error.kind.as_str()
            );
        }
        Ok(event) => event,
    };
    let mut outcome = String::from("parsed");
    for catalog in catalogs() {
        match validate(event.clone(), catalog, now()) {
            Err(errors) => {
                assert!(!errors.is_empty(), "validation failed without an error");
                for error in &errors {
                    assert_names_a_field(error);
                    let field = known_root(&error.field);
                    outcome.push_str(&format!(" {field}:{}", error.kind.as_str()));
                }
            }
            Ok(body) => {
                check_accepted(&body, catalog);
                outcome.push_str(" accepted");
            }
        }
    }
    outcome
}

/// A parse error says where the text is wrong: the member (or a path into one) when the text
/// is a JSON object, the position when it is not JSON. Only a text whose value is not an object
/// may be refused as a whole.
pub fn assert_located(text: &str, error: &FieldError) {
    assert!(
        !error.message.trim().is_empty(),
        "an error without a message: {error:?}"
    );
    if !error.field.is_empty() {
        assert!(
            error.to_string().starts_with(&format!("{}: ", error.field)),
            "the printed error does not start with its field: {error}"
        );
    }
    let an_object = text
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with('{');
    match serde_json::from_str::<Value>(text) {
        Err(_) => assert!(
            !error.field.is_empty() || !an_object || error.message.contains("column"),
            "an error for an object that is not JSON names neither a field nor a position: {error:?}"
        ),
        Ok(Value::Object(members)) => {
            // Field errors write the empty key as `""`.
            let named = members.keys().any(|key| {
                let shown: String = match key.as_str() {
                    "" => "\"\"".to_string(),
                    _ => key.chars().take(64).collect(),
                };
                error.field.starts_with(&shown)
            });
            assert!(
                named || error.field == "action_key",
                "an error for a JSON object does not name one of its members: {error:?}"
            );
        }
        Ok(_) => {}
    }
}

/// A validation error names a field of the event, or a path into `meta`, `impersonator` or
/// `changes`.
pub fn assert_names_a_field(error: &FieldError) {
    assert!(
        !error.message.trim().is_empty(),
        "an error without a message: {error:?}"
    );
    let field = error.field.as_str();
    assert!(
        NEW_EVENT_FIELDS.contains(&field)
            || field.starts_with("meta.")
            || field.starts_with("meta[")
            || field.starts_with("impersonator.")
            || field.starts_with("changes["),
        "a validation error names no field of the event: {error:?}"
    );
}

/// The field a path starts in (`meta` for `meta.amounts[2]`), or `other` for a name that is
/// not a field: an outcome must not be as varied as the names a client can make up.
fn known_root(field: &str) -> &str {
    let root = field.split(['.', '[']).next().unwrap_or(field);
    if NEW_EVENT_FIELDS.contains(&root) {
        root
    } else {
        "other"
    }
}

/// What holds for every accepted event: sent again in its ingest form it is accepted again and
/// equal; its canonical bytes are the same each time, agree with the readable definition and
/// are canonical themselves; it chains and verifies; and its wire record reads back as itself.
/// The same holds once redaction rules that match many keys replaced its values, and each
/// path it then lists holds the placeholder.
pub fn check_accepted(body: &EventBody, catalog: &Catalog) {
    let json = serde_json::to_string(&to_new_event(body)).expect("an event serializes");
    let again = NewEvent::from_json_str(&json)
        .unwrap_or_else(|e| panic!("an accepted event, sent again, is refused: {e}\n{json}"));
    let body_again = validate(again, catalog, now()).unwrap_or_else(|errors| {
        panic!("an accepted event, sent again, is invalid: {errors:?}\n{json}")
    });
    assert_eq!(
        &body_again, body,
        "an accepted event changed when sent again: {json}"
    );
    check_stored(body, catalog);

    let rules = RedactionRules::parse(&["*a*", "*e*:*i*", "x"]).expect("valid rules");
    let mut redacted = body.clone();
    rules.apply(&mut redacted);
    let paths = &redacted.extensions.redacted;
    assert!(
        paths.windows(2).all(|pair| pair[0] < pair[1]),
        "redacted paths are not sorted and distinct: {paths:?}"
    );
    if paths.is_empty() {
        assert_eq!(&redacted, body, "nothing redacted, yet the event changed");
    } else {
        let mut holding = std::collections::BTreeSet::new();
        let meta = Value::Object(redacted.meta.clone());
        placeholders(&meta, &mut String::from("meta"), &mut holding);
        for (index, change) in redacted.extensions.changes.iter().enumerate() {
            for (side, value) in [("before", &change.before), ("after", &change.after)] {
                if let Some(value) = value {
                    let mut path = format!("changes[{index}].{side}");
                    placeholders(value, &mut path, &mut holding);
                }
            }
        }
        for path in paths {
            assert!(
                holding.contains(path),
                "{path} does not hold the placeholder: {holding:?}"
            );
        }
        check_stored(&redacted, catalog);
    }
}

/// The paths (as `redacted` writes them) of the values under `path` that are the placeholder.
fn placeholders(value: &Value, path: &mut String, out: &mut std::collections::BTreeSet<String>) {
    let len = path.len();
    match value {
        Value::String(text) if text == REDACTED => {
            out.insert(path.clone());
        }
        Value::Object(members) => {
            for (key, member) in members {
                path.push('.');
                path.push_str(key);
                placeholders(member, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push_str(&format!("[{index}]"));
                placeholders(item, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// That an event chains, has one canonical form agreeing with the readable definition,
/// verifies, and reads back from its wire record.
fn check_stored(body: &EventBody, catalog: &Catalog) {
    let org_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let mut tip = ChainTip {
        org_id,
        seq: 0,
        hash: GENESIS,
        last_id: None,
    };
    let event = tip.append(body.clone(), now(), 0x1234_5678, [0x5a; 16]);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    encode_canonical(&event, &mut first);
    encode_canonical(&event.clone(), &mut second);
    assert_eq!(first, second, "the canonical encoding is not deterministic");
    let reference = canonical::encode(&canonical_value(&event));
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&reference),
        "the direct canonical encoder disagrees with the definition"
    );
    let reparsed: Value = serde_json::from_slice(&first).expect("canonical bytes are JSON");
    assert_eq!(
        String::from_utf8_lossy(&canonical::encode(&reparsed)),
        String::from_utf8_lossy(&first),
        "canonical bytes, canonicalized again, change"
    );
    ChainVerifier::new(org_id)
        .push(&event)
        .expect("a freshly appended event verifies");

    let record = EventRecord::new(&event, Some("acme"), catalog);
    let wire = serde_json::to_string(&record).expect("a record serializes");
    let read: EventRecord = serde_json::from_str(&wire)
        .unwrap_or_else(|e| panic!("a record does not read back: {e}\n{wire}"));
    assert_eq!(read, record, "a record changed through its JSON: {wire}");
    assert_eq!(
        read.to_event().as_ref(),
        Ok(&event),
        "a record does not give back its event: {wire}"
    );
}

/// The ingest form of a validated event, every default written out.
fn to_new_event(body: &EventBody) -> NewEvent {
    NewEvent {
        org: None,
        action_key: body.action_key.clone(),
        action_verb: body.action_verb.clone(),
        actor_id: body.actor_id.clone(),
        actor_email: body.actor_email.clone(),
        actor_name: body.actor_name.clone(),
        actor_type: Some(body.actor_type.as_str().to_string()),
        target_id: body.target_id.clone(),
        target_email: body.target_email.clone(),
        target_name: body.target_name.clone(),
        target_type: body.target_type.clone(),
        service_name: body.service_name.clone(),
        ip_address: body.ip_address.map(|ip| ip.to_string()),
        user_agent: body.user_agent.clone(),
        request_id: body.request_id.clone(),
        meta: Some(Value::Object(body.meta.clone())),
        occurred_at: Some(body.occurred_at.to_string()),
        impersonator: body
            .extensions
            .impersonator
            .as_ref()
            .map(|real| serde_json::to_value(real).expect("an impersonator serializes")),
        changes: Some(serde_json::to_value(&body.extensions.changes).expect("changes serialize")),
        outcome: Some(body.extensions.outcome.as_str().to_string()),
        reason: body.extensions.reason.clone(),
    }
}
