//! `events`: on a small history whose answers are spelled out by hand, each filter flag,
//! `--limit` and both output formats return exactly the expected events, newest first; and on
//! a larger one, paging past the 1000-event page size neither skips nor repeats an event.

use std::collections::HashSet;

use auditlog_core::Timestamp;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{valid_event, Env};

/// One event of the known history; `name` is its `request_id`, by which results are compared.
struct Known {
    name: &'static str,
    at: &'static str,
    action: &'static str,
    actor: Actor,
    target: Option<&'static str>,
    meta: Value,
}

#[derive(Clone, Copy)]
enum Actor {
    /// A person with an id and an email.
    Alice,
    /// A person with an id and an email.
    Bob,
    /// A service account known only by its id.
    Carol,
    /// A person known only by email.
    Dave,
}

impl Known {
    fn to_line(&self) -> String {
        let mut event = json!({
            "action_key": self.action,
            "service_name": "console",
            "request_id": self.name,
            "occurred_at": self.at,
            "meta": self.meta,
        });
        let fields = event.as_object_mut().expect("an object");
        match self.actor {
            Actor::Alice => {
                fields.insert("actor_id".into(), json!("user-alice"));
                fields.insert("actor_email".into(), json!("alice@example.com"));
            }
            Actor::Bob => {
                fields.insert("actor_id".into(), json!("user-bob"));
                fields.insert("actor_email".into(), json!("bob@example.com"));
            }
            Actor::Carol => {
                fields.insert("actor_id".into(), json!("svc-carol"));
                fields.insert("actor_type".into(), json!("service_account"));
            }
            Actor::Dave => {
                fields.insert("actor_email".into(), json!("dave@example.com"));
            }
        }
        if let Some(target) = self.target {
            fields.insert("target_name".into(), json!(target));
        }
        event.to_string()
    }
}

/// The known history in import order (so `seq` is the position here, plus one). Sorted newest
/// first it reads: r9, r8, r7, r6, r10, r5, r4, r3, r2, r1 (r6 and r10 occurred at the same
/// instant; r6 has the higher seq, so it comes first).
fn history() -> Vec<Known> {
    use Actor::*;
    let none = || json!({});
    vec![
        Known {
            name: "r5",
            at: "2025-03-03T00:00:00Z",
            action: "organization_updated",
            actor: Bob,
            target: None,
            meta: none(),
        },
        Known {
            name: "r1",
            at: "2025-03-01T09:00:00Z",
            action: "channel_created",
            actor: Alice,
            target: Some("ml-prod"),
            meta: none(),
        },
        Known {
            name: "r10",
            at: "2025-03-03T09:30:00+01:00",
            action: "token_revoked",
            actor: Alice,
            target: Some("deploy-token"),
            meta: none(),
        },
        Known {
            name: "r8",
            at: "2025-03-05T00:00:00Z",
            action: "authentication_success",
            actor: Bob,
            target: None,
            meta: none(),
        },
        Known {
            name: "r3",
            at: "2025-03-02T09:00:00Z",
            action: "channel_deleted",
            actor: Alice,
            target: Some("ml-staging"),
            meta: none(),
        },
        Known {
            name: "r6",
            at: "2025-03-03T08:30:00Z",
            action: "channel_created",
            actor: Carol,
            target: Some("data-prod"),
            meta: none(),
        },
        Known {
            name: "r2",
            at: "2025-03-01T10:00:00Z",
            action: "channel_created",
            actor: Bob,
            target: Some("ml-staging"),
            meta: none(),
        },
        Known {
            name: "r9",
            at: "2025-03-05T06:00:00Z",
            action: "policy_created",
            actor: Dave,
            target: Some("ML-Policy"),
            meta: json!({"note": "Promoted model"}),
        },
        Known {
            name: "r4",
            at: "2025-03-02T12:00:00Z",
            action: "token_revoked",
            actor: Carol,
            target: Some("ci-token"),
            meta: none(),
        },
        Known {
            name: "r7",
            at: "2025-03-04T23:59:59.999Z",
            action: "policy_created",
            actor: Alice,
            target: Some("prod-policy"),
            meta: none(),
        },
    ]
}

/// An environment whose `acme` holds the known history, and `acme`'s id.
fn known_history() -> (Env, Uuid) {
    let env = Env::new();
    let org_id = env.create_org("acme");
    // Another organization's events must never show up in acme's results.
    env.create_org("globex");
    let lines: Vec<String> = history().iter().map(Known::to_line).collect();
    env.import("acme", &lines, &[]).expect_code(0);
    env.import("globex", &lines, &[]).expect_code(0);
    (env, org_id)
}

/// The `request_id`s `events --format jsonl ARGS…` prints for `acme`, in order.
fn names(env: &Env, args: &[&str]) -> Vec<String> {
    env.events_jsonl("acme", args)
        .iter()
        .map(|record| {
            assert_eq!(record["org_name"], "acme");
            record["request_id"]
                .as_str()
                .expect("request_id")
                .to_string()
        })
        .collect()
}

#[test]
fn filters_limits_and_order() {
    let (env, _) = known_history();
    let all = ["r9", "r8", "r7", "r6", "r10", "r5", "r4", "r3", "r2", "r1"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![], all.to_vec()),
        // Actions: any of them.
        (vec!["--action", "channel_created"], vec!["r6", "r2", "r1"]),
        (
            vec!["--action", "channel_created", "--action", "token_revoked"],
            vec!["r6", "r10", "r4", "r2", "r1"],
        ),
        (vec!["--action", "token_created"], vec![]),
        // Users: by id or by email, any of them.
        (vec!["--user", "user-alice"], vec!["r7", "r10", "r3", "r1"]),
        (
            vec!["--user", "alice@example.com"],
            vec!["r7", "r10", "r3", "r1"],
        ),
        (vec!["--user", "bob@example.com"], vec!["r8", "r5", "r2"]),
        (vec!["--user", "svc-carol"], vec!["r6", "r4"]),
        (vec!["--user", "dave@example.com"], vec!["r9"]),
        (
            vec!["--user", "user-alice", "--user", "bob@example.com"],
            vec!["r8", "r7", "r10", "r5", "r3", "r2", "r1"],
        ),
        (vec!["--user", "nobody@example.com"], vec![]),
        // Time range: both ends inclusive, to the millisecond; a bare date is its midnight.
        (
            vec![
                "--from",
                "2025-03-02T09:00:00Z",
                "--to",
                "2025-03-04T23:59:59.999Z",
            ],
            vec!["r7", "r6", "r10", "r5", "r4", "r3"],
        ),
        (
            vec![
                "--from",
                "2025-03-02T09:00:00.001Z",
                "--to",
                "2025-03-04T23:59:59.998Z",
            ],
            vec!["r6", "r10", "r5", "r4"],
        ),
        (
            vec!["--from", "2025-03-02", "--to", "2025-03-03"],
            vec!["r5", "r4", "r3"],
        ),
        (
            vec!["--from", "2025-03-03T08:30:00.001Z"],
            vec!["r9", "r8", "r7"],
        ),
        (vec!["--to", "2025-03-01T09:00:00Z"], vec!["r1"]),
        // Search: every word must start a word of the event, in any field, any case.
        (vec!["--search", "ml-pr"], vec!["r9", "r1"]),
        (vec!["--search", "ML PROD"], vec!["r1"]),
        (vec!["--search", "promo"], vec!["r9"]),
        (vec!["--search", "staging"], vec!["r3", "r2"]),
        (vec!["--search", "taging"], vec![]),
        // Flags combine with AND.
        (
            vec!["--action", "channel_created", "--user", "user-alice"],
            vec!["r1"],
        ),
        (
            vec!["--action", "policy_created", "--search", "ml"],
            vec!["r9"],
        ),
        (
            vec![
                "--user",
                "user-alice",
                "--from",
                "2025-03-02",
                "--search",
                "token",
            ],
            vec!["r10"],
        ),
        // Limits keep the newest.
        (vec!["--limit", "1"], vec!["r9"]),
        (vec!["--limit", "5"], vec!["r9", "r8", "r7", "r6", "r10"]),
        (
            vec!["--limit", "2", "--action", "channel_created"],
            vec!["r6", "r2"],
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(names(&env, &args), expected, "events {args:?}");
    }
}

#[test]
fn jsonl_records_carry_the_api_fields() {
    let (env, org_id) = known_history();
    let records = env.events_jsonl("acme", &[]);
    assert_eq!(records.len(), 10);
    let history = history();
    let mut ids = HashSet::new();
    for record in &records {
        for field in [
            "id",
            "org_id",
            "org_name",
            "action_key",
            "message",
            "seq",
            "hash",
            "occurred_at",
            "created_at",
        ] {
            assert!(record.get(field).is_some(), "{field} missing in {record}");
        }
        let id = Uuid::parse_str(record["id"].as_str().expect("id")).expect("a UUID");
        assert!(ids.insert(id), "id {id} repeated");
        assert_eq!(record["org_id"], org_id.to_string());
        assert_eq!(record["org_name"], "acme");
        // seq is the position in import order.
        let name = record["request_id"].as_str().expect("request_id");
        let position = history
            .iter()
            .position(|known| known.name == name)
            .expect("a known event");
        assert_eq!(record["seq"], json!(position as u64 + 1), "{name}");
        let known = &history[position];
        assert_eq!(record["action_key"], known.action, "{name}");
        let occurred = Timestamp::parse(known.at).expect("known time").to_string();
        assert_eq!(record["occurred_at"], json!(occurred), "{name}");
        let hash = record["hash"].as_str().expect("hash");
        assert!(
            hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{hash}"
        );
        Timestamp::parse(record["created_at"].as_str().expect("created_at"))
            .expect("created_at is RFC 3339");
        assert!(!record["message"].as_str().expect("message").is_empty());
    }
    let r1 = records
        .iter()
        .find(|record| record["request_id"] == "r1")
        .expect("r1");
    assert_eq!(r1["message"], "alice@example.com created channel `ml-prod`");
    assert_eq!(r1["actor_id"], "user-alice");
    assert_eq!(r1["target_type"], "channel");
    let r10 = records
        .iter()
        .find(|record| record["request_id"] == "r10")
        .expect("r10");
    // Offsets are normalized to UTC.
    assert_eq!(r10["occurred_at"], "2025-03-03T08:30:00.000Z");
}

#[test]
fn table_lists_newest_first_with_messages() {
    let (env, _) = known_history();
    let run = env.run(&["events", "--org", "acme", "--action", "channel_created"]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "a header and 3 events:\n{}", run.stdout);
    assert!(lines[0].starts_with("OCCURRED (UTC)"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("2025-03-03T08:30:00.000Z"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("bob@example.com created channel `ml-staging`"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("alice@example.com created channel `ml-prod`"),
        "{}",
        lines[3]
    );

    let empty = env.run(&["events", "--org", "acme", "--user", "nobody@example.com"]);
    empty.expect_code(0);
    assert!(empty.stderr.contains("no events match"), "{}", empty.stderr);
}

#[test]
fn unknown_organization_is_a_usage_error() {
    let (env, _) = known_history();
    let run = env.run(&["events", "--org", "initech"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("auditlog org create initech"),
        "{}",
        run.stderr
    );
}

#[test]
fn paging_past_one_thousand_neither_skips_nor_repeats() {
    const N_EVENTS: usize = 2_500;
    const LIMIT: usize = 2_100;
    let env = Env::new();
    env.create_org("acme");
    // Times are a permutation of the lines, in groups of three equal instants, so that pages
    // end inside runs of ties and the order differs from the import order.
    let base = 1_740_787_200_000_i64;
    let at = |line: usize| base + ((line * 7919) % N_EVENTS / 3) as i64 * 1000;
    let lines: Vec<String> = (0..N_EVENTS)
        .map(|line| {
            let mut event = valid_event(line);
            event["occurred_at"] = json!(Timestamp::from_millis(at(line)).expect("in range"));
            event.to_string()
        })
        .collect();
    let run = env.import("acme", &lines, &[]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("imported 2500 events into acme (seq 1..=2500)"),
        "{}",
        run.stdout
    );

    let limit = LIMIT.to_string();
    let records = env.events_jsonl("acme", &["--limit", &limit]);
    assert_eq!(records.len(), LIMIT);
    let ids: HashSet<&str> = records
        .iter()
        .map(|record| record["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), LIMIT, "every id is distinct");
    let times: Vec<Timestamp> = records
        .iter()
        .map(|record| {
            Timestamp::parse(record["occurred_at"].as_str().expect("occurred_at"))
                .expect("RFC 3339")
        })
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "occurred_at never increases"
    );

    // Exactly the newest 2100 by (occurred_at, seq), in that order.
    let mut expected: Vec<(i64, u64)> = (0..N_EVENTS)
        .map(|line| (at(line), line as u64 + 1))
        .collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    let expected: Vec<u64> = expected[..LIMIT].iter().map(|&(_, seq)| seq).collect();
    let seqs: Vec<u64> = records
        .iter()
        .map(|record| record["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, expected);

    // A limit above the total prints everything once.
    assert_eq!(
        env.events_jsonl("acme", &["--limit", "5000"]).len(),
        N_EVENTS
    );
}
