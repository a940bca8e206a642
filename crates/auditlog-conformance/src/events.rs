//! Building event bodies for the cases: a realistic fixed one ([`body`]) and random ones
//! from fixed pools ([`random_body`]), deterministic for a seeded generator.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use auditlog_core::{
    ActorType, Catalog, EventBody, Extensions, FieldChange, Impersonator, Outcome, Timestamp,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------
// Building events.
// ---------------------------------------------------------------------------------------

/// A realistic, valid event body: `actor` is the actor's email (its local part gives the
/// actor id and name), the verb and target type come from the built-in catalog when it knows
/// `action`, and the request came from a browser on a documentation address.
pub fn body(action: &str, actor: &str, occurred_at_ms: i64) -> EventBody {
    let catalog_action = catalog().get(action);
    let local = actor.split('@').next().unwrap_or(actor);
    let verb = match catalog_action {
        Some(known) => known.verb.clone(),
        None => action.rsplit('_').next().unwrap_or(action).to_string(),
    };
    EventBody {
        action_key: action.to_string(),
        action_verb: Some(verb),
        actor_id: Some(format!("user-{local}")),
        actor_email: Some(actor.to_string()),
        actor_name: Some(capitalized(local)),
        actor_type: ActorType::User,
        target_id: None,
        target_email: None,
        target_name: None,
        target_type: catalog_action.map(|known| known.target_type.clone()),
        service_name: Some("console".to_string()),
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".to_string()),
        request_id: None,
        meta: Map::new(),
        occurred_at: ts(occurred_at_ms),
        personal_meta: Vec::new(),
        extensions: Default::default(),
    }
}

/// A random but realistic event body, drawn from fixed pools of actions, actors, targets,
/// services, addresses and `meta` words, at one of `times`. Actors and targets are fixed
/// profiles (an id always comes with the same email and name), so that every way of grouping
/// actors gives the same facets. Deterministic for a seeded `rng`.
pub fn random_body(rng: &mut StdRng, times: &[Timestamp]) -> EventBody {
    let action = *pick(rng, ACTIONS);
    let catalog_action = catalog().get(action);
    let (actor_id, actor_email, actor_name, actor_type) = *pick(rng, ACTORS);
    let target = rng.gen_bool(0.85).then(|| *pick(rng, TARGETS));
    let ip_address = match rng.gen_range(0..4) {
        0 | 1 => None,
        2 => Some(IpAddr::V4(*pick(rng, IPV4))),
        _ => Some(IpAddr::V6(
            pick(rng, IPV6).parse().expect("valid IPv6 literal"),
        )),
    };
    EventBody {
        action_key: action.to_string(),
        action_verb: catalog_action.map(|known| known.verb.clone()),
        actor_id: actor_id.map(str::to_string),
        actor_email: actor_email.map(str::to_string),
        actor_name: actor_name.map(str::to_string),
        actor_type,
        target_id: target.and_then(|t| t.0).map(str::to_string),
        target_email: target.and_then(|t| t.1).map(str::to_string),
        target_name: target.and_then(|t| t.2).map(str::to_string),
        target_type: target.map(|t| t.3.to_string()),
        service_name: pick(rng, SERVICES).map(str::to_string),
        ip_address,
        user_agent: rng
            .gen_bool(0.5)
            .then(|| pick(rng, USER_AGENTS).to_string()),
        request_id: rng
            .gen_bool(0.5)
            .then(|| format!("req-{:08x}", rng.gen::<u32>())),
        meta: random_meta(rng),
        occurred_at: *pick(rng, times),
        extensions: random_extensions(rng),
        personal_meta: Vec::new(),
    }
}

/// Extensions for about a third of random events: an impersonator from a small pool, a
/// failure or a refusal with a reason, a change of role.
fn random_extensions(rng: &mut StdRng) -> Extensions {
    let mut extensions = Extensions::default();
    if rng.gen_bool(0.15) {
        let (id, email) = *pick(rng, IMPERSONATORS);
        extensions.impersonator = Some(Impersonator {
            id: id.map(str::to_string),
            email: email.map(str::to_string),
            kind: ActorType::User,
        });
    }
    match rng.gen_range(0..10) {
        0 => {
            extensions.outcome = Outcome::Failure;
            extensions.reason = Some("wrong password".to_string());
        }
        1 => extensions.outcome = Outcome::Denied,
        _ => {}
    }
    if rng.gen_bool(0.1) {
        extensions.changes = vec![FieldChange {
            field: "role".to_string(),
            before: Some(json!("member")),
            after: Some(json!("admin")),
        }];
    }
    extensions
}

/// `(id, email)` of the people who act as others.
const IMPERSONATORS: &[(Option<&str>, Option<&str>)] = &[
    (Some("staff-1"), Some("support@example.net")),
    (None, Some("oncall@example.net")),
    (Some("staff-3"), None),
];

pub(crate) const ACTIONS: &[&str] = &[
    "channel_created",
    "channel_deleted",
    "group_assigned_to_channel",
    "invitation_created",
    "organization_updated",
    "organization_user_added",
    "authentication_success",
    "policy_created",
    "service_account_created",
    "token_revoked",
];

/// `(actor_id, actor_email, actor_name, actor_type)`.
pub(crate) type ActorProfile = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    ActorType,
);

pub(crate) const ACTORS: &[ActorProfile] = &[
    (
        Some("u-alice"),
        Some("alice@example.com"),
        Some("Alice Smith"),
        ActorType::User,
    ),
    (
        Some("u-bob"),
        Some("bob@example.org"),
        Some("Bob Jones"),
        ActorType::User,
    ),
    (
        None,
        Some("carol@example.com"),
        Some("Carol Été"),
        ActorType::User,
    ),
    (
        Some("u-zoe"),
        Some("zoë@例え.jp"),
        Some("Zoë Ünal"),
        ActorType::User,
    ),
    (None, Some("dave@example.net"), None, ActorType::User),
    (
        Some("sa-ci-bot"),
        None,
        Some("CI Bot"),
        ActorType::ServiceAccount,
    ),
    (Some("sa-mirror"), None, None, ActorType::ServiceAccount),
    (Some("system"), None, None, ActorType::System),
];

/// `(target_id, target_email, target_name, target_type)`.
pub(crate) type TargetProfile = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

pub(crate) const TARGETS: &[TargetProfile] = &[
    (Some("ch-ml-prod"), None, Some("ml-prod"), "channel"),
    (Some("ch-ml-staging"), None, Some("ml-staging"), "channel"),
    (Some("ch-2"), None, Some("Production Data"), "channel"),
    // Shares its id with an actor: `actor` and `target` filters must not mix them up.
    (
        Some("u-bob"),
        Some("bob@example.org"),
        Some("Bob Jones"),
        "user",
    ),
    (None, Some("erin@example.com"), None, "invitation"),
    (Some("pol-7"), None, Some("Strict Policy"), "policy"),
    (Some("tok-1"), None, None, "token"),
    (Some("grp-ds"), None, Some("Data Science"), "group"),
];

pub(crate) const SERVICES: &[Option<&str>] = &[Some("api"), Some("iam"), Some("repo-sync"), None];

pub(crate) const IPV4: &[Ipv4Addr] = &[
    Ipv4Addr::new(10, 0, 0, 7),
    Ipv4Addr::new(192, 168, 1, 20),
    Ipv4Addr::new(203, 0, 113, 5),
];

pub(crate) const IPV6: &[&str] = &["2001:db8::42", "::1", "fe80::1ff:fe23:4567:890a"];

pub(crate) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh) Safari/605.1",
    "conda/24.1.2 requests/2.31",
    "zebrafish-cli/0.9",
];

pub(crate) const META_KEYS: &[&str] = &["reason", "note", "details", "tags", "count", "dry_run"];

pub(crate) const META_WORDS: &[&str] = &[
    "quarterly",
    "cleanup",
    "prod",
    "production",
    "staging",
    "Straße",
    "ÉTÉ",
    "naïve",
    "東京",
    "alpha",
    "beta",
    "x1",
    "ml-ops",
];

pub(crate) fn random_meta(rng: &mut StdRng) -> Map<String, Value> {
    let mut meta = Map::new();
    for _ in 0..rng.gen_range(0..=3) {
        let key = *pick(rng, META_KEYS);
        let value = match rng.gen_range(0..7) {
            0 | 1 => Value::String(random_phrase(rng)),
            2 => json!(rng.gen_range(-5..500)),
            3 => json!(rng.gen_bool(0.5)),
            4 => json!([*pick(rng, META_WORDS), rng.gen_range(0..10)]),
            5 => json!({"name": random_phrase(rng), "inner": {"level": rng.gen_range(0..3)}}),
            _ => Value::Null,
        };
        meta.insert(key.to_string(), value);
    }
    meta
}

pub(crate) fn random_phrase(rng: &mut StdRng) -> String {
    let n_words = rng.gen_range(1..=3);
    let words: Vec<&str> = (0..n_words).map(|_| *pick(rng, META_WORDS)).collect();
    words.join(" ")
}

pub(crate) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("pools are not empty")
}

pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::builtin)
}

pub(crate) fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("test timestamps are between 1970 and 9999")
}

/// 2026-03-02T00:00:00Z, the first day of the suite's corpora.
pub(crate) fn base_time() -> Timestamp {
    Timestamp::parse("2026-03-02T00:00:00Z").expect("valid timestamp")
}
