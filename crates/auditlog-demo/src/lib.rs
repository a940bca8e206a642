//! A deterministic generator of realistic audit-log history.
//!
//! [`History`] yields `(org_index, NewEvent)` pairs in arrival order for a population of
//! organizations whose sizes follow a Zipf law (organization 0 is the largest, about 20% of
//! the events with the defaults), users spread over the organizations roughly by size, the 27
//! actions of the built-in catalog in a realistic mix (sign-ins first, then token events),
//! targets that fit each action's target type, IPv4 and IPv6 addresses, browser and CLI user
//! agents, request ids and about 150 bytes of `meta`.
//!
//! Everything is a function of the [`HistorySpec`]: the same spec gives the same events, byte
//! for byte, on the same platform. No thread-local or OS randomness is used.

use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::{NewEvent, Timestamp};

/// The exponent of the Zipf law of organization sizes: with 200 organizations the largest
/// gets about 20% of the events.
pub const ZIPF_EXPONENT: f64 = 1.07;

/// What history to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySpec {
    /// How many events [`History`] yields (before any [`History::extend`]).
    pub n_events: u64,
    /// How many organizations (200 by default).
    pub n_orgs: usize,
    /// How many users over all organizations (20,000 by default); every organization has at
    /// least one.
    pub n_users: usize,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// When the history starts.
    pub start: Timestamp,
    /// How many days the `n_events` are spread over (365 by default).
    pub days: u32,
}

impl HistorySpec {
    /// The defaults (200 organizations, 20,000 users, one year from 2025-01-01) with the given
    /// number of events and seed.
    pub fn new(n_events: u64, seed: u64) -> HistorySpec {
        HistorySpec {
            n_events,
            n_orgs: 200,
            n_users: 20_000,
            seed,
            start: Timestamp::from_millis(1_735_689_600_000).expect("2025-01-01 is in range"),
            days: 365,
        }
    }

    /// The end of the history's time span: `start + days`. Events of the first `n_events`
    /// occur before it; events added by [`History::extend`] occur after it.
    pub fn end(&self) -> Timestamp {
        self.start.plus_millis(i64::from(self.days) * MS_PER_DAY)
    }
}

impl Default for HistorySpec {
    /// One million events, seed 42.
    fn default() -> HistorySpec {
        HistorySpec::new(1_000_000, 42)
    }
}

/// The names of the spec's organizations, by organization index (index 0 is the largest):
/// `acme-analytics`, `globex-analytics`, … All distinct; the same for every seed.
pub fn org_names(spec: &HistorySpec) -> Vec<String> {
    let pairs = ORG_PREFIXES.len() * ORG_SUFFIXES.len();
    (0..spec.n_orgs)
        .map(|i| {
            let k = i % pairs;
            let (a, b) = (k % ORG_PREFIXES.len(), k / ORG_PREFIXES.len());
            // For a fixed prefix, `b -> (a + b) % len` is a bijection: all pairs are distinct.
            let suffix = ORG_SUFFIXES[(a + b) % ORG_SUFFIXES.len()];
            match i / pairs {
                0 => format!("{}-{suffix}", ORG_PREFIXES[a]),
                round => format!("{}-{suffix}-{}", ORG_PREFIXES[a], round + 1),
            }
        })
        .collect()
}

/// The expected share of the events of each organization, by index (they sum to 1).
pub fn org_shares(spec: &HistorySpec) -> Vec<f64> {
    let weights: Vec<f64> = (1..=spec.n_orgs)
        .map(|rank| (rank as f64).powf(-ZIPF_EXPONENT))
        .collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// A member of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Platform user id, e.g. `u_3f9c0a51d2e7`.
    pub id: String,
    /// `first.last@domain` (with a number when the name is taken in the organization).
    pub email: String,
    /// Display name, e.g. `José Núñez`.
    pub name: String,
    /// The first name as displayed.
    pub first_name: &'static str,
    /// The last name as displayed.
    pub last_name: &'static str,
    /// The address the person usually connects from.
    ip: String,
    /// Index in [`USER_AGENTS`] of the person's usual client.
    agent: usize,
}

/// A service account of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Id, e.g. `sa_91c2…`.
    pub id: String,
    /// Name, e.g. `ci-deploy`.
    pub name: String,
    ip: String,
    agent: usize,
}

/// One organization of the generated population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgProfile {
    /// Unique name, e.g. `acme-analytics`.
    pub name: String,
    /// Display name, e.g. `Acme Analytics`.
    pub display_name: String,
    /// Email domain, e.g. `acme-analytics.com`.
    pub domain: String,
    /// Members; earlier members are more active.
    pub users: Vec<Person>,
    /// Service accounts.
    pub service_accounts: Vec<ServiceAccount>,
}

/// An iterator over a generated history: `(org_index, event)` in arrival order.
///
/// `occurred_at` increases over the spec's days, except that about 4% of events arrive up to
/// two minutes late, so some are slightly out of order. The event's `org` field is left
/// empty: the org index says which organization it belongs to.
#[derive(Debug, Clone)]
pub struct History {
    spec: HistorySpec,
    orgs: Vec<OrgProfile>,
    /// Cumulative shares of the organizations (Zipf), for sampling by binary search.
    org_cumulative: Vec<f64>,
    rng: SmallRng,
    /// Index of the next event.
    next: u64,
    /// Events to yield in all.
    limit: u64,
    /// Milliseconds between events within the spec's span.
    spacing: f64,
    actions: WeightTable,
    system_actions: WeightTable,
}

impl History {
    /// Builds the population of the spec (organizations, users, service accounts) and a
    /// history of `spec.n_events` events.
    pub fn new(spec: HistorySpec) -> History {
        assert!(spec.n_orgs > 0, "a history needs at least one organization");
        let orgs = population(&spec);
        let span = i64::from(spec.days).max(1) * MS_PER_DAY;
        let spacing = span as f64 / spec.n_events.max(1) as f64;
        History {
            org_cumulative: org_shares(&spec)
                .iter()
                .scan(0.0, |total, share| {
                    *total += share;
                    Some(*total)
                })
                .collect(),
            rng: SmallRng::seed_from_u64(spec.seed ^ 0x6576_656e_7473),
            next: 0,
            limit: spec.n_events,
            spacing,
            actions: WeightTable::new(ACTIONS.iter().map(|&(_, w)| w)),
            system_actions: WeightTable::new(SYSTEM_ACTIONS.iter().map(|&(_, w)| w)),
            orgs,
            spec,
        }
    }

    /// The spec this history was made from.
    pub fn spec(&self) -> &HistorySpec {
        &self.spec
    }

    /// The organizations, by index (index 0 is the largest).
    pub fn orgs(&self) -> &[OrgProfile] {
        &self.orgs
    }

    /// How many events have been yielded so far.
    pub fn generated(&self) -> u64 {
        self.next
    }

    /// Lets the iterator yield `more` events after the ones it was made for: the same
    /// population and mix, occurring after [`HistorySpec::end`] at most a second apart (a live
    /// day after the loaded year).
    pub fn extend(&mut self, more: u64) {
        self.limit += more;
    }

    /// A `now` to validate with: a day after the latest time an event of this iterator can
    /// have (counting the extensions made so far), so no event is "in the future".
    pub fn safe_now(&self) -> Timestamp {
        self.base_time(self.limit).plus_millis(MS_PER_DAY)
    }

    /// The scheduled (unjittered) time of event `index`.
    fn base_time(&self, index: u64) -> Timestamp {
        let n = self.spec.n_events;
        if index < n {
            self.spec
                .start
                .plus_millis((index as f64 * self.spacing) as i64)
        } else {
            let step = self.spacing.min(1000.0);
            self.spec
                .end()
                .plus_millis(((index - n) as f64 * step) as i64)
        }
    }

    fn make_event(&mut self) -> (usize, NewEvent) {
        let index = self.next;
        self.next += 1;
        let mut at = self.base_time(index);
        let step = if index < self.spec.n_events {
            self.spacing
        } else {
            self.spacing.min(1000.0)
        };
        let rng = &mut self.rng;

        // When.
        at = at.plus_millis(rng.gen_range(0..(step as i64).max(1)));
        if rng.gen_ratio(1, 25) {
            at = at.plus_millis(-rng.gen_range(0..120_000));
            if at < self.spec.start {
                at = self.spec.start;
            }
        }

        // Where.
        let roll: f64 = rng.gen();
        let org_index = self
            .org_cumulative
            .partition_point(|&c| c <= roll)
            .min(self.orgs.len() - 1);
        let org = &self.orgs[org_index];

        // Who and what.
        let roll = rng.gen_range(0..1000);
        let (kind, action_idx) = if roll < 10 {
            (
                ActorKind::System,
                SYSTEM_ACTIONS_IDX[self.system_actions.sample(rng)],
            )
        } else if roll < 60 && !org.service_accounts.is_empty() {
            (ActorKind::Service, self.actions.sample(rng))
        } else {
            (ActorKind::User, self.actions.sample(rng))
        };
        let action = ACTIONS[action_idx].0;

        let mut event = NewEvent {
            action_key: action.to_string(),
            occurred_at: Some(rfc3339(at)),
            request_id: Some(
                uuid::Builder::from_random_bytes(rng.gen())
                    .into_uuid()
                    .to_string(),
            ),
            ..NewEvent::default()
        };

        let source;
        let client;
        match kind {
            ActorKind::User => {
                let n = org.users.len();
                let u: f64 = rng.gen();
                let person = &org.users[((u * u * n as f64) as usize).min(n - 1)];
                event.actor_id = Some(person.id.clone());
                event.actor_email = Some(person.email.clone());
                event.actor_name = Some(person.name.clone());
                event.actor_type = Some("user".to_string());
                event.ip_address = Some(if rng.gen_ratio(4, 5) {
                    person.ip.clone()
                } else {
                    random_ip(rng)
                });
                let agent = if rng.gen_ratio(7, 10) {
                    person.agent
                } else {
                    rng.gen_range(0..USER_AGENTS.len())
                };
                event.user_agent = Some(USER_AGENTS[agent].0.to_string());
                client = USER_AGENTS[agent].1;
                source = if USER_AGENTS[agent].1 == "browser" {
                    "web"
                } else {
                    "cli"
                };
            }
            ActorKind::Service => {
                let sa = &org.service_accounts[rng.gen_range(0..org.service_accounts.len())];
                event.actor_id = Some(sa.id.clone());
                event.actor_name = Some(sa.name.clone());
                event.actor_type = Some("service_account".to_string());
                event.ip_address = Some(sa.ip.clone());
                event.user_agent = Some(USER_AGENTS[sa.agent].0.to_string());
                client = USER_AGENTS[sa.agent].1;
                source = "api";
            }
            ActorKind::System => {
                event.actor_id = Some("system".to_string());
                event.actor_name = Some("Anaconda Platform".to_string());
                event.actor_type = Some("system".to_string());
                client = "scheduler";
                source = "system";
            }
        }
        event.service_name = Some(service_for(action).to_string());

        let mut meta = Map::new();
        let mut put = |key: &str, value: Value| {
            meta.insert(key.to_string(), value);
        };
        let s = |text: &str| Value::String(text.to_string());
        let pick = |rng: &mut SmallRng, list: &[&'static str]| list[rng.gen_range(0..list.len())];

        match action {
            "authentication_success" => {
                event.target_id = Some(org.name.clone());
                event.target_name = Some(org.display_name.clone());
                let method = match kind {
                    ActorKind::Service => "client_credentials",
                    _ if source == "cli" => pick(rng, &["api_key", "device_code", "password"]),
                    _ => pick(
                        rng,
                        &["password", "sso_saml", "sso_oidc", "github", "google"],
                    ),
                };
                put("method", s(method));
                put(
                    "mfa",
                    Value::Bool(kind == ActorKind::User && rng.gen_ratio(3, 5)),
                );
                put("source", s(source));
                put("session_id", Value::String(long_hex(rng)));
                put("country", s(pick(rng, COUNTRIES)));
            }
            "token_created" | "token_revoked" => {
                event.target_id = Some(prefixed_hex("tok_", rng.gen(), 16));
                let name = pick(rng, TOKEN_NAMES);
                event.target_name = Some(name.to_string());
                put("token_name", s(name));
                if action == "token_created" {
                    put("scopes", s(pick(rng, TOKEN_SCOPES)));
                    let days = [30i64, 90, 180, 365][rng.gen_range(0..4)];
                    put(
                        "expires_at",
                        Value::String(date(at.plus_millis(days * MS_PER_DAY))),
                    );
                } else {
                    let reason = if kind == ActorKind::System {
                        "expired"
                    } else {
                        pick(
                            rng,
                            &[
                                "user_request",
                                "user_request",
                                "admin",
                                "rotated",
                                "compromised",
                            ],
                        )
                    };
                    put("reason", s(reason));
                    put("age_days", Value::from(rng.gen_range(1..400)));
                }
                put("source", s(source));
            }
            "channel_created"
            | "channel_deleted"
            | "group_assigned_to_channel"
            | "group_unassigned_from_channel" => {
                let (idx, channel) = pick_idx(rng, CHANNELS);
                event.target_id = Some(stable_id("ch_", org_index, 1, idx));
                event.target_name = Some(channel.to_string());
                put("channel_name", s(channel));
                match action {
                    "channel_created" => {
                        put(
                            "visibility",
                            s(pick(
                                rng,
                                &["private", "private", "authenticated", "public"],
                            )),
                        );
                        if channel.contains("mirror") {
                            put(
                                "mirror_of",
                                s(pick(
                                    rng,
                                    &["conda-forge", "anaconda/main", "pytorch", "bioconda"],
                                )),
                            );
                        }
                    }
                    "channel_deleted" => put("package_count", Value::from(rng.gen_range(0..5000))),
                    _ => {
                        put("group_name", s(pick(rng, GROUPS)));
                        put(
                            "permission",
                            s(pick(rng, &["read", "read", "write", "admin"])),
                        );
                    }
                }
                put("source", s(source));
            }
            "invitation_created" => {
                let invitee = &org.users[rng.gen_range(0..org.users.len())];
                event.target_id = Some(prefixed_hex("inv_", rng.gen(), 12));
                event.target_email = Some(invitee.email.clone());
                put(
                    "role",
                    s(pick(rng, &["member", "member", "member", "admin"])),
                );
                put("expires_in_days", Value::from(7));
                put("product", s(pick(rng, PRODUCTS)));
                put("source", s(source));
            }
            "organization_updated" => {
                event.target_id = Some(org.name.clone());
                event.target_name = Some(org.display_name.clone());
                put("changed_fields", s(pick(rng, ORG_FIELDS)));
                put("source", s(source));
            }
            "organization_user_added"
            | "organization_user_removed"
            | "organization_user_updated"
            | "product_assigned"
            | "product_revoked"
            | "user_added_to_group"
            | "user_removed_from_group" => {
                let target = &org.users[rng.gen_range(0..org.users.len())];
                event.target_id = Some(target.id.clone());
                event.target_email = Some(target.email.clone());
                event.target_name = Some(target.name.clone());
                match action {
                    "organization_user_added" => {
                        put("role", s(pick(rng, &["member", "member", "admin"])));
                        put("via", s(pick(rng, &["invitation", "scim", "sso_jit"])));
                        put(
                            "invitation_id",
                            Value::String(prefixed_hex("inv_", rng.gen(), 12)),
                        );
                    }
                    "organization_user_removed" => {
                        put(
                            "reason",
                            s(pick(
                                rng,
                                &["left_company", "offboarding", "scim_deprovisioned", "admin"],
                            )),
                        );
                        put("seats_released", Value::from(rng.gen_range(0..3)));
                    }
                    "organization_user_updated" => {
                        let promote = rng.gen_ratio(1, 2);
                        put("old_role", s(if promote { "member" } else { "admin" }));
                        put("new_role", s(if promote { "admin" } else { "member" }));
                    }
                    "product_assigned" | "product_revoked" => {
                        put("product", s(pick(rng, PRODUCTS)));
                        put(
                            "seat_type",
                            s(pick(rng, &["standard", "standard", "developer"])),
                        );
                        let total = rng.gen_range(10..500);
                        put("seats_used", Value::from(rng.gen_range(1..=total)));
                        put("seats_total", Value::from(total));
                    }
                    _ => {
                        let (idx, group) = pick_idx(rng, GROUPS);
                        put("group_name", s(group));
                        put(
                            "group_id",
                            Value::String(stable_id("grp_", org_index, 2, idx)),
                        );
                    }
                }
                put("source", s(source));
            }
            "policy_assigned" | "policy_created" | "policy_deleted" | "policy_unassigned"
            | "policy_updated" => {
                let (idx, policy) = pick_idx(rng, POLICIES);
                event.target_id = Some(stable_id("pol_", org_index, 3, idx));
                event.target_name = Some(policy.to_string());
                put("policy_name", s(policy));
                match action {
                    "policy_assigned" | "policy_unassigned" => {
                        put("assignee_type", s("group"));
                        put("assignee", s(pick(rng, GROUPS)));
                    }
                    "policy_created" => {
                        put(
                            "policy_type",
                            s(pick(
                                rng,
                                &[
                                    "package_filter",
                                    "cve_threshold",
                                    "license",
                                    "channel_access",
                                ],
                            )),
                        );
                        put("rules", Value::from(rng.gen_range(1..25)));
                    }
                    "policy_updated" => {
                        put(
                            "changed_fields",
                            s(pick(
                                rng,
                                &["rules", "description", "rules,priority", "name"],
                            )),
                        );
                        put("version", Value::from(rng.gen_range(2..40)));
                    }
                    _ => put("assignments_removed", Value::from(rng.gen_range(0..12))),
                }
                put("source", s(source));
            }
            "service_account_created" | "service_account_deleted" | "service_account_updated" => {
                let sa_name = pick(rng, SERVICE_ACCOUNT_NAMES);
                event.target_id = Some(prefixed_hex("sa_", rng.gen(), 12));
                event.target_name = Some(sa_name.to_string());
                put("service_account_name", s(sa_name));
                match action {
                    "service_account_created" => {
                        put("role", s(pick(rng, &["read", "read_write", "admin"])));
                        put(
                            "expires_at",
                            Value::String(date(at.plus_millis(365 * MS_PER_DAY))),
                        );
                    }
                    "service_account_deleted" => {
                        put("tokens_revoked", Value::from(rng.gen_range(0..6)))
                    }
                    _ => put(
                        "changed_fields",
                        s(pick(rng, &["role", "description", "expires_at"])),
                    ),
                }
                put("source", s(source));
            }
            "user_group_created" | "user_group_deleted" => {
                let (idx, group) = pick_idx(rng, GROUPS);
                event.target_id = Some(stable_id("grp_", org_index, 2, idx));
                event.target_name = Some(group.to_string());
                put("group_name", s(group));
                put(
                    "member_count",
                    Value::from(if action == "user_group_created" {
                        0
                    } else {
                        rng.gen_range(0..80)
                    }),
                );
                put("source", s(source));
            }
            "audit_log_export_requested" => {
                event.target_id = Some(
                    uuid::Builder::from_random_bytes(rng.gen())
                        .into_uuid()
                        .to_string(),
                );
                event.target_name = Some("audit log export".to_string());
                put("format", s(pick(rng, &["jsonl", "jsonl", "csv"])));
                let back = rng.gen_range(1..90) * MS_PER_DAY;
                put("from_date", Value::String(date(at.plus_millis(-back))));
                put("to_date", Value::String(date(at)));
                put(
                    "filters",
                    s(pick(
                        rng,
                        &[
                            "",
                            "action_key:token_created",
                            "actor_type:service_account",
                            "action_key:policy_updated,policy_created",
                        ],
                    )),
                );
                put("source", s(source));
            }
            other => unreachable!("no generator for action {other}"),
        }
        if !meta.contains_key("client") && meta.len() < 6 {
            meta.insert("client".to_string(), Value::String(client.to_string()));
        }
        if meta.len() < 6 {
            // A W3C trace id: 32 hex digits.
            meta.insert("trace_id".to_string(), Value::String(long_hex(rng)));
        }
        event.meta = Some(Value::Object(meta));
        (org_index, event)
    }
}

impl Iterator for History {
    type Item = (usize, NewEvent);

    fn next(&mut self) -> Option<(usize, NewEvent)> {
        (self.next < self.limit).then(|| self.make_event())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.limit - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActorKind {
    User,
    Service,
    System,
}

/// Sampling by integer weights: cumulative sums and a binary search.
#[derive(Debug, Clone)]
struct WeightTable {
    cumulative: Vec<u32>,
}

impl WeightTable {
    fn new(weights: impl Iterator<Item = u32>) -> WeightTable {
        let mut total = 0;
        let cumulative = weights
            .map(|w| {
                total += w;
                total
            })
            .collect();
        WeightTable { cumulative }
    }

    fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let roll = rng.gen_range(0..*self.cumulative.last().expect("non-empty table"));
        self.cumulative.partition_point(|&c| c <= roll)
    }
}

/// Builds the organizations with their members and service accounts.
fn population(spec: &HistorySpec) -> Vec<OrgProfile> {
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x7065_6f70_6c65);
    let names = org_names(spec);
    let shares = org_shares(spec);

    // Members by share, at least one each; what rounding leaves goes to the largest.
    let mut sizes: Vec<usize> = shares
        .iter()
        .map(|s| ((s * spec.n_users as f64) as usize).max(1))
        .collect();
    let assigned: usize = sizes.iter().sum();
    if assigned < spec.n_users {
        sizes[0] += spec.n_users - assigned;
    }

    let mut orgs = Vec::with_capacity(spec.n_orgs);
    for (org_index, (name, size)) in names.into_iter().zip(sizes).enumerate() {
        let domain = format!("{name}.com");
        let display_name = name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut taken = std::collections::HashMap::<(usize, usize), u32>::new();
        let users = (0..size)
            .map(|user_index| {
                let f = rng.gen_range(0..FIRST_NAMES.len());
                let l = rng.gen_range(0..LAST_NAMES.len());
                let (first, first_ascii) = FIRST_NAMES[f];
                let (last, last_ascii) = LAST_NAMES[l];
                let seen = taken.entry((f, l)).or_insert(0);
                *seen += 1;
                let email = if *seen == 1 {
                    format!("{first_ascii}.{last_ascii}@{domain}")
                } else {
                    format!("{first_ascii}.{last_ascii}{seen}@{domain}")
                };
                Person {
                    id: stable_id("u_", org_index, 0, user_index),
                    email,
                    name: format!("{first} {last}"),
                    first_name: first,
                    last_name: last,
                    ip: random_ip(&mut rng),
                    agent: rng.gen_range(0..USER_AGENTS.len()),
                }
            })
            .collect();
        let n_sa = (1 + size / 150).min(SERVICE_ACCOUNT_NAMES.len());
        let service_accounts = (0..n_sa)
            .map(|i| ServiceAccount {
                id: stable_id("sa_", org_index, 4, i),
                name: SERVICE_ACCOUNT_NAMES[i].to_string(),
                ip: random_ipv4(&mut rng),
                agent: MACHINE_AGENTS[rng.gen_range(0..MACHINE_AGENTS.len())],
            })
            .collect();
        orgs.push(OrgProfile {
            name,
            display_name,
            domain,
            users,
            service_accounts,
        });
    }
    orgs
}

fn pick_idx<R: Rng>(rng: &mut R, list: &[&'static str]) -> (usize, &'static str) {
    let idx = rng.gen_range(0..list.len());
    (idx, list[idx])
}

/// The service that emits an action.
fn service_for(action: &str) -> &'static str {
    if action.starts_with("audit_log") {
        "auditlog"
    } else if action.starts_with("channel") || action.ends_with("channel") {
        "repo"
    } else if action.starts_with("token")
        || action == "authentication_success"
        || action.starts_with("policy")
    {
        "iam"
    } else {
        "anaconda-cloud"
    }
}

/// A well-mixed 64-bit hash (SplitMix64's finalizer).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An id that is always the same for the same organization, kind and index.
fn stable_id(prefix: &str, org: usize, kind: u64, index: usize) -> String {
    prefixed_hex(
        prefix,
        mix(mix(org as u64 ^ (kind << 56)) ^ index as u64),
        12,
    )
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The low `digits` hex digits of `value` (at most 16).
fn hex(value: u64, digits: usize) -> String {
    prefixed_hex("", value, digits)
}

/// 32 random hex digits.
fn long_hex<R: Rng>(rng: &mut R) -> String {
    let mut out = hex(rng.gen(), 16);
    out.push_str(&hex(rng.gen(), 16));
    out
}

fn prefixed_hex(prefix: &str, value: u64, digits: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + digits);
    out.push_str(prefix);
    for i in (0..digits.min(16)).rev() {
        out.push(HEX[((value >> (i * 4)) & 0xf) as usize] as char);
    }
    out
}

/// `YYYY-MM-DD` of a timestamp.
fn date(at: Timestamp) -> String {
    let mut text = rfc3339(at);
    text.truncate(10);
    text
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as `Timestamp`'s `Display` writes it but without the
/// formatting machinery (this is on the generator's hot path).
fn rfc3339(at: Timestamp) -> String {
    let ms = at.as_millis();
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    let mut out = [0u8; 24];
    let mut put = |at: usize, value: i64, width: usize| {
        let mut value = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, hour, 2);
    put(14, minute, 2);
    put(17, second, 2);
    put(20, milli, 3);
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[i] = c;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// The proleptic Gregorian date of a day since the epoch (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn random_ip<R: Rng>(rng: &mut R) -> String {
    if rng.gen_ratio(1, 5) {
        let [a, b, c, d] = IPV6_PREFIXES[rng.gen_range(0..IPV6_PREFIXES.len())];
        let r: u64 = rng.gen();
        let [e, f, g, h] = [
            r as u16,
            (r >> 16) as u16,
            (r >> 32) as u16,
            (r >> 48) as u16,
        ];
        std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string()
    } else {
        random_ipv4(rng)
    }
}

fn random_ipv4<R: Rng>(rng: &mut R) -> String {
    let first = IPV4_FIRST_OCTETS[rng.gen_range(0..IPV4_FIRST_OCTETS.len())];
    let rest: u32 = rng.gen();
    format!(
        "{first}.{}.{}.{}",
        (rest >> 16) as u8,
        (rest >> 8) as u8,
        (rest as u8).max(1)
    )
}

/// The 27 actions of the built-in catalog with their weights (per 10,000 events of users and
/// service accounts).
const ACTIONS: [(&str, u32); 27] = [
    ("audit_log_export_requested", 200),
    ("channel_created", 400),
    ("channel_deleted", 100),
    ("group_assigned_to_channel", 300),
    ("group_unassigned_from_channel", 150),
    ("invitation_created", 400),
    ("organization_updated", 100),
    ("organization_user_added", 400),
    ("organization_user_removed", 150),
    ("organization_user_updated", 300),
    ("authentication_success", 3500),
    ("policy_assigned", 300),
    ("policy_created", 150),
    ("policy_deleted", 50),
    ("policy_unassigned", 150),
    ("policy_updated", 250),
    ("product_assigned", 500),
    ("product_revoked", 150),
    ("service_account_created", 100),
    ("service_account_deleted", 50),
    ("service_account_updated", 100),
    ("user_added_to_group", 400),
    ("user_group_created", 100),
    ("user_group_deleted", 50),
    ("user_removed_from_group", 150),
    ("token_created", 850),
    ("token_revoked", 650),
];

/// What the platform itself does (expiries, deprovisioning, scheduled exports), with weights.
const SYSTEM_ACTIONS: [(&str, u32); 6] = [
    ("token_revoked", 40),
    ("product_revoked", 20),
    ("organization_user_removed", 15),
    ("user_removed_from_group", 10),
    ("audit_log_export_requested", 10),
    ("organization_updated", 5),
];

/// Indexes into [`ACTIONS`] of [`SYSTEM_ACTIONS`].
const SYSTEM_ACTIONS_IDX: [usize; 6] = [26, 17, 8, 24, 0, 6];

const ORG_PREFIXES: [&str; 20] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "aperture",
    "vandelay",
    "pied-piper",
    "massive",
    "oscorp",
    "gringotts",
    "monarch",
    "nakatomi",
    "blue-sun",
];

const ORG_SUFFIXES: [&str; 10] = [
    "analytics",
    "labs",
    "bio",
    "capital",
    "robotics",
    "research",
    "health",
    "energy",
    "data",
    "systems",
];

/// First names as displayed, and as written in an email address.
const FIRST_NAMES: [(&str, &str); 64] = [
    ("Alice", "alice"),
    ("Bob", "bob"),
    ("Carol", "carol"),
    ("David", "david"),
    ("Emma", "emma"),
    ("Farid", "farid"),
    ("Grace", "grace"),
    ("Hiroshi", "hiroshi"),
    ("Isabel", "isabel"),
    ("James", "james"),
    ("Julia", "julia"),
    ("Karim", "karim"),
    ("Laura", "laura"),
    ("Mateo", "mateo"),
    ("Mei", "mei"),
    ("Nadia", "nadia"),
    ("Oliver", "oliver"),
    ("Priya", "priya"),
    ("Quentin", "quentin"),
    ("Rosa", "rosa"),
    ("Samuel", "samuel"),
    ("Sofia", "sofia"),
    ("Thomas", "thomas"),
    ("Uma", "uma"),
    ("Victor", "victor"),
    ("Wei", "wei"),
    ("Xavier", "xavier"),
    ("Yara", "yara"),
    ("Zoë", "zoe"),
    ("José", "jose"),
    ("François", "francois"),
    ("Ana", "ana"),
    ("Ben", "ben"),
    ("Chloe", "chloe"),
    ("Daniel", "daniel"),
    ("Elena", "elena"),
    ("Fatima", "fatima"),
    ("George", "george"),
    ("Hannah", "hannah"),
    ("Ivan", "ivan"),
    ("Jack", "jack"),
    ("Kenji", "kenji"),
    ("Leila", "leila"),
    ("Lucas", "lucas"),
    ("Maria", "maria"),
    ("Noah", "noah"),
    ("Olga", "olga"),
    ("Pedro", "pedro"),
    ("Rahul", "rahul"),
    ("Sara", "sara"),
    ("Tariq", "tariq"),
    ("Valentina", "valentina"),
    ("William", "william"),
    ("Yusuf", "yusuf"),
    ("Aisha", "aisha"),
    ("Chen", "chen"),
    ("Diego", "diego"),
    ("Ingrid", "ingrid"),
    ("Kwame", "kwame"),
    ("Linh", "linh"),
    ("Marco", "marco"),
    ("Nina", "nina"),
    ("Omar", "omar"),
    ("Ravi", "ravi"),
];

/// Last names as displayed, and as written in an email address.
const LAST_NAMES: [(&str, &str); 64] = [
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Garcia", "garcia"),
    ("Miller", "miller"),
    ("Davis", "davis"),
    ("Martinez", "martinez"),
    ("Lopez", "lopez"),
    ("Wilson", "wilson"),
    ("Anderson", "anderson"),
    ("Thomas", "thomas"),
    ("Taylor", "taylor"),
    ("Moore", "moore"),
    ("Jackson", "jackson"),
    ("Martin", "martin"),
    ("Lee", "lee"),
    ("Thompson", "thompson"),
    ("White", "white"),
    ("Harris", "harris"),
    ("Clark", "clark"),
    ("Lewis", "lewis"),
    ("Robinson", "robinson"),
    ("Walker", "walker"),
    ("Young", "young"),
    ("Allen", "allen"),
    ("King", "king"),
    ("Wright", "wright"),
    ("Scott", "scott"),
    ("Nguyen", "nguyen"),
    ("Hill", "hill"),
    ("Flores", "flores"),
    ("Müller", "mueller"),
    ("Núñez", "nunez"),
    ("O'Brien", "obrien"),
    ("Schmidt", "schmidt"),
    ("Rossi", "rossi"),
    ("Kowalski", "kowalski"),
    ("Tanaka", "tanaka"),
    ("Yamamoto", "yamamoto"),
    ("Kim", "kim"),
    ("Park", "park"),
    ("Wang", "wang"),
    ("Zhang", "zhang"),
    ("Patel", "patel"),
    ("Sharma", "sharma"),
    ("Okafor", "okafor"),
    ("Mensah", "mensah"),
    ("Haddad", "haddad"),
    ("Cohen", "cohen"),
    ("Ivanova", "ivanova"),
    ("Petrov", "petrov"),
    ("Silva", "silva"),
    ("Santos", "santos"),
    ("Dubois", "dubois"),
    ("Lefebvre", "lefebvre"),
    ("Jensen", "jensen"),
    ("Larsen", "larsen"),
    ("Novak", "novak"),
    ("Horvat", "horvat"),
    ("Bianchi", "bianchi"),
    ("Fischer", "fischer"),
    ("Andersson", "andersson"),
    ("Murphy", "murphy"),
];

/// Channel names.
pub const CHANNELS: &[&str] = &[
    "ml-prod",
    "ml-staging",
    "conda-forge-mirror",
    "pytorch-mirror",
    "bioconda-mirror",
    "data-science",
    "internal-tools",
    "release",
    "nightly",
    "research",
    "finance-models",
    "geo-analytics",
    "approved-packages",
    "quarantine",
    "gpu-builds",
    "etl",
    "dashboards",
    "notebooks",
    "main-mirror",
    "r-packages",
    "legacy-py27",
    "security-reviewed",
    "sandbox",
    "partners",
];

/// User group names.
pub const GROUPS: &[&str] = &[
    "data-science",
    "ml-engineering",
    "platform",
    "analysts",
    "admins",
    "security",
    "research",
    "contractors",
    "finance",
    "devops",
    "interns",
    "bioinformatics",
    "quant-team",
    "support",
    "release-managers",
    "everyone",
];

/// Policy names.
pub const POLICIES: &[&str] = &[
    "allow-conda-forge",
    "block-cve-critical",
    "block-cve-high",
    "python-3-12-only",
    "no-gpl-licenses",
    "approved-channels-only",
    "pin-numpy-1x",
    "weekly-mirror-sync",
    "deny-unsigned-packages",
    "restrict-pypi",
    "default-member-access",
    "admin-full-access",
    "read-only-contractors",
    "quarantine-new-packages",
];

/// Product names.
pub const PRODUCTS: &[&str] = &[
    "Anaconda Business",
    "Anaconda Business",
    "Anaconda Pro",
    "Anaconda Enterprise",
];

const TOKEN_NAMES: &[&str] = &[
    "laptop",
    "ci-pipeline",
    "jupyterhub",
    "github-actions",
    "workstation",
    "conda-config",
    "airflow",
    "deploy-key",
    "notebook-server",
    "build-farm",
    "personal",
    "mirror-sync",
];

const TOKEN_SCOPES: &[&str] = &[
    "repo:read conda:download",
    "repo:read repo:write",
    "conda:download",
    "repo:read repo:write channel:admin",
    "cloud:read",
    "repo:read conda:download cloud:read",
];

const SERVICE_ACCOUNT_NAMES: &[&str] = &[
    "ci-deploy",
    "github-actions",
    "mirror-sync",
    "jenkins",
    "airflow-scheduler",
    "terraform",
    "data-pipeline",
    "backup-job",
    "scim-provisioner",
    "security-scanner",
];

const ORG_FIELDS: &[&str] = &[
    "display_name",
    "billing_email",
    "display_name,logo",
    "sso_settings",
    "default_role",
    "session_timeout",
];

const COUNTRIES: &[&str] = &[
    "US", "US", "US", "GB", "DE", "IN", "BR", "JP", "CA", "FR", "NL", "SG",
];

/// User agents and the client they name (`browser` for a web browser).
const USER_AGENTS: [(&str, &str); 20] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "browser"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "browser"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "browser"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", "browser"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "browser"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36", "browser"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87", "browser"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "browser"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:127.0) Gecko/20100101 Firefox/127.0", "browser"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "browser"),
    ("anaconda-cli/1.12.3 python/3.11.9 Linux/6.5.0", "anaconda-cli/1.12"),
    ("anaconda-cli/1.12.1 python/3.12.4 Darwin/23.5.0", "anaconda-cli/1.12"),
    ("anaconda-cli/1.11.0 python/3.10.14 Windows/10", "anaconda-cli/1.11"),
    ("conda/24.5.0 requests/2.32.3 CPython/3.12.4 Linux/6.5.0 ubuntu/22.04 glibc/2.35", "conda/24.5"),
    ("conda/24.9.2 requests/2.32.3 CPython/3.11.9 Darwin/23.5.0 OSX/14.5", "conda/24.9"),
    ("conda/23.11.0 requests/2.31.0 CPython/3.10.13 Windows/10 Windows/10.0.19045", "conda/23.11"),
    ("python-requests/2.32.3", "python-requests/2.32"),
    ("anaconda-cloud-auth/0.7.1 python/3.12.4", "anaconda-cloud-auth/0.7"),
    ("curl/8.7.1", "curl/8.7"),
    ("terraform-provider-anaconda/0.4.2 (+https://www.terraform.io) Terraform/1.8.5", "terraform/1.8"),
];

/// Indexes into [`USER_AGENTS`] of the clients machines use.
const MACHINE_AGENTS: [usize; 6] = [10, 13, 16, 17, 18, 19];

const IPV4_FIRST_OCTETS: [u8; 24] = [
    3, 13, 18, 20, 23, 34, 35, 44, 52, 54, 64, 66, 73, 76, 98, 104, 107, 136, 142, 157, 185, 193,
    203, 212,
];

/// The first 64 bits of IPv6 addresses of a few large ISPs and clouds.
const IPV6_PREFIXES: [[u16; 4]; 6] = [
    [0x2600, 0x1700, 0x5a1, 0x3c0],
    [0x2a02, 0x8070, 0x1c4, 0xa900],
    [0x2001, 0x4860, 0x7, 0x40e],
    [0x2603, 0x8080, 0xf02, 0x1b00],
    [0x2a01, 0x4f8, 0xc17, 0x2e1],
    [0x2406, 0xda18, 0x9e, 0xc200],
];

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use auditlog_core::validate::validate;
    use auditlog_core::Catalog;

    use super::*;

    fn small(n_events: u64, seed: u64) -> HistorySpec {
        HistorySpec::new(n_events, seed)
    }

    #[test]
    fn same_seed_same_history_other_seed_other_history() {
        let a: Vec<_> = History::new(small(2_000, 7)).collect();
        let b: Vec<_> = History::new(small(2_000, 7)).collect();
        let c: Vec<_> = History::new(small(2_000, 8)).collect();
        assert_eq!(a.len(), 2_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(org_names(&small(1, 7)), org_names(&small(1, 8)));
    }

    #[test]
    fn formats_times_like_timestamp_display() {
        let mut rng = SmallRng::seed_from_u64(1);
        let edges = [
            0,
            951_782_400_000,
            1_709_164_800_000,
            4_107_542_399_999,
            253_402_300_799_999,
        ];
        for ms in edges
            .into_iter()
            .chain((0..10_000).map(|_| rng.gen_range(0..253_402_300_799_999)))
        {
            let at = Timestamp::from_millis(ms).unwrap();
            assert_eq!(rfc3339(at), at.to_string());
        }
        assert_eq!(
            date(Timestamp::parse("2024-02-29T23:59:59.999Z").unwrap()),
            "2024-02-29"
        );
    }

    #[test]
    fn org_names_are_distinct_and_start_with_acme() {
        let names = org_names(&small(1, 1));
        assert_eq!(names.len(), 200);
        assert_eq!(names[0], "acme-analytics");
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), 200);
        let mut spec = small(1, 1);
        spec.n_orgs = 450;
        let names = org_names(&spec);
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), 450);
    }

    #[test]
    fn population_has_the_requested_users_with_unique_emails() {
        let history = History::new(small(1, 3));
        let users: Vec<&Person> = history.orgs().iter().flat_map(|o| &o.users).collect();
        assert_eq!(users.len(), 20_000);
        assert_eq!(
            users.iter().map(|u| &u.email).collect::<HashSet<_>>().len(),
            20_000
        );
        assert_eq!(
            users.iter().map(|u| &u.id).collect::<HashSet<_>>().len(),
            20_000
        );
        assert!(history.orgs().iter().all(|o| !o.users.is_empty()));
        let largest = history.orgs()[0].users.len();
        assert!((3_000..5_000).contains(&largest), "{largest}");
    }

    #[test]
    fn org_sizes_follow_zipf_with_largest_about_a_fifth() {
        let n = 100_000;
        let mut per_org = vec![0u64; 200];
        for (org, _) in History::new(small(n, 11)) {
            per_org[org] += 1;
        }
        let share = per_org[0] as f64 / n as f64;
        assert!((0.15..=0.25).contains(&share), "largest share {share}");
        let largest = per_org
            .iter()
            .enumerate()
            .max_by_key(|&(_, c)| *c)
            .unwrap()
            .0;
        assert_eq!(largest, 0);
        assert!(per_org[1] > per_org[10] && per_org[10] > per_org[150]);
        assert!(per_org.iter().filter(|&&c| c > 0).count() >= 190);
    }

    #[test]
    fn action_and_actor_mix() {
        let n = 100_000;
        let catalog = Catalog::builtin();
        let mut actions: HashMap<String, u64> = HashMap::new();
        let mut actors: HashMap<String, u64> = HashMap::new();
        let mut meta_bytes = 0;
        for (_, event) in History::new(small(n, 5)) {
            *actions.entry(event.action_key.clone()).or_default() += 1;
            *actors.entry(event.actor_type.clone().unwrap()).or_default() += 1;
            meta_bytes += serde_json::to_vec(event.meta.as_ref().unwrap())
                .unwrap()
                .len();
        }
        let keys: HashSet<&str> = catalog.actions().iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys.len(), 27);
        assert_eq!(
            actions.keys().map(String::as_str).collect::<HashSet<_>>(),
            keys
        );
        let share = |key: &str| actions[key] as f64 / n as f64;
        assert!((0.30..0.38).contains(&share("authentication_success")));
        let tokens = share("token_created") + share("token_revoked");
        assert!((0.13..0.18).contains(&tokens), "{tokens}");
        let most = actions.iter().max_by_key(|(_, c)| **c).unwrap().0;
        assert_eq!(most, "authentication_success");
        let actor = |kind: &str| actors[kind] as f64 / n as f64;
        assert!((0.04..0.06).contains(&actor("service_account")));
        assert!((0.006..0.014).contains(&actor("system")));
        let mean_meta = meta_bytes as f64 / n as f64;
        assert!(
            (130.0..180.0).contains(&mean_meta),
            "mean meta {mean_meta} bytes"
        );
    }

    #[test]
    fn every_event_validates_and_time_mostly_increases() {
        let spec = small(50_000, 9);
        let mut history = History::new(spec.clone());
        history.extend(5_000);
        let now = history.safe_now();
        let catalog = Catalog::builtin();
        let mut previous = spec.start;
        let mut out_of_order = 0;
        let mut count = 0;
        for (_, event) in history {
            let body = validate(event.clone(), &catalog, now)
                .unwrap_or_else(|e| panic!("{event:?} is invalid: {e:?}"));
            let action = catalog.get(&body.action_key).unwrap();
            assert_eq!(
                body.target_type.as_deref(),
                Some(action.target_type.as_str())
            );
            if action.target_type == "user" {
                assert!(body.target_email.is_some(), "{event:?}");
            }
            assert!(body.occurred_at >= spec.start);
            if count < spec.n_events {
                assert!(body.occurred_at < spec.end());
            } else {
                assert!(body.occurred_at >= spec.end().plus_millis(-120_000));
            }
            if body.occurred_at < previous {
                out_of_order += 1;
            }
            previous = previous.max(body.occurred_at);
            count += 1;
        }
        assert_eq!(count, 55_000);
        assert!(out_of_order > 0 && out_of_order < 5_000, "{out_of_order}");
    }
}
