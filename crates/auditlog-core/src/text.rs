//! Words for free-text search: which words an event is found by, and how a search string
//! becomes words. Every backend uses these two functions, so search means the same
//! everywhere: a search matches an event when each of its words is a prefix of one of the
//! event's words, ignoring case.

use serde_json::Value;

use crate::EventBody;

/// Longest word kept; longer runs of letters are cut (they are ids or hashes, not words).
pub const MAX_WORD_CHARS: usize = 40;
/// Most words taken from a search string.
pub const MAX_QUERY_WORDS: usize = 8;

/// Splits text into lowercase words of letters and digits.
pub fn words(text: &str, out: &mut Vec<String>) {
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word: String = word
            .chars()
            .take(MAX_WORD_CHARS)
            .flat_map(char::to_lowercase)
            .collect();
        out.push(word);
    }
}

/// The distinct words an event is found by: its action key, actor and target ids, emails,
/// names and types, service name, IP address and the string, number and boolean values of
/// `meta` (not its keys, nor the `[REDACTED]` that stands for a value redacted at ingest);
/// the impersonator's id and email, the names of the fields its `changes` list (not their
/// values), its outcome when not `success`, and its reason. The message is built from these
/// fields, so its words are here too.
pub fn event_words(body: &EventBody) -> Vec<String> {
    let mut out = Vec::with_capacity(32);
    let fields = [
        Some(body.action_key.as_str()),
        body.actor_id.as_deref(),
        body.actor_email.as_deref(),
        body.actor_name.as_deref(),
        body.target_id.as_deref(),
        body.target_email.as_deref(),
        body.target_name.as_deref(),
        body.target_type.as_deref(),
        body.service_name.as_deref(),
    ];
    for field in fields.into_iter().flatten() {
        words(field, &mut out);
    }
    if let Some(ip) = body.ip_address {
        words(&ip.to_string(), &mut out);
    }
    let extensions = &body.extensions;
    if extensions.redacted.is_empty() {
        for value in body.meta.values() {
            meta_words(value, &mut out);
        }
    } else {
        let mut path = String::from("meta");
        unredacted_meta_words(&body.meta, &mut path, &extensions.redacted, &mut out);
    }
    if let Some(impersonator) = &extensions.impersonator {
        for field in [&impersonator.id, &impersonator.email]
            .into_iter()
            .flatten()
        {
            words(field, &mut out);
        }
    }
    // A change is found by the name of the field it changed, not by its values.
    for change in &extensions.changes {
        words(&change.field, &mut out);
    }
    if !extensions.outcome.is_success() {
        out.push(extensions.outcome.as_str().to_string());
    }
    if let Some(reason) = &extensions.reason {
        words(reason, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn meta_words(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => words(text, out),
        Value::Number(number) => words(&number.to_string(), out),
        Value::Bool(flag) => out.push(flag.to_string()),
        Value::Array(items) => items.iter().for_each(|item| meta_words(item, out)),
        Value::Object(members) => members.values().for_each(|item| meta_words(item, out)),
        Value::Null => {}
    }
}

/// [`meta_words`] of the members of `members` (at `path`), leaving out the values at the
/// `redacted` paths (sorted), which hold only the placeholder that replaced them.
fn unredacted_meta_words(
    members: &serde_json::Map<String, Value>,
    path: &mut String,
    redacted: &[String],
    out: &mut Vec<String>,
) {
    for (key, value) in members {
        let len = path.len();
        path.push('.');
        path.push_str(key);
        unredacted_value_words(value, path, redacted, out);
        path.truncate(len);
    }
}

fn unredacted_value_words(
    value: &Value,
    path: &mut String,
    redacted: &[String],
    out: &mut Vec<String>,
) {
    if redacted.binary_search(path).is_ok() {
        return;
    }
    match value {
        Value::Object(members) => unredacted_meta_words(members, path, redacted, out),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                unredacted_value_words(item, path, redacted, out);
                path.truncate(len);
            }
        }
        other => meta_words(other, out),
    }
}

/// The words of a search string (at most [`MAX_QUERY_WORDS`], distinct, in order).
pub fn query_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    words(text, &mut out);
    let mut seen = std::collections::HashSet::new();
    out.retain(|w| seen.insert(w.clone()));
    out.truncate(MAX_QUERY_WORDS);
    out
}

/// True when every query word is a prefix of some event word (the reference semantics that
/// each backend's index must reproduce).
pub fn matches(event_words: &[String], query_words: &[String]) -> bool {
    query_words
        .iter()
        .all(|q| event_words.iter().any(|w| w.starts_with(q.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lowercases_and_caps() {
        let mut out = Vec::new();
        words("Alice.Smith@Example.com ml-prod ÉTÉ", &mut out);
        assert_eq!(
            out,
            ["alice", "smith", "example", "com", "ml", "prod", "été"]
        );
        assert_eq!(query_words("prod PROD ml"), ["prod", "ml"]);
    }

    #[test]
    fn a_value_redacted_at_ingest_gives_no_word() {
        let event = crate::NewEvent {
            action_key: "channel_created".into(),
            meta: Some(serde_json::json!({
                "api_token": "tok-3f9a1c",
                "hooks": [{"secret": "hush", "name": "nightly"}],
                "note": "[REDACTED] by the sender",
            })),
            ..crate::NewEvent::default()
        };
        let now = crate::Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
        let mut body = crate::validate::validate(event, &crate::Catalog::builtin(), now).unwrap();
        let plain = event_words(&body);
        assert!(plain.contains(&"tok".to_string()) && plain.contains(&"hush".to_string()));
        crate::redact::RedactionRules::parse(&["*token*", "secret"])
            .unwrap()
            .apply(&mut body);
        let words = event_words(&body);
        for gone in ["tok", "3f9a1c", "hush"] {
            assert!(!words.contains(&gone.to_string()), "{gone} in {words:?}");
        }
        // What the sender wrote stays searchable, its own brackets included.
        for kept in ["nightly", "redacted", "sender"] {
            assert!(words.contains(&kept.to_string()), "{kept} not in {words:?}");
        }
    }
}
