//! Redaction at ingest: the deployment's rules that replace secret values in an event before
//! it is stored or hashed, so that a secret sent by mistake never enters the log, and the
//! event says where values were replaced (docs/events.md, "Redaction at ingest").
//!
//! A rule is `KEY_PATTERN` or `ACTION_PATTERN:KEY_PATTERN`, each a glob whose `*` stands for
//! any run of characters, compared without regard to ASCII case (`*token*`, `password`,
//! `token_created:value`). A key pattern matches
//! - a key of `meta` at any depth, inside nested objects and inside arrays of objects: its
//!   value, whatever its type, becomes [`REDACTED`] (and nothing below it is looked at);
//! - the `field` of a change: both its `before` and `after` become [`REDACTED`] (a side the
//!   change does not have stays absent);
//! - a key inside an object that a change's `before` or `after` holds.
//!
//! An action pattern limits its rule to the events whose `action_key` it matches. The paths
//! replaced (`meta.api_token`, `meta.items[0].secret`, `changes[0].before`) are recorded,
//! sorted, in the event's `redacted` extension.

use serde_json::{Map, Value};

use crate::EventBody;

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// A deployment's redaction rules, in the order given. The default has none: nothing is
/// redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedactionRules {
    rules: Vec<RedactionRule>,
}

/// One rule: which keys (and optionally which actions) it redacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactionRule {
    /// The rule as it was given, to name it.
    text: String,
    /// The actions it applies to; every action when `None`.
    action: Option<Glob>,
    /// The keys (and change fields) whose values it replaces.
    key: Glob,
}

/// Why a rule cannot be used. It names the rule as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("redaction rule {rule:?}: {problem}")]
pub struct RuleError {
    /// The rule as given.
    pub rule: String,
    /// What is wrong with it, as a sentence.
    pub problem: String,
}

impl RedactionRules {
    /// Parses each of `texts` as a rule ([`RedactionRule::parse`]); the first bad one is the
    /// error.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<RedactionRules, RuleError> {
        let rules = texts
            .iter()
            .map(|text| RedactionRule::parse(text.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(RedactionRules { rules })
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[RedactionRule] {
        &self.rules
    }

    /// Replaces the values the rules match in `body` (`meta` and its changes) by
    /// [`REDACTED`] and sets `body.extensions.redacted` to their paths, sorted. An event no
    /// rule matches is left exactly as it was, `redacted` empty.
    pub fn apply(&self, body: &mut EventBody) {
        let keys: Vec<&Glob> = self
            .rules
            .iter()
            .filter(|rule| {
                rule.action
                    .as_ref()
                    .is_none_or(|action| action.matches(&body.action_key))
            })
            .map(|rule| &rule.key)
            .collect();
        if keys.is_empty() {
            return;
        }
        let mut walk = Walk {
            keys: &keys,
            path: String::from("meta"),
            redacted: Vec::new(),
        };
        walk.members(&mut body.meta);
        for (index, change) in body.extensions.changes.iter_mut().enumerate() {
            let whole = walk.matches(&change.field);
            for (side, value) in [("before", &mut change.before), ("after", &mut change.after)] {
                let Some(value) = value else { continue };
                walk.path.clear();
                walk.path.push_str(&format!("changes[{index}].{side}"));
                if whole {
                    walk.replace(value);
                } else {
                    walk.value(value);
                }
            }
        }
        let mut redacted = walk.redacted;
        redacted.sort();
        redacted.dedup();
        body.extensions.redacted = redacted;
    }
}

impl RedactionRule {
    /// Parses `KEY_PATTERN` or `ACTION_PATTERN:KEY_PATTERN`. A pattern is not empty and holds
    /// only ASCII letters, digits, `_`, `-` and `*`: a key pattern matches one key wherever it
    /// is, so it names no path (`auth.secret` is refused; `secret` matches it).
    pub fn parse(text: &str) -> Result<RedactionRule, RuleError> {
        let error = |problem: String| RuleError {
            rule: text.to_string(),
            problem,
        };
        let (action, key) = match text.split_once(':') {
            Some((action, key)) => (Some(action), key),
            None => (None, text),
        };
        let pattern = |pattern: &str, what: &str| -> Result<Glob, RuleError> {
            if pattern.is_empty() {
                return Err(error(format!(
                    "the {what} pattern is empty; a rule is KEY_PATTERN or ACTION_PATTERN:KEY_PATTERN"
                )));
            }
            if let Some(bad) = pattern
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*')))
            {
                let hint = match bad {
                    '.' | '[' | ']' => {
                        " (a pattern matches one key at any depth, not a path: write the key alone)"
                    }
                    ':' => " (a rule has at most one `:`, between the action and the key)",
                    _ => "",
                };
                return Err(error(format!(
                    "{bad:?} cannot be in a {what} pattern: use letters, digits, `_`, `-` and `*`{hint}"
                )));
            }
            Ok(Glob::new(pattern))
        };
        Ok(RedactionRule {
            text: text.to_string(),
            action: action.map(|action| pattern(action, "action")).transpose()?,
            key: pattern(key, "key")?,
        })
    }

    /// The rule as it was given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for RedactionRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A pattern whose `*` matches any run of characters (none included), without regard to
/// ASCII case.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Glob {
    /// The pattern lowercased and split at each `*`: one part more than it has stars.
    parts: Vec<String>,
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        Glob {
            parts: pattern
                .to_ascii_lowercase()
                .split('*')
                .map(str::to_string)
                .collect(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        let text = text.to_ascii_lowercase();
        let (first, rest) = self.parts.split_first().expect("at least one part");
        let Some((last, middle)) = rest.split_last() else {
            return text == *first;
        };
        // The pattern's parts are ASCII, so these byte offsets are character boundaries.
        if text.len() < first.len() + last.len()
            || !text.starts_with(first.as_str())
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut inside = &text[first.len()..text.len() - last.len()];
        for part in middle {
            match inside.find(part.as_str()) {
                Some(at) => inside = &inside[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

/// One pass over an event's values: the key patterns in force, the path of the value being
/// looked at, and the paths replaced so far.
struct Walk<'a> {
    keys: &'a [&'a Glob],
    path: String,
    redacted: Vec<String>,
}

impl Walk<'_> {
    fn matches(&self, key: &str) -> bool {
        self.keys.iter().any(|glob| glob.matches(key))
    }

    fn replace(&mut self, value: &mut Value) {
        *value = Value::String(REDACTED.to_string());
        self.redacted.push(self.path.clone());
    }

    fn members(&mut self, members: &mut Map<String, Value>) {
        for (key, value) in members.iter_mut() {
            let len = self.path.len();
            self.path.push('.');
            self.path.push_str(key);
            if self.matches(key) {
                self.replace(value);
            } else {
                self.value(value);
            }
            self.path.truncate(len);
        }
    }

    fn value(&mut self, value: &mut Value) {
        match value {
            Value::Object(members) => self.members(members),
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    let len = self.path.len();
                    self.path.push_str(&format!("[{index}]"));
                    self.value(item);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate;
    use crate::{Catalog, Event, NewEvent, Timestamp};
    use serde_json::json;

    fn rules(texts: &[&str]) -> RedactionRules {
        RedactionRules::parse(texts).unwrap()
    }

    fn glob(pattern: &str) -> Glob {
        Glob::new(pattern)
    }

    /// A validated event with `meta` and `changes`, as ingest makes it.
    fn body(action_key: &str, meta: Value, changes: Option<Value>) -> EventBody {
        let event = NewEvent {
            action_key: action_key.into(),
            actor_email: Some("alice@example.com".into()),
            meta: Some(meta),
            changes,
            ..NewEvent::default()
        };
        let now = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
        validate(event, &Catalog::builtin(), now).unwrap()
    }

    fn redacted(rules: &RedactionRules, mut body: EventBody) -> EventBody {
        rules.apply(&mut body);
        body
    }

    #[test]
    fn a_glob_matches_any_run_for_a_star_ignoring_case() {
        let cases = [
            ("*token*", "api_token", true),
            ("*token*", "TOKEN", true),
            ("*token*", "Api-Token-Hash", true),
            ("*token*", "tok_en", false),
            ("password", "Password", true),
            ("password", "password_hint", false),
            ("password", "old_password", false),
            ("*secret", "client_secret", true),
            ("*secret", "secret_name", false),
            ("secret*", "secret_name", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("*", "", true),
            ("*", "anything", true),
            ("**", "x", true),
            ("token*", "tökenα", false),
            ("*key", "größe_key", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob(pattern).matches(text),
                expected,
                "{pattern:?} against {text:?}"
            );
        }
    }

    #[test]
    fn a_bad_rule_is_refused_naming_it() {
        for (text, says) in [
            ("", "the key pattern is empty"),
            (":token", "the action pattern is empty"),
            ("token_created:", "the key pattern is empty"),
            ("auth.secret", "not a path"),
            ("a:b:c", "at most one `:`"),
            ("api token", "' ' cannot be in a key pattern"),
            ("tök*", "'ö' cannot be in a key pattern"),
            ("meta[0]", "'[' cannot be in a key pattern"),
        ] {
            let error = RedactionRules::parse(&["password", text]).unwrap_err();
            assert_eq!(error.rule, text);
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!("redaction rule {text:?}: ")) && shown.contains(says),
                "{shown}"
            );
        }
        let good = rules(&["*token*", "token_created:value", "X-Api-Key", "*"]);
        assert_eq!(good.rules().len(), 4);
        assert_eq!(good.rules()[1].to_string(), "token_created:value");
    }

    #[test]
    fn keys_are_redacted_at_any_depth_and_inside_arrays() {
        let body = redacted(
            &rules(&["*token*", "secret"]),
            body(
                "channel_created",
                json!({
                    "api_token": "tok-123",
                    "token_count": 3,
                    "visibility": "private",
                    "auth": {"secret": {"nested": true}, "user": "alice"},
                    "hooks": [{"url": "https://example.net", "SECRET": "s1"}, "plain", [{"secret": null}]],
                }),
                None,
            ),
        );
        assert_eq!(
            Value::Object(body.meta),
            json!({
                "api_token": REDACTED,
                "token_count": REDACTED,
                "visibility": "private",
                "auth": {"secret": REDACTED, "user": "alice"},
                "hooks": [{"url": "https://example.net", "SECRET": REDACTED}, "plain", [{"secret": REDACTED}]],
            })
        );
        assert_eq!(
            body.extensions.redacted,
            [
                "meta.api_token",
                "meta.auth.secret",
                "meta.hooks[0].SECRET",
                "meta.hooks[2][0].secret",
                "meta.token_count",
            ]
        );
    }

    #[test]
    fn a_matching_change_loses_both_sides_and_keys_inside_values_are_matched() {
        let body = redacted(
            &rules(&["password", "*key*"]),
            body(
                "organization_user_updated",
                json!({}),
                Some(json!([
                    {"field": "role", "before": "member", "after": "admin"},
                    {"field": "Password", "before": "hunter2", "after": 42},
                    {"field": "password", "after": "new"},
                    {"field": "settings", "after": {"theme": "dark", "api_key": "k-9"}},
                ])),
            ),
        );
        let changes = &body.extensions.changes;
        assert_eq!(
            (&changes[0].before, &changes[0].after),
            (&Some(json!("member")), &Some(json!("admin")))
        );
        assert_eq!(
            (&changes[1].before, &changes[1].after),
            (&Some(json!(REDACTED)), &Some(json!(REDACTED)))
        );
        assert_eq!(
            (&changes[2].before, &changes[2].after),
            (&None, &Some(json!(REDACTED))),
            "a side the change does not have stays absent"
        );
        assert_eq!(
            changes[3].after,
            Some(json!({"theme": "dark", "api_key": REDACTED}))
        );
        assert_eq!(
            body.extensions.redacted,
            [
                "changes[1].after",
                "changes[1].before",
                "changes[2].after",
                "changes[3].after.api_key",
            ]
        );
    }

    #[test]
    fn an_action_scoped_rule_applies_to_its_actions_only() {
        let rules = rules(&["token_*:value", "*_deleted:reason_text"]);
        let meta = json!({"value": "tok-123", "reason_text": "secret plans"});
        let created = redacted(&rules, body("token_created", meta.clone(), None));
        assert_eq!(created.meta["value"], REDACTED);
        assert_eq!(created.meta["reason_text"], "secret plans");
        assert_eq!(created.extensions.redacted, ["meta.value"]);
        let deleted = redacted(&rules, body("channel_deleted", meta.clone(), None));
        assert_eq!(deleted.meta["value"], "tok-123");
        assert_eq!(deleted.extensions.redacted, ["meta.reason_text"]);
        let other = redacted(&rules, body("channel_created", meta, None));
        assert!(other.extensions.redacted.is_empty());
    }

    #[test]
    fn no_match_leaves_the_event_and_its_hash_exactly_as_they_were() {
        let original = body(
            "channel_created",
            json!({"visibility": "private", "nested": {"token_name": "ci"}}),
            Some(json!([{"field": "role", "before": "member", "after": "admin"}])),
        );
        let unchanged = redacted(
            &rules(&["password", "token_created:*token*"]),
            original.clone(),
        );
        assert_eq!(unchanged, original);
        assert!(unchanged.extensions.redacted.is_empty());
        let untouched = redacted(&RedactionRules::default(), original.clone());
        assert_eq!(untouched, original);

        let event = |body: EventBody| Event {
            id: uuid::Uuid::nil(),
            org_id: uuid::Uuid::nil(),
            seq: 1,
            created_at: Timestamp::parse("2026-06-01T00:00:00Z").unwrap(),
            hash: [0; 32],
            body,
            entry: crate::Entry::V1,
        };
        let mut canonical = Vec::new();
        crate::chain::encode_canonical(&event(unchanged), &mut canonical);
        let text = String::from_utf8(canonical).unwrap();
        assert!(!text.contains("redacted"), "{text}");
        assert_eq!(
            crate::chain::leaf_hash(&event(original.clone())),
            crate::chain::leaf_hash(&event(redacted(&rules(&["password"]), original)))
        );
    }

    #[test]
    fn a_redacted_event_hashes_its_paths_and_never_its_secret() {
        let secret = "tok-3f9a1c";
        let body = redacted(
            &rules(&["*token*"]),
            body("channel_created", json!({"api_token": secret}), None),
        );
        let event = Event {
            id: uuid::Uuid::nil(),
            org_id: uuid::Uuid::nil(),
            seq: 1,
            created_at: Timestamp::parse("2026-06-01T00:00:00Z").unwrap(),
            hash: [0; 32],
            body,
            entry: crate::Entry::V1,
        };
        let mut canonical = Vec::new();
        crate::chain::encode_canonical(&event, &mut canonical);
        let text = String::from_utf8(canonical).unwrap();
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains(r#""meta":{"api_token":"[REDACTED]"}"#)
                && text.contains(r#","redacted":["meta.api_token"],"request_id":"#),
            "{text}"
        );
    }
}
