//! The human sentence for an event, e.g. "alice@example.com created channel `ml-prod`": the
//! `message` field of the API, the page and exports.
//!
//! The message is derived from the other fields every time it is shown, never stored, so
//! that improving a sentence never touches the hash chain.
//!
//! How the parts are named:
//! - the actor: `actor_email`, else `actor_name`, else `actor_id` (as "user `u-42`"), else by
//!   kind: "someone", "a service account", "the system";
//! - an object: its type in words, then `target_name`, else `target_email`, else `target_id`
//!   in backticks: "service account `ci-bot`"; "a service account" when there is no target;
//! - a person: `target_email`, else `target_name`, bare like the actor; "user `u-7`" when
//!   only an id is known; "a user" when nothing is.
//!
//! Actions that involve two things (a group and a channel, a user and a group, a policy and
//! a channel or mirror) take the one the event's `target_type` names from the target, and the
//! other from `meta`: `channel_name`, `group_name`, `policy_name`, `mirror_name`, or for a
//! person `user_email`, else `user_name`. `organization_user_updated` reads the new role from
//! `meta.new_role` or `meta.role`; `product_assigned` and `product_revoked` read the product
//! from `meta.product`.
//!
//! An action without a sentence of its own (one added by a deployment, or unknown) reads
//! `<actor> <verb> <target>`, the verb from the event, else the catalog, else the key with
//! spaces for underscores.
//!
//! Under impersonation the real actor comes first: "support@example.com as alice@example.com
//! changed the role of …" (the impersonator's email, else id). An event whose outcome is not
//! `success` ends with " — failed" or " — denied", and ": <reason>" when it has one.
//!
//! Messages have no trailing punctuation and never a double space, whichever parts are
//! missing. Values are inserted as they are: escaping is the job of whoever renders the
//! message into HTML or CSV.

use serde_json::Value;

use crate::catalog::{preset_verb_and_target_type, Catalog};
use crate::event::{ActorType, Event, EventBody, Outcome};

/// The sentence for a stored event.
pub fn render(event: &Event, catalog: &Catalog) -> String {
    render_body(&event.body, catalog)
}

/// The sentence for an event's content; the catalog supplies the verb and target type when
/// the event does not carry them.
pub fn render_body(body: &EventBody, catalog: &Catalog) -> String {
    let parts = Parts::new(body, catalog);
    let actor = actor(body);
    let sentence = match body.action_key.as_str() {
        "audit_log_export_requested" => "requested an export of the audit log".to_string(),
        "audit_log_access_denied" => "tried to read the audit log".to_string(),
        "authentication_success" => "signed in".to_string(),

        "channel_created"
        | "channel_deleted"
        | "policy_created"
        | "policy_deleted"
        | "policy_updated"
        | "service_account_created"
        | "service_account_deleted"
        | "service_account_updated"
        | "user_group_created"
        | "user_group_deleted"
        | "token_created"
        | "token_revoked"
        | "user_token_created"
        | "user_token_revoked"
        | "user_token_updated"
        | "mirror_deleted" => {
            format!("{} {}", parts.verb, parts.object())
        }
        "mirror_registered" => format!("registered {}", parts.object()),
        "user_token_metadata_updated" => format!("updated the metadata of {}", parts.object()),
        "organization_updated" => match parts.target_value() {
            Some(name) => format!("updated the details of organization {name}"),
            None => "updated the organization details".to_string(),
        },

        "group_assigned_to_channel" | "channel_group_added" => {
            let (channel, group) = parts.pair("channel", "group");
            format!("gave {group} access to {channel}")
        }
        "group_unassigned_from_channel" | "channel_group_deleted" => {
            let (channel, group) = parts.pair("channel", "group");
            format!("removed the access of {group} to {channel}")
        }
        "channel_policy_assigned" => {
            let (channel, policy) = parts.pair("channel", "policy");
            format!("assigned {policy} to {channel}")
        }
        "channel_policy_unassigned" => {
            let (channel, policy) = parts.pair("channel", "policy");
            format!("removed {policy} from {channel}")
        }
        "mirror_policy_unassigned" => {
            let (mirror, policy) = parts.pair("mirror", "policy");
            format!("removed {policy} from {mirror}")
        }
        "user_added_to_group" | "group_user_added" => {
            let (user, group) = parts.pair("user", "group");
            format!("added {user} to {group}")
        }
        "user_removed_from_group" | "group_user_deleted" => {
            let (user, group) = parts.pair("user", "group");
            format!("removed {user} from {group}")
        }
        "policy_assigned" | "policy_unassigned" => {
            let policy = parts.object();
            let assignee = parts.meta_person().or_else(|| parts.meta_object("group"));
            let (verb, preposition) = if body.action_key == "policy_assigned" {
                ("assigned", "to")
            } else {
                ("removed", "from")
            };
            match assignee {
                Some(assignee) => format!("{verb} {policy} {preposition} {assignee}"),
                None if verb == "removed" => format!("unassigned {policy}"),
                None => format!("{verb} {policy}"),
            }
        }

        "invitation_created" => {
            // The invitee is a person even though the target is the invitation: name them
            // when the event says who it is.
            let invitee = non_empty(body.target_email.as_deref())
                .or_else(|| non_empty(body.target_name.as_deref()))
                .map(str::to_string)
                .or_else(|| parts.meta_person());
            match (invitee, non_empty(body.target_id.as_deref())) {
                (Some(invitee), _) => format!("invited {invitee} to the organization"),
                (None, Some(id)) => format!("created invitation `{id}`"),
                (None, None) => "invited a user to the organization".to_string(),
            }
        }
        "organization_user_added" => match parts.person() {
            Some(user) => format!("added {user} to the organization"),
            // The description says "A user joined": with nobody else named, the actor did.
            None => "joined the organization".to_string(),
        },
        "organization_user_removed" => {
            format!("removed {} from the organization", parts.person_or_a_user())
        }
        "organization_user_updated" => {
            let user = parts.person_or_a_user();
            match meta_str(body, "new_role").or_else(|| meta_str(body, "role")) {
                Some(role) => format!("changed the role of {user} to `{role}`"),
                None => format!("changed the role of {user}"),
            }
        }
        "product_assigned" | "product_revoked" => {
            let (product, user) = parts.product_and_user();
            let verb = if body.action_key == "product_assigned" {
                "assigned"
            } else {
                "revoked"
            };
            let preposition = if verb == "assigned" { "to" } else { "from" };
            let mut sentence = format!("{verb} a seat");
            if let Some(product) = product {
                sentence.push_str(&format!(" of `{product}`"));
            }
            if let Some(user) = user {
                sentence.push_str(&format!(" {preposition} {user}"));
            }
            sentence
        }
        "user_default_channel_updated" => {
            let channel = meta_str(body, "channel_name");
            match (parts.person(), channel) {
                (Some(user), Some(channel)) => {
                    format!("set the default channel of {user} to `{channel}`")
                }
                (None, Some(channel)) => {
                    format!("set a user\u{2019}s default channel to `{channel}`")
                }
                (Some(user), None) => format!("changed the default channel of {user}"),
                (None, None) => "changed a user\u{2019}s default channel".to_string(),
            }
        }

        _ => generic(body, &parts),
    };
    let extensions = &body.extensions;
    let mut message = match &extensions.impersonator {
        Some(impersonator) => {
            let real = impersonator
                .email
                .as_deref()
                .or(impersonator.id.as_deref())
                .unwrap_or("someone");
            format!("{real} as {actor} {sentence}")
        }
        None => format!("{actor} {sentence}"),
    };
    if !extensions.outcome.is_success() {
        message.push_str(" \u{2014} ");
        message.push_str(match extensions.outcome {
            Outcome::Denied => "denied",
            _ => "failed",
        });
        if let Some(reason) = &extensions.reason {
            message.push_str(": ");
            message.push_str(reason);
        }
    }
    message
}

/// `<verb> <target>` for actions without a sentence of their own.
fn generic(body: &EventBody, parts: &Parts) -> String {
    let verb = if parts.verb.is_empty() {
        body.action_key.replace('_', " ")
    } else {
        parts.verb.replace('_', " ")
    };
    match parts.object_if_any() {
        Some(object) => format!("{verb} {object}"),
        None => verb,
    }
}

/// Who did it, following the precedence of the module documentation.
fn actor(body: &EventBody) -> String {
    if let Some(known) =
        non_empty(body.actor_email.as_deref()).or_else(|| non_empty(body.actor_name.as_deref()))
    {
        return known.to_string();
    }
    // An id alone means nothing to a reader without its kind, so it is introduced by it.
    let kind = match body.actor_type {
        ActorType::User => "user",
        ActorType::ServiceAccount => "service account",
        ActorType::System => "system",
    };
    match non_empty(body.actor_id.as_deref()) {
        Some(id) => format!("{kind} `{id}`"),
        None => match body.actor_type {
            ActorType::User => "someone".to_string(),
            ActorType::ServiceAccount => "a service account".to_string(),
            ActorType::System => "the system".to_string(),
        },
    }
}

/// What a sentence is assembled from: the event with the catalog's defaults filled in.
struct Parts<'a> {
    body: &'a EventBody,
    /// The event's verb, else the catalog's, else the preset's, else empty.
    verb: &'a str,
    /// The event's target type, else the catalog's, else the preset's, else empty.
    target_type: &'a str,
}

impl<'a> Parts<'a> {
    fn new(body: &'a EventBody, catalog: &'a Catalog) -> Parts<'a> {
        let action = catalog.get(&body.action_key);
        let preset = preset_verb_and_target_type(&body.action_key);
        let verb = non_empty(body.action_verb.as_deref())
            .or_else(|| action.map(|a| a.verb.as_str()))
            .or_else(|| preset.map(|(verb, _)| verb))
            .unwrap_or("");
        let target_type = non_empty(body.target_type.as_deref())
            .or_else(|| action.map(|a| a.target_type.as_str()))
            .or_else(|| preset.map(|(_, target_type)| target_type))
            .unwrap_or("");
        Parts {
            body,
            verb,
            target_type,
        }
    }

    /// The target's name, email or id, in backticks.
    fn target_value(&self) -> Option<String> {
        non_empty(self.body.target_name.as_deref())
            .or_else(|| non_empty(self.body.target_email.as_deref()))
            .or_else(|| non_empty(self.body.target_id.as_deref()))
            .map(|value| format!("`{value}`"))
    }

    /// "channel `ml-prod`", or None without a target.
    fn object_if_any(&self) -> Option<String> {
        let value = self.target_value()?;
        Some(if self.target_type.is_empty() {
            value
        } else {
            format!("{} {value}", words(self.target_type))
        })
    }

    /// "channel `ml-prod`", or "a channel" without a target.
    fn object(&self) -> String {
        self.object_if_any()
            .unwrap_or_else(|| with_article(&words(self.target_type)))
    }

    /// The target as a person: email, else name, else "user `id`".
    fn person(&self) -> Option<String> {
        non_empty(self.body.target_email.as_deref())
            .or_else(|| non_empty(self.body.target_name.as_deref()))
            .map(str::to_string)
            .or_else(|| non_empty(self.body.target_id.as_deref()).map(|id| format!("user `{id}`")))
    }

    fn person_or_a_user(&self) -> String {
        self.person().unwrap_or_else(|| "a user".to_string())
    }

    /// A person named in `meta` (`user_email`, else `user_name`).
    fn meta_person(&self) -> Option<String> {
        meta_str(self.body, "user_email")
            .or_else(|| meta_str(self.body, "user_name"))
            .map(str::to_string)
    }

    /// A thing named in `meta` by `<kind>_name`: "group `data-science`".
    fn meta_object(&self, kind: &str) -> Option<String> {
        meta_str(self.body, &format!("{kind}_name")).map(|name| format!("{} `{name}`", words(kind)))
    }

    /// The two things an action relates, each rendered, "a <kind>" when unknown. The target
    /// is `second` when the event's target type says so and `first` otherwise, because the
    /// emitting services do not all agree on which side of a relation is the target.
    fn pair(&self, first: &str, second: &str) -> (String, String) {
        let target_is_second = self.target_type == second;
        let side = |kind: &str, is_target: bool| -> String {
            let from_target = if !is_target {
                None
            } else if kind == "user" {
                self.person()
            } else {
                self.target_value()
                    .map(|value| format!("{} {value}", words(kind)))
            };
            let from_meta = || {
                if kind == "user" {
                    self.meta_person()
                } else {
                    self.meta_object(kind)
                }
            };
            from_target
                .or_else(from_meta)
                .unwrap_or_else(|| with_article(&words(kind)))
        };
        (
            side(first, !target_is_second),
            side(second, target_is_second),
        )
    }

    /// The product (bare) and the seat holder of a seat event. `meta.product` names the
    /// product when present and the target is then the holder; otherwise the target is the
    /// product unless it is plainly a person (a user target type or an email).
    fn product_and_user(&self) -> (Option<String>, Option<String>) {
        if let Some(product) = meta_str(self.body, "product") {
            return (Some(product.to_string()), self.person());
        }
        let target_is_person =
            self.target_type == "user" || non_empty(self.body.target_email.as_deref()).is_some();
        if target_is_person {
            (None, self.person())
        } else {
            let product = non_empty(self.body.target_name.as_deref())
                .or_else(|| non_empty(self.body.target_id.as_deref()))
                .map(str::to_string);
            (product, self.meta_person())
        }
    }
}

/// A `meta` value when it is a non-blank string; other JSON types are ignored rather than
/// printed as JSON in the middle of a sentence.
fn meta_str<'a>(body: &'a EventBody, key: &str) -> Option<&'a str> {
    non_empty(body.meta.get(key).and_then(Value::as_str))
}

/// Treats a blank string like a missing one, so that no part of a sentence is empty.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|text| !text.trim().is_empty())
}

/// A type name in words: `service_account` -> "service account".
fn words(type_name: &str) -> String {
    type_name.replace('_', " ")
}

/// "a channel", "an invitation"; "something" for an empty noun. A leading "u" takes "a"
/// ("a user"), which is right for the nouns catalogs use and wrong only for rare words like
/// "umbrella".
fn with_article(noun: &str) -> String {
    match noun.chars().next() {
        None => "something".to_string(),
        Some(first) if "aeio".contains(first.to_ascii_lowercase()) => format!("an {noun}"),
        Some(_) => format!("a {noun}"),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use expect_test::expect;
    use serde_json::{json, Map};
    use uuid::Uuid;

    use super::*;
    use crate::catalog::Preset;
    use crate::Timestamp;

    fn body(action_key: &str) -> EventBody {
        EventBody {
            action_key: action_key.to_string(),
            action_verb: None,
            actor_id: None,
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
            meta: Map::new(),
            occurred_at: Timestamp::from_millis(0).unwrap(),
            personal_meta: Vec::new(),
            extensions: Default::default(),
        }
    }

    fn event(body: EventBody) -> Event {
        Event {
            entry: crate::Entry::V1,
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            seq: 1,
            created_at: Timestamp::from_millis(0).unwrap(),
            hash: [0; 32],
            body,
        }
    }

    fn meta(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("meta literals are objects"),
        }
    }

    /// An event with every field a realistic emitter would set for this action.
    fn full_event(action_key: &str, target_type: &str) -> Event {
        let mut body = body(action_key);
        body.actor_id = Some("u-1".to_string());
        body.actor_email = Some("alice@example.com".to_string());
        body.actor_name = Some("Alice".to_string());
        body.target_type = Some(target_type.to_string());
        body.target_id = Some("t-9".to_string());
        match target_type {
            "user" => {
                body.target_email = Some("bob@example.com".to_string());
                body.target_name = Some("Bob".to_string());
            }
            "channel" => body.target_name = Some("ml-prod".to_string()),
            "group" => body.target_name = Some("data-science".to_string()),
            "policy" => body.target_name = Some("no-critical-cves".to_string()),
            "service_account" => body.target_name = Some("ci-bot".to_string()),
            "token" => body.target_name = Some("ci".to_string()),
            "mirror" => body.target_name = Some("conda-forge".to_string()),
            "organization" => body.target_name = Some("acme".to_string()),
            "invitation" => body.target_email = Some("carol@example.com".to_string()),
            _ => {}
        }
        body.meta = meta(json!({
            "channel_name": "ml-prod",
            "group_name": "data-science",
            "policy_name": "no-critical-cves",
            "user_email": "dave@example.com",
            "new_role": "admin",
            "product": "Anaconda Business",
            "request_origin": "ui",
        }));
        event(body)
    }

    /// An event with as little as validation lets through: an actor id and nothing else.
    fn minimal_event(action_key: &str) -> Event {
        let mut body = body(action_key);
        body.actor_id = Some("u-1".to_string());
        event(body)
    }

    fn render_all(preset: Preset) -> String {
        let catalog = Catalog::preset(preset);
        let mut out = String::new();
        for action in catalog.actions() {
            let full = render(&full_event(&action.key, &action.target_type), &catalog);
            let minimal = render(&minimal_event(&action.key), &catalog);
            writeln!(out, "{}\n  {full}\n  {minimal}", action.key).unwrap();
            for message in [&full, &minimal] {
                assert!(!message.contains("  "), "double space: {message:?}");
                assert_eq!(message.trim(), message, "{message:?}");
                assert!(!message.ends_with(['.', ',', ';', ':']), "{message:?}");
            }
        }
        out
    }

    #[test]
    fn every_cloud_action_has_a_sentence() {
        expect![[r#"
            audit_log_export_requested
              alice@example.com requested an export of the audit log
              user `u-1` requested an export of the audit log
            channel_created
              alice@example.com created channel `ml-prod`
              user `u-1` created a channel
            channel_deleted
              alice@example.com deleted channel `ml-prod`
              user `u-1` deleted a channel
            group_assigned_to_channel
              alice@example.com gave group `data-science` access to channel `ml-prod`
              user `u-1` gave a group access to a channel
            group_unassigned_from_channel
              alice@example.com removed the access of group `data-science` to channel `ml-prod`
              user `u-1` removed the access of a group to a channel
            invitation_created
              alice@example.com invited carol@example.com to the organization
              user `u-1` invited a user to the organization
            organization_updated
              alice@example.com updated the details of organization `acme`
              user `u-1` updated the organization details
            organization_user_added
              alice@example.com added bob@example.com to the organization
              user `u-1` joined the organization
            organization_user_removed
              alice@example.com removed bob@example.com from the organization
              user `u-1` removed a user from the organization
            organization_user_updated
              alice@example.com changed the role of bob@example.com to `admin`
              user `u-1` changed the role of a user
            authentication_success
              alice@example.com signed in
              user `u-1` signed in
            policy_assigned
              alice@example.com assigned policy `no-critical-cves` to dave@example.com
              user `u-1` assigned a policy
            policy_created
              alice@example.com created policy `no-critical-cves`
              user `u-1` created a policy
            policy_deleted
              alice@example.com deleted policy `no-critical-cves`
              user `u-1` deleted a policy
            policy_unassigned
              alice@example.com removed policy `no-critical-cves` from dave@example.com
              user `u-1` unassigned a policy
            policy_updated
              alice@example.com updated policy `no-critical-cves`
              user `u-1` updated a policy
            product_assigned
              alice@example.com assigned a seat of `Anaconda Business` to bob@example.com
              user `u-1` assigned a seat
            product_revoked
              alice@example.com revoked a seat of `Anaconda Business` from bob@example.com
              user `u-1` revoked a seat
            service_account_created
              alice@example.com created service account `ci-bot`
              user `u-1` created a service account
            service_account_deleted
              alice@example.com deleted service account `ci-bot`
              user `u-1` deleted a service account
            service_account_updated
              alice@example.com updated service account `ci-bot`
              user `u-1` updated a service account
            user_added_to_group
              alice@example.com added bob@example.com to group `data-science`
              user `u-1` added a user to a group
            user_group_created
              alice@example.com created group `data-science`
              user `u-1` created a group
            user_group_deleted
              alice@example.com deleted group `data-science`
              user `u-1` deleted a group
            user_removed_from_group
              alice@example.com removed bob@example.com from group `data-science`
              user `u-1` removed a user from a group
            token_created
              alice@example.com created token `ci`
              user `u-1` created a token
            token_revoked
              alice@example.com revoked token `ci`
              user `u-1` revoked a token
        "#]]
        .assert_eq(&render_all(Preset::Cloud));
    }

    #[test]
    fn every_self_hosted_action_has_a_sentence() {
        expect![[r#"
            channel_created
              alice@example.com created channel `ml-prod`
              user `u-1` created a channel
            channel_deleted
              alice@example.com deleted channel `ml-prod`
              user `u-1` deleted a channel
            channel_group_added
              alice@example.com gave group `data-science` access to channel `ml-prod`
              user `u-1` gave a group access to a channel
            channel_group_deleted
              alice@example.com removed the access of group `data-science` to channel `ml-prod`
              user `u-1` removed the access of a group to a channel
            channel_policy_assigned
              alice@example.com assigned policy `no-critical-cves` to channel `ml-prod`
              user `u-1` assigned a policy to a channel
            channel_policy_unassigned
              alice@example.com removed policy `no-critical-cves` from channel `ml-prod`
              user `u-1` removed a policy from a channel
            group_user_added
              alice@example.com added bob@example.com to group `data-science`
              user `u-1` added a user to a group
            group_user_deleted
              alice@example.com removed bob@example.com from group `data-science`
              user `u-1` removed a user from a group
            mirror_registered
              alice@example.com registered mirror `conda-forge`
              user `u-1` registered a mirror
            mirror_deleted
              alice@example.com deleted mirror `conda-forge`
              user `u-1` deleted a mirror
            mirror_policy_unassigned
              alice@example.com removed policy `no-critical-cves` from mirror `conda-forge`
              user `u-1` removed a policy from a mirror
            policy_created
              alice@example.com created policy `no-critical-cves`
              user `u-1` created a policy
            policy_updated
              alice@example.com updated policy `no-critical-cves`
              user `u-1` updated a policy
            policy_deleted
              alice@example.com deleted policy `no-critical-cves`
              user `u-1` deleted a policy
            user_token_created
              alice@example.com created token `ci`
              user `u-1` created a token
            user_token_metadata_updated
              alice@example.com updated the metadata of token `ci`
              user `u-1` updated the metadata of a token
            user_token_revoked
              alice@example.com revoked token `ci`
              user `u-1` revoked a token
            user_token_updated
              alice@example.com updated token `ci`
              user `u-1` updated a token
            user_default_channel_updated
              alice@example.com set the default channel of bob@example.com to `ml-prod`
              user `u-1` changed a user’s default channel
        "#]]
        .assert_eq(&render_all(Preset::SelfHosted));
    }

    #[test]
    fn actor_precedence_and_kinds() {
        let catalog = Catalog::builtin();
        let mut rendered = Vec::new();
        for (email, name, id, kind) in [
            (
                Some("a@example.com"),
                Some("Alice"),
                Some("u-1"),
                ActorType::User,
            ),
            (None, Some("Alice"), Some("u-1"), ActorType::User),
            (None, None, Some("sa-1"), ActorType::ServiceAccount),
            (None, None, Some("cron"), ActorType::System),
            (None, None, None, ActorType::User),
            (None, None, None, ActorType::ServiceAccount),
            (None, None, None, ActorType::System),
            (Some(" "), Some(""), None, ActorType::User),
        ] {
            let mut body = body("authentication_success");
            body.actor_email = email.map(str::to_string);
            body.actor_name = name.map(str::to_string);
            body.actor_id = id.map(str::to_string);
            body.actor_type = kind;
            rendered.push(render_body(&body, &catalog));
        }
        expect![[r#"
            a@example.com signed in
            Alice signed in
            service account `sa-1` signed in
            system `cron` signed in
            someone signed in
            a service account signed in
            the system signed in
            someone signed in"#]]
        .assert_eq(&rendered.join("\n"));
    }

    #[test]
    fn targets_fall_back_and_relations_follow_the_target_type() {
        let catalog = Catalog::builtin();
        let mut rendered = Vec::new();

        // Target by id only.
        let mut only_id = body("channel_created");
        only_id.actor_email = Some("alice@example.com".to_string());
        only_id.target_id = Some("ch-7".to_string());
        rendered.push(render_body(&only_id, &catalog));

        // The group is the target and the channel comes from meta.
        let mut group_target = body("group_assigned_to_channel");
        group_target.actor_email = Some("alice@example.com".to_string());
        group_target.target_type = Some("group".to_string());
        group_target.target_name = Some("data-science".to_string());
        group_target.meta = meta(json!({"channel_name": "ml-prod"}));
        rendered.push(render_body(&group_target, &catalog));

        // A role that is not a string is left out rather than printed as JSON.
        let mut role = body("organization_user_updated");
        role.actor_email = Some("alice@example.com".to_string());
        role.target_email = Some("bob@example.com".to_string());
        role.meta = meta(json!({"role": {"name": "admin"}}));
        rendered.push(render_body(&role, &catalog));

        // The product as the target, the holder in meta.
        let mut product = body("product_assigned");
        product.actor_email = Some("alice@example.com".to_string());
        product.target_type = Some("product".to_string());
        product.target_name = Some("Anaconda Business".to_string());
        product.meta = meta(json!({"user_email": "bob@example.com"}));
        rendered.push(render_body(&product, &catalog));

        // The policy assigned to a group.
        let mut policy = body("policy_assigned");
        policy.actor_email = Some("alice@example.com".to_string());
        policy.target_name = Some("no-critical-cves".to_string());
        policy.meta = meta(json!({"group_name": "data-science"}));
        rendered.push(render_body(&policy, &catalog));

        expect![[r#"
            alice@example.com created channel `ch-7`
            alice@example.com gave group `data-science` access to channel `ml-prod`
            alice@example.com changed the role of bob@example.com
            alice@example.com assigned a seat of `Anaconda Business` to bob@example.com
            alice@example.com assigned policy `no-critical-cves` to group `data-science`"#]]
        .assert_eq(&rendered.join("\n"));
    }

    #[test]
    fn actions_without_a_sentence_use_the_generic_form() {
        let mut catalog = Catalog::builtin();
        catalog
            .extend_from_toml(
                r#"
[[action]]
key = "mirror_synced"
display_name = "Mirror Synced"
description = "A mirror finished synchronizing."
group = "Mirrors"
verb = "synced"
target_type = "mirror"
"#,
            )
            .unwrap();
        let mut rendered = Vec::new();

        let mut known = body("mirror_synced");
        known.actor_type = ActorType::System;
        known.target_name = Some("conda-forge".to_string());
        rendered.push(render_body(&known, &catalog));

        known.target_name = None;
        rendered.push(render_body(&known, &catalog));

        let mut unknown = body("package_quarantined");
        unknown.actor_email = Some("alice@example.com".to_string());
        unknown.target_type = Some("package".to_string());
        unknown.target_name = Some("numpy-1.26.4".to_string());
        rendered.push(render_body(&unknown, &catalog));

        unknown.action_verb = Some("quarantined".to_string());
        rendered.push(render_body(&unknown, &catalog));

        unknown.target_type = None;
        unknown.target_name = None;
        unknown.action_verb = None;
        rendered.push(render_body(&unknown, &catalog));

        expect![[r#"
            the system synced mirror `conda-forge`
            the system synced
            alice@example.com package quarantined package `numpy-1.26.4`
            alice@example.com quarantined package `numpy-1.26.4`
            alice@example.com package quarantined"#]]
        .assert_eq(&rendered.join("\n"));
    }
}
