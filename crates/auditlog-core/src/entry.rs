//! Version-2 entries (docs/log-format.md §2): an event's personal fields enter its leaf as
//! salted commitments, so that erasing them later (their values and salts) leaves every leaf,
//! chain hash and proof unchanged, and someone holding only the tree's hashes cannot test
//! guesses of a person's email or address against them.
//!
//! - A committed field is one of [`PERSONAL_FIELDS`] that the event has, one of its
//!   `personal_meta` keys (named `meta.<key>`), the impersonator's email
//!   (`impersonator_email`), or a side of a change (`changes[<i>].before`, `…after`).
//! - Its commitment is `SHA-256("auditlog commitment v2" ‖ 0x00 ‖ name ‖ 0x00 ‖ salt ‖ value)`,
//!   where the value is the field's text in UTF-8 (an IP address in its standard text form)
//!   or, for a meta value or a side of a change, its RFC 8785 encoding.
//! - Salts are 16 bytes. Appends store one random seed per event and derive each field's salt
//!   from it ([`salt`]); an erasure stores the salts that remain and the erased commitments
//!   instead ([`Salts::Explicit`]).
//! - The canonical form is version 1's object with every committed member `null` (committed
//!   meta keys and sides of changes left out) and two more members: `commitments` (name →
//!   base64 commitment) and `v` = 2.
//!
//! [`encode_salts`] and [`decode_salts`] are the stored form both backends keep beside the
//! event (`NULL` for a version-1 entry).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::{Committed, Entry, Salts, PERSONAL_FIELDS};
use crate::{canonical, Event, EventBody};

/// Domain-separation prefix of a field's salt derived from an event's seed.
const SALT_CONTEXT: &[u8] = b"auditlog salt v2\0";
/// Domain-separation prefix of a commitment.
const COMMITMENT_CONTEXT: &[u8] = b"auditlog commitment v2\0";
/// The first byte of stored salts that are a seed.
const SEED_FORM: u8 = 0x01;
/// The first byte of stored salts that are explicit.
const EXPLICIT_FORM: u8 = 0x02;
/// The prefix of a personal meta key's field name.
pub const META_PREFIX: &str = "meta.";

/// The salt of field `name` derived from an event's seed.
pub fn salt(seed: &[u8; 16], name: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(SALT_CONTEXT)
        .chain_update(seed)
        .chain_update(name.as_bytes())
        .finalize();
    digest[..16].try_into().expect("16 of 32 bytes")
}

/// The commitment to field `name` holding `value` (its bytes as the module says) with `salt`.
pub fn commitment(name: &str, salt: &[u8; 16], value: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(COMMITMENT_CONTEXT)
        .chain_update(name.as_bytes())
        .chain_update([0u8])
        .chain_update(salt)
        .chain_update(value)
        .finalize()
        .into()
}

/// The value bytes of each committed field the body still holds, by field name.
fn committed_values(body: &EventBody) -> BTreeMap<String, Vec<u8>> {
    let mut values = BTreeMap::new();
    let texts = [
        ("actor_email", body.actor_email.as_deref()),
        ("actor_name", body.actor_name.as_deref()),
        ("target_email", body.target_email.as_deref()),
        ("target_name", body.target_name.as_deref()),
        ("user_agent", body.user_agent.as_deref()),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            values.insert(name.to_string(), value.as_bytes().to_vec());
        }
    }
    if let Some(ip) = body.ip_address {
        values.insert("ip_address".to_string(), ip.to_string().into_bytes());
    }
    for key in &body.personal_meta {
        if let Some(value) = body.meta.get(key) {
            values.insert(format!("{META_PREFIX}{key}"), canonical::encode(value));
        }
    }
    let extensions = &body.extensions;
    if let Some(email) = extensions
        .impersonator
        .as_ref()
        .and_then(|i| i.email.as_ref())
    {
        values.insert(IMPERSONATOR_EMAIL.to_string(), email.as_bytes().to_vec());
    }
    for (index, change) in extensions.changes.iter().enumerate() {
        for (side, value) in [("before", &change.before), ("after", &change.after)] {
            if let Some(value) = value {
                values.insert(change_name(index, side), canonical::encode(value));
            }
        }
    }
    values
}

/// The committed field name of the impersonator's email.
pub const IMPERSONATOR_EMAIL: &str = "impersonator_email";

/// The committed field name of one side (`before` or `after`) of the change at `index`.
pub fn change_name(index: usize, side: &str) -> String {
    format!("changes[{index}].{side}")
}

/// Why an entry's commitments cannot be computed: its salts do not match its fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A field holds a value but the explicit salts have no salt for it.
    #[error("the entry has no salt for its field {0}")]
    NoSalt(String),
    /// An erased field still holds a value.
    #[error("the entry's field {0} is erased but still holds a value")]
    ErasedButPresent(String),
}

/// The commitments of a version-2 entry, by field name.
pub fn commitments(
    body: &EventBody,
    salts: &Salts,
) -> Result<BTreeMap<String, [u8; 32]>, EntryError> {
    let values = committed_values(body);
    let mut out = BTreeMap::new();
    match salts {
        Salts::Seed(seed) => {
            for (name, value) in &values {
                out.insert(name.clone(), commitment(name, &salt(seed, name), value));
            }
        }
        Salts::Explicit(fields) => {
            for (name, value) in &values {
                match fields.get(name) {
                    Some(Committed::Salt(salt)) => {
                        out.insert(name.clone(), commitment(name, salt, value));
                    }
                    Some(Committed::Erased(_)) => {
                        return Err(EntryError::ErasedButPresent(name.clone()))
                    }
                    None => return Err(EntryError::NoSalt(name.clone())),
                }
            }
            for (name, committed) in fields {
                if let Committed::Erased(commitment) = committed {
                    out.insert(name.clone(), *commitment);
                }
            }
        }
    }
    Ok(out)
}

/// Appends the canonical form of a version-2 entry to `out` (the module says which).
pub fn encode_canonical_v2(
    event: &Event,
    commitments: &BTreeMap<String, [u8; 32]>,
    out: &mut Vec<u8>,
) {
    let committed = |name: &str| commitments.contains_key(name);
    // Committed members are null; committed meta keys are left out of `meta`.
    let mut view = event.clone();
    let body = &mut view.body;
    for name in PERSONAL_FIELDS {
        if committed(name) {
            match name {
                "actor_email" => body.actor_email = None,
                "actor_name" => body.actor_name = None,
                "target_email" => body.target_email = None,
                "target_name" => body.target_name = None,
                "ip_address" => body.ip_address = None,
                _ => body.user_agent = None,
            }
        }
    }
    if !body.personal_meta.is_empty() {
        body.meta
            .retain(|key, _| !committed(&format!("{META_PREFIX}{key}")));
    }
    // The extensions' committed values: the impersonator's email is null, a change's
    // committed sides are left out.
    let extensions = &mut body.extensions;
    if let Some(impersonator) = &mut extensions.impersonator {
        if committed(IMPERSONATOR_EMAIL) {
            impersonator.email = None;
        }
    }
    for (index, change) in extensions.changes.iter_mut().enumerate() {
        if committed(&change_name(index, "before")) {
            change.before = None;
        }
        if committed(&change_name(index, "after")) {
            change.after = None;
        }
    }
    let mut members = Map::new();
    for (name, commitment) in commitments {
        members.insert(
            name.clone(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(commitment)),
        );
    }
    crate::chain::encode_members(&view, Some(&members), out);
}

/// The stored form of an entry's salts: `None` for version 1; for a seed, the byte 0x01 and
/// its 16 bytes, followed by the personal meta keys as a JSON array when there are any; for
/// explicit salts, the byte 0x02 and a JSON object (`{"<name>": {"salt": "<b64>"} |
/// {"erased": "<b64>"}, …, "personal_meta": [...]}`). The first byte tells the two apart
/// (a seed is random and may begin with any byte).
pub fn encode_salts(entry: &Entry, personal_meta: &[String]) -> Option<Vec<u8>> {
    let b64 = |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    match entry {
        Entry::V1 => None,
        Entry::V2(Salts::Seed(seed)) => {
            let mut bytes = vec![SEED_FORM];
            bytes.extend_from_slice(seed);
            if !personal_meta.is_empty() {
                bytes.extend(serde_json::to_vec(personal_meta).expect("strings serialize"));
            }
            Some(bytes)
        }
        Entry::V2(Salts::Explicit(fields)) => {
            let mut object = Map::new();
            for (name, committed) in fields {
                let (kind, bytes): (&str, &[u8]) = match committed {
                    Committed::Salt(salt) => ("salt", salt),
                    Committed::Erased(commitment) => ("erased", commitment),
                };
                let mut one = Map::new();
                one.insert(kind.to_string(), b64(bytes));
                object.insert(name.clone(), Value::Object(one));
            }
            object.insert(
                "personal_meta".to_string(),
                Value::Array(personal_meta.iter().cloned().map(Value::String).collect()),
            );
            let mut bytes = vec![EXPLICIT_FORM];
            serde_json::to_writer(&mut bytes, &Value::Object(object)).expect("JSON serializes");
            Some(bytes)
        }
    }
}

/// An entry and its personal meta keys back from [`encode_salts`]'s bytes.
pub fn decode_salts(bytes: Option<&[u8]>) -> Result<(Entry, Vec<String>), String> {
    let Some(bytes) = bytes else {
        return Ok((Entry::V1, Vec::new()));
    };
    let (form, bytes) = bytes
        .split_first()
        .ok_or_else(|| "empty salts".to_string())?;
    if *form == EXPLICIT_FORM {
        let object: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| format!("explicit salts: {e}"))?;
        let mut fields = BTreeMap::new();
        let mut personal_meta = Vec::new();
        for (name, value) in object {
            if name == "personal_meta" {
                personal_meta =
                    serde_json::from_value(value).map_err(|e| format!("personal_meta: {e}"))?;
                continue;
            }
            let decode = |text: &Value| {
                text.as_str()
                    .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            };
            let committed = if let Some(salt) = value.get("salt").and_then(decode) {
                Committed::Salt(
                    salt.try_into()
                        .map_err(|_| format!("{name}: a salt is 16 bytes"))?,
                )
            } else if let Some(commitment) = value.get("erased").and_then(decode) {
                Committed::Erased(
                    commitment
                        .try_into()
                        .map_err(|_| format!("{name}: a commitment is 32 bytes"))?,
                )
            } else {
                return Err(format!("{name}: neither a salt nor an erased commitment"));
            };
            fields.insert(name, committed);
        }
        return Ok((Entry::V2(Salts::Explicit(fields)), personal_meta));
    }
    if *form != SEED_FORM {
        return Err(format!("salts of an unknown form {form}"));
    }
    if bytes.len() < 16 {
        return Err(format!("a seed of {} bytes", bytes.len()));
    }
    let seed: [u8; 16] = bytes[..16].try_into().expect("16 bytes");
    let personal_meta = if bytes.len() > 16 {
        serde_json::from_slice(&bytes[16..]).map_err(|e| format!("personal meta keys: {e}"))?
    } else {
        Vec::new()
    };
    Ok((Entry::V2(Salts::Seed(seed)), personal_meta))
}

/// Erases fields of a version-2 event (the committed names of the module doc): their
/// values and salts go, their commitments stay, so the event's leaf is unchanged. Fields the
/// event does not hold are ignored.
pub fn erase(event: &mut Event, names: &[&str]) -> Result<(), EntryError> {
    let Entry::V2(salts) = &event.entry else {
        // A version-1 leaf holds the values themselves: erasing one would change it.
        return Ok(());
    };
    let all = commitments(&event.body, salts)?;
    let mut fields: BTreeMap<String, Committed> = BTreeMap::new();
    let values = committed_values(&event.body);
    for (name, commitment) in &all {
        let erase_it = names.contains(&name.as_str());
        let committed = match (erase_it, salts) {
            (true, _) => Committed::Erased(*commitment),
            (false, Salts::Seed(seed)) if values.contains_key(name) => {
                Committed::Salt(salt(seed, name))
            }
            (false, Salts::Explicit(existing)) => existing[name].clone(),
            (false, Salts::Seed(_)) => Committed::Erased(*commitment),
        };
        fields.insert(name.clone(), committed);
    }
    let body = &mut event.body;
    for name in names {
        match *name {
            "actor_email" => body.actor_email = None,
            "actor_name" => body.actor_name = None,
            "target_email" => body.target_email = None,
            "target_name" => body.target_name = None,
            "ip_address" => body.ip_address = None,
            "user_agent" => body.user_agent = None,
            IMPERSONATOR_EMAIL => {
                if let Some(impersonator) = &mut body.extensions.impersonator {
                    impersonator.email = None;
                }
            }
            other => {
                if let Some(key) = other.strip_prefix(META_PREFIX) {
                    body.meta.remove(key);
                }
                for (index, change) in body.extensions.changes.iter_mut().enumerate() {
                    if other == change_name(index, "before") {
                        change.before = None;
                    } else if other == change_name(index, "after") {
                        change.after = None;
                    }
                }
            }
        }
    }
    event.entry = Entry::V2(Salts::Explicit(fields));
    Ok(())
}

/// Whom an erasure request is about (GDPR Art. 17): a person known by email, by the id
/// the platform gives them, or both. Emails compare without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// The person's email address.
    pub email: Option<String>,
    /// The person's actor id on the platform.
    pub id: Option<String>,
}

impl Subject {
    fn is_email(&self, email: Option<&str>) -> bool {
        matches!((&self.email, email), (Some(own), Some(other)) if own.eq_ignore_ascii_case(other))
    }

    fn is_id(&self, id: Option<&str>) -> bool {
        matches!((&self.id, id), (Some(own), Some(other)) if own == other)
    }
}

/// The committed fields of `body` that an erasure of `subject` deletes, by committed name
/// (the names [`erase`] takes); empty when the event does not name the subject.
///
/// - The subject is the actor (by id or email): the actor's email and name, and the address
///   and user agent of the request, which were theirs.
/// - The subject is the target: the target's email and name.
/// - The subject impersonated someone: the impersonator's email.
/// - In any of those events, every personal meta key (the deployment declared them
///   personal) and each side of a change whose value mentions the subject's email or one of
///   the names erased with it.
///
/// Ids and fields that are not committed stay: they are in the leaf itself, and erasing
/// them would change it.
pub fn subject_fields(body: &EventBody, subject: &Subject) -> Vec<String> {
    let mut fields = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if subject.is_id(body.actor_id.as_deref()) || subject.is_email(body.actor_email.as_deref()) {
        fields.extend(["actor_email", "actor_name", "ip_address", "user_agent"].map(String::from));
        names.extend(body.actor_name.clone());
    }
    if subject.is_id(body.target_id.as_deref()) || subject.is_email(body.target_email.as_deref()) {
        fields.extend(["target_email", "target_name"].map(String::from));
        names.extend(body.target_name.clone());
    }
    if let Some(impersonator) = &body.extensions.impersonator {
        if subject.is_id(impersonator.id.as_deref())
            || subject.is_email(impersonator.email.as_deref())
        {
            fields.push(IMPERSONATOR_EMAIL.to_string());
        }
    }
    if fields.is_empty() {
        return fields;
    }
    let values = committed_values(body);
    fields.retain(|name| values.contains_key(name));
    fields.extend(
        body.personal_meta
            .iter()
            .map(|key| format!("{META_PREFIX}{key}"))
            .filter(|name| values.contains_key(name)),
    );
    let mentions: Vec<String> = subject
        .email
        .iter()
        .chain(names.iter())
        .filter(|text| !text.is_empty())
        .map(|text| text.to_lowercase())
        .collect();
    for (index, change) in body.extensions.changes.iter().enumerate() {
        for (side, value) in [("before", &change.before), ("after", &change.after)] {
            let Some(value) = value else { continue };
            let text = String::from_utf8_lossy(&canonical::encode(value)).to_lowercase();
            if mentions.iter().any(|m| text.contains(m.as_str())) {
                fields.push(change_name(index, side));
            }
        }
    }
    fields
}

/// The committed fields of an entry that were erased, by name, in order.
pub fn erased_fields(entry: &Entry) -> Vec<&str> {
    match entry {
        Entry::V2(Salts::Explicit(fields)) => fields
            .iter()
            .filter(|(_, committed)| matches!(committed, Committed::Erased(_)))
            .map(|(name, _)| name.as_str())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{leaf_hash, ChainTip, GENESIS};
    use crate::{ActorType, Timestamp};
    use uuid::Uuid;

    fn event(personal_meta: &[&str]) -> Event {
        let mut meta = Map::new();
        meta.insert("phone".into(), Value::from("+1 555 0100"));
        meta.insert("role".into(), Value::from("admin"));
        let body = EventBody {
            action_key: "organization_user_added".into(),
            action_verb: None,
            actor_id: Some("u-1".into()),
            actor_email: Some("alice@example.com".into()),
            actor_name: Some("Alice".into()),
            actor_type: ActorType::User,
            target_id: None,
            target_email: Some("bob@example.com".into()),
            target_name: None,
            target_type: Some("user".into()),
            service_name: None,
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: None,
            request_id: None,
            meta,
            occurred_at: Timestamp::from_millis(1_000).unwrap(),
            personal_meta: personal_meta.iter().map(|k| k.to_string()).collect(),
            extensions: Default::default(),
        };
        let mut tip = ChainTip {
            org_id: Uuid::from_u128(7),
            seq: 0,
            hash: GENESIS,
            last_id: None,
        };
        tip.append(body, Timestamp::from_millis(2_000).unwrap(), 1, [3; 16])
    }

    #[test]
    fn salts_round_trip_in_their_stored_form() {
        for personal_meta in [&[][..], &["phone"][..]] {
            let mut event = event(personal_meta);
            for erased in [&[][..], &["actor_email", "meta.phone"][..]] {
                erase(&mut event, erased).unwrap();
                let bytes = encode_salts(&event.entry, &event.body.personal_meta);
                let (entry, keys) = decode_salts(bytes.as_deref()).unwrap();
                assert_eq!(entry, event.entry);
                assert_eq!(keys, event.body.personal_meta);
            }
        }
        assert_eq!(decode_salts(None).unwrap(), (Entry::V1, Vec::new()));
        assert!(decode_salts(Some(b"\x01short")).is_err());
        assert!(decode_salts(Some(b"")).is_err());
        assert!(decode_salts(Some(b"\x07sixteen bytes...")).is_err());
        assert!(decode_salts(Some(b"\x02{\"actor_email\":{\"salt\":\"AAAA\"}}")).is_err());
        // A seed may begin with any byte, `{` included.
        let entry = Entry::V2(Salts::Seed([b'{'; 16]));
        let bytes = encode_salts(&entry, &[]);
        assert_eq!(decode_salts(bytes.as_deref()).unwrap(), (entry, Vec::new()));
    }

    #[test]
    fn erasing_keeps_the_leaf_and_removes_the_values() {
        let mut event = event(&["phone"]);
        let leaf = leaf_hash(&event);
        erase(
            &mut event,
            &["actor_email", "target_email", "ip_address", "meta.phone"],
        )
        .unwrap();
        assert_eq!(leaf_hash(&event), leaf, "the leaf is unchanged");
        let body = &event.body;
        assert!(body.actor_email.is_none() && body.target_email.is_none());
        assert!(body.ip_address.is_none() && !body.meta.contains_key("phone"));
        assert_eq!(body.actor_name.as_deref(), Some("Alice"), "the rest stays");
        let Entry::V2(Salts::Explicit(fields)) = &event.entry else {
            panic!("explicit salts after an erasure")
        };
        assert!(matches!(fields["actor_email"], Committed::Erased(_)));
        assert!(matches!(fields["actor_name"], Committed::Salt(_)));
        // Erasing again, or a field the event does not have, changes nothing.
        erase(&mut event, &["actor_email", "user_agent"]).unwrap();
        assert_eq!(leaf_hash(&event), leaf);
    }

    #[test]
    fn a_personal_meta_key_changes_the_leaf_and_hides_the_value() {
        let plain = event(&[]);
        let marked = event(&["phone"]);
        assert_ne!(leaf_hash(&plain), leaf_hash(&marked));
        let Entry::V2(salts) = &marked.entry else {
            panic!("version 2")
        };
        let committed = commitments(&marked.body, salts).unwrap();
        let mut canonical = Vec::new();
        encode_canonical_v2(&marked, &committed, &mut canonical);
        let text = String::from_utf8(canonical).unwrap();
        assert!(
            !text.contains("555") && text.contains("meta.phone"),
            "{text}"
        );
        assert!(text.ends_with(",\"v\":2}"), "{text}");
    }

    #[test]
    fn the_extensions_personal_values_are_committed_and_erasable() {
        let mut event = event(&[]);
        let extensions = &mut event.body.extensions;
        extensions.impersonator = Some(crate::Impersonator {
            id: Some("staff-7".into()),
            email: Some("support@example.net".into()),
            kind: ActorType::User,
        });
        extensions.changes = vec![crate::FieldChange {
            field: "role".into(),
            before: Some(Value::from("member")),
            after: Some(Value::from("owner")),
        }];
        extensions.outcome = crate::Outcome::Denied;
        extensions.reason = Some("not an admin".into());
        let leaf = leaf_hash(&event);
        let Entry::V2(salts) = &event.entry else {
            panic!("version 2")
        };
        let committed = commitments(&event.body, salts).unwrap();
        for name in [
            "impersonator_email",
            "changes[0].before",
            "changes[0].after",
        ] {
            assert!(committed.contains_key(name), "{name} is committed");
        }
        let mut canonical = Vec::new();
        encode_canonical_v2(&event, &committed, &mut canonical);
        let text = String::from_utf8(canonical).unwrap();
        for hidden in ["support@example.net", "member", "owner"] {
            assert!(!text.contains(hidden), "{hidden} is in the leaf: {text}");
        }
        for shown in [
            "\"impersonator\":{\"email\":null,\"id\":\"staff-7\",\"type\":\"user\"}",
            "\"changes\":[{\"field\":\"role\"}]",
            "\"outcome\":\"denied\"",
            "\"reason\":\"not an admin\"",
        ] {
            assert!(text.contains(shown), "{shown} is not in the leaf: {text}");
        }

        erase(
            &mut event,
            &[
                "impersonator_email",
                "changes[0].before",
                "changes[0].after",
            ],
        )
        .unwrap();
        assert_eq!(leaf_hash(&event), leaf, "erasing keeps the leaf");
        let extensions = &event.body.extensions;
        assert_eq!(extensions.impersonator.as_ref().unwrap().email, None);
        assert_eq!(
            extensions.impersonator.as_ref().unwrap().id.as_deref(),
            Some("staff-7")
        );
        assert_eq!(
            extensions.changes[0].field, "role",
            "the field's name stays"
        );
        assert_eq!(
            (&extensions.changes[0].before, &extensions.changes[0].after),
            (&None, &None)
        );
    }

    #[test]
    fn the_readable_definition_and_the_encoder_agree_on_the_extensions() {
        let mut event = event(&[]);
        event.entry = Entry::V1;
        let plain = crate::chain::leaf_hash(&event);
        let extensions = &mut event.body.extensions;
        extensions.backfilled = true;
        extensions.changes = vec![crate::FieldChange {
            field: "quota".into(),
            before: None,
            after: Some(serde_json::json!({"b": 1, "a": [true, null]})),
        }];
        extensions.impersonator = Some(crate::Impersonator {
            id: None,
            email: Some("oncall@example.net".into()),
            kind: ActorType::System,
        });
        extensions.outcome = crate::Outcome::Failure;
        extensions.reason = Some("wrong password".into());
        extensions.redacted = vec!["meta.api_token".into(), "meta.auth\"x\"".into()];
        let mut direct = Vec::new();
        crate::chain::encode_canonical(&event, &mut direct);
        let defined = canonical::encode(&crate::chain::canonical_value(&event));
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(defined).unwrap()
        );
        assert_ne!(
            crate::chain::leaf_hash(&event),
            plain,
            "the extensions are hashed"
        );
    }

    #[test]
    fn an_erasure_of_a_subject_takes_their_fields_and_keeps_every_leaf() {
        let subject = |email: Option<&str>, id: Option<&str>| Subject {
            email: email.map(String::from),
            id: id.map(String::from),
        };
        let mut event = event(&["phone"]);
        event.body.extensions.changes = vec![crate::FieldChange {
            field: "owner".into(),
            before: Some(Value::from("Alice")),
            after: Some(Value::from("carol@example.com")),
        }];
        // The changes are part of the leaf: recompute it for the event as it now is.
        let leaf = leaf_hash(&event);
        // Alice is the actor, by id or by email in any case.
        let as_actor = subject_fields(&event.body, &subject(None, Some("u-1")));
        assert_eq!(
            as_actor,
            [
                "actor_email",
                "actor_name",
                "ip_address",
                "meta.phone",
                "changes[0].before"
            ]
        );
        assert_eq!(
            subject_fields(&event.body, &subject(Some("ALICE@example.com"), None)),
            as_actor
        );
        // Bob is the target: his email only (the event has no target name), and the personal
        // meta key; a change that does not mention him stays.
        assert_eq!(
            subject_fields(&event.body, &subject(Some("bob@example.com"), None)),
            ["target_email", "meta.phone"]
        );
        // Carol is only mentioned in a change: the event does not name her as actor or
        // target, so it is not hers to erase.
        assert!(subject_fields(&event.body, &subject(Some("carol@example.com"), None)).is_empty());
        assert!(subject_fields(&event.body, &subject(None, Some("u-2"))).is_empty());
        let names = as_actor.iter().map(String::as_str).collect::<Vec<_>>();
        erase(&mut event, &names).unwrap();
        assert_eq!(leaf_hash(&event), leaf, "the leaf is unchanged");
        assert_eq!(erased_fields(&event.entry), {
            let mut sorted = names.clone();
            sorted.sort();
            sorted
        });
        assert!(event.body.actor_name.is_none() && event.body.ip_address.is_none());
        assert_eq!(event.body.target_email.as_deref(), Some("bob@example.com"));
        // A second erasure finds nothing left of her.
        assert!(subject_fields(&event.body, &subject(None, Some("u-1"))).is_empty());
    }
}
