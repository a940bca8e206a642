//! Cases: reads return what was appended, stay inside one organization, filter, order
//! and page as documented.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use auditlog_core::chain::GENESIS;
use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position, Query, Start};
use auditlog_core::text::{event_words, matches, query_words};
use auditlog_core::{ActorType, Event, EventBody, Timestamp};
use auditlog_store::{Count, Facets, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::events::*;
use crate::reference::*;
use crate::support::*;

/// `get_event` returns what was appended, field by field (unicode, nested `meta`, IPv6,
/// every optional field absent and present), and nothing for another organization's id.
pub async fn get_event_round_trips_and_is_scoped(store: Arc<dyn Store>) {
    let store = &*store;
    let a = make_org(store, "get-a").await;
    let b = make_org(store, "get-b").await;
    let meta = json!({
        "reason": "rotate keys",
        "group": {
            "name": "Data Science",
            "members": [1, 2, {"id": "u-1", "active": true, "nothing": null}],
            "owner": null,
            "deep": {"a": {"b": {"c": ["d"]}}}
        },
        "ratio": 2.5,
        "small": -0.125,
        "negative": -17,
        "big": 4_000_000_000i64,
        "empty_object": {},
        "empty_array": [],
        "emoji": "🎉 done",
        "quote": "she said \"hi\" \\ bye",
        "lines": "line one\nline two\ttabbed",
        "ключ": "значение",
        "東京": "タワー"
    });
    let Value::Object(meta) = meta else {
        unreachable!("a JSON object literal")
    };
    let full = EventBody {
        action_key: "group_assigned_to_channel".to_string(),
        action_verb: Some("assigned".to_string()),
        actor_id: Some("u-8f3a".to_string()),
        actor_email: Some("zoë.müller@例え.jp".to_string()),
        actor_name: Some("Zoë Müller 🚀".to_string()),
        actor_type: ActorType::ServiceAccount,
        target_id: Some("ch-ml-prod".to_string()),
        target_email: Some("ops+alerts@example.com".to_string()),
        target_name: Some("ml-prod ‘quoted’ \"name\" O'Brien".to_string()),
        target_type: Some("channel".to_string()),
        service_name: Some("repo-sync".to_string()),
        ip_address: Some(IpAddr::V6("2001:db8::8a2e:370:7334".parse().expect("IPv6"))),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) conda/24.1".to_string()),
        request_id: Some("req-01HZX3".to_string()),
        meta,
        occurred_at: Timestamp::parse("2026-02-28T23:59:59.999Z").expect("timestamp"),
        personal_meta: Vec::new(),
        extensions: Default::default(),
    };
    let minimal = EventBody {
        action_key: "custom_action_ran".to_string(),
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
        occurred_at: ts(0),
        extensions: Default::default(),
        personal_meta: Vec::new(),
    };
    let system = EventBody {
        actor_type: ActorType::System,
        actor_id: Some("system".to_string()),
        actor_email: None,
        actor_name: None,
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
        meta: Map::from_iter([("count".to_string(), json!(3))]),
        ..body(
            "organization_updated",
            "ignored@example.com",
            1_772_000_000_123,
        )
    };
    let mapped = EventBody {
        ip_address: Some(IpAddr::V6(Ipv6Addr::new(
            0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203,
        ))),
        ..body("token_created", "carol@example.com", 1_772_000_000_124)
    };
    let bodies = [full, minimal, system, mapped];
    let appended = append_ok(store, bodies.iter().map(|b| to(&a, b.clone())).collect()).await;
    let other = append_ok(store, vec![to(&b, bodies[0].clone())]).await;

    for (event_idx, event) in appended.iter().enumerate() {
        let got = ok(store.get_event(a.id, event.id).await, "get_event");
        let got =
            got.unwrap_or_else(|| panic!("get_event does not find appended event {event_idx}"));
        assert_event_eq(
            event,
            &got,
            &format!("get_event of appended event {event_idx}"),
        );
        assert_eq!(
            ok(store.get_event(b.id, event.id).await, "get_event"),
            None,
            "get_event with organization B returns organization A's event {event_idx}"
        );
    }
    assert_eq!(
        ok(store.get_event(a.id, other[0].id).await, "get_event"),
        None,
        "get_event with organization A returns organization B's event"
    );
    let got = ok(store.get_event(b.id, other[0].id).await, "get_event");
    assert_event_eq(
        &other[0],
        &got.expect("B's event is found in B"),
        "get_event of B's event",
    );
    for missing in [
        Uuid::nil(),
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
    ] {
        assert_eq!(
            ok(store.get_event(a.id, missing).await, "get_event"),
            None,
            "get_event of an id never assigned"
        );
    }
    verified_chain(store, a.id).await;
}

/// No read of organization B shows organization A's events, whatever the filter, and reads
/// of an organization without events are empty.
pub async fn reads_are_scoped_to_the_org(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0x0005_C09E);
    let times = tie_heavy_times();
    let corpus = RandomCorpus::build(store, &mut rng, "scoped", 120, &times).await;
    let empty = make_org(store, "scoped-empty").await;
    let all_events = corpus.all_events();

    for (org_idx, org) in corpus.orgs.iter().enumerate() {
        let mine = &corpus.events[org_idx];
        let theirs = &corpus.events[1 - org_idx];
        let mut filters = vec![Filter::default()];
        // Filters naming the other organization's values exactly.
        for event in theirs.iter().take(5) {
            filters.push(Filter {
                conditions: vec![
                    Condition::AnyOf {
                        column: Column::Actor,
                        values: column_values(Column::Actor, &event.body)
                            .into_iter()
                            .map(str::to_string)
                            .collect(),
                    },
                    Condition::AnyOf {
                        column: Column::ActionKey,
                        values: vec![event.body.action_key.clone()],
                    },
                ],
                combine: Combine::Or,
                from: None,
                to: None,
            });
            filters.push(Filter {
                conditions: vec![Condition::Text(event_words(&event.body).join(" "))],
                ..Filter::default()
            });
        }
        for _ in 0..20 {
            filters.push(random_filter(&mut rng, &all_events, &times));
        }
        for filter in &filters {
            let context = format!("organization {} with filter {filter:?}", org.name);
            for order in [Order::NewestFirst, Order::OldestFirst] {
                let got = query_all(store, org.id, filter, order).await;
                assert!(
                    got.iter().all(|e| e.org_id == org.id),
                    "{context}: query returned another organization's event"
                );
                assert_same_events(
                    &reference_query(mine, filter, order),
                    &got,
                    &format!("{context}: query {order:?}"),
                );
            }
            let n = mine.iter().filter(|e| reference_matches(filter, e)).count();
            assert_eq!(
                count_all(store, org.id, filter).await,
                Count {
                    n: n as u64,
                    exact: true
                },
                "{context}: count"
            );
            let facets = ok(store.facets(org.id, filter, 1000).await, "facets");
            assert_facets(&facets, mine, filter, 1000, &format!("{context}: facets"));
            assert_eq!(
                ok(store.daily_counts(org.id, filter).await, "daily_counts"),
                reference_daily_counts(mine, filter),
                "{context}: daily_counts"
            );
        }
        // Keyset positions taken from the other organization's events.
        for event in theirs.iter().take(10) {
            for order in [Order::NewestFirst, Order::OldestFirst] {
                let query = Query {
                    filter: Filter::default(),
                    order,
                    limit: 1000,
                    start: Start::After(position(event)),
                };
                let got = ok(store.query(org.id, &query).await, "query");
                let expected: Vec<Event> = reference_query(mine, &Filter::default(), order)
                    .into_iter()
                    .filter(|e| match order {
                        Order::OldestFirst => sort_key(e) > sort_key(event),
                        Order::NewestFirst => sort_key(e) < sort_key(event),
                    })
                    .collect();
                assert_same_events(
                    &expected,
                    &got,
                    &format!(
                        "organization {} after a position of the other organization, {order:?}",
                        org.name
                    ),
                );
            }
        }
        let chain = verified_chain(store, org.id).await;
        assert_same_events(mine, &chain, &format!("events_by_seq of {}", org.name));
    }

    let all = Filter::default();
    assert!(
        query_all(store, empty.id, &all, Order::NewestFirst)
            .await
            .is_empty(),
        "query of an organization without events"
    );
    assert_eq!(
        count_all(store, empty.id, &all).await,
        Count { n: 0, exact: true },
        "count of an organization without events"
    );
    assert_eq!(
        ok(store.facets(empty.id, &all, 10).await, "facets"),
        Facets::default(),
        "facets of an organization without events"
    );
    assert!(
        ok(store.daily_counts(empty.id, &all).await, "daily_counts").is_empty(),
        "daily_counts of an organization without events"
    );
    assert!(
        ok(store.events_by_seq(empty.id, 0, 100).await, "events_by_seq").is_empty(),
        "events_by_seq of an organization without events"
    );
    let head = ok(store.chain_head(empty.id).await, "chain_head");
    assert_eq!(
        (head.seq, head.hash),
        (0, GENESIS),
        "chain_head of an organization without events"
    );
    assert_eq!(
        ok(store.latest_checkpoint(empty.id).await, "latest_checkpoint"),
        None,
        "latest_checkpoint of an organization without checkpoints"
    );
}

/// Every column filter with one and several values, `And` against `Or`, inclusive time
/// bounds, and free text (word prefixes, any case, `meta` values but not keys), on a small
/// corpus whose answers are spelled out; then free text against
/// [`auditlog_core::text::matches`] on a random corpus.
pub async fn filters_match_columns_text_and_time(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "filters").await;
    let twin = make_org(store, "filters-twin").await;
    let t = |i: i64| base_time().plus_millis(i * 1000);
    let blank = |action: &str, at: Timestamp| EventBody {
        action_key: action.to_string(),
        action_verb: catalog().get(action).map(|a| a.verb.clone()),
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
        extensions: Default::default(),
        occurred_at: at,
        personal_meta: Vec::new(),
    };
    let s = |text: &str| Some(text.to_string());
    let object = |value: Value| match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    };
    let corpus: Vec<(&str, EventBody)> = vec![
        (
            "f1",
            EventBody {
                actor_id: s("u-alice"),
                actor_email: s("alice@example.com"),
                actor_name: s("Alice Smith"),
                target_id: s("ch-1"),
                target_name: s("ml-prod"),
                target_type: s("channel"),
                service_name: s("repo"),
                ip_address: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
                meta: object(json!({"reason": "Quarterly cleanup"})),
                ..blank("channel_created", t(0))
            },
        ),
        (
            "f2",
            EventBody {
                actor_id: s("u-bob"),
                actor_email: s("bob@example.org"),
                actor_name: s("Bob Jones"),
                target_id: s("ch-2"),
                target_name: s("ml-staging"),
                target_type: s("channel"),
                service_name: s("repo"),
                user_agent: s("Firefox/128.0"),
                request_id: s("req-zebra"),
                ..blank("channel_deleted", t(1))
            },
        ),
        (
            "f3",
            EventBody {
                actor_id: s("sa-ci"),
                actor_name: s("CI Bot"),
                actor_type: ActorType::ServiceAccount,
                target_id: s("ch-1"),
                target_name: s("ml-prod"),
                target_type: s("channel"),
                service_name: s("iam"),
                meta: object(json!({"group": {"name": "Data Science", "size": 12}})),
                ..blank("group_assigned_to_channel", t(2))
            },
        ),
        (
            "f4",
            EventBody {
                actor_email: s("carol@example.com"),
                target_id: s("inv-9"),
                target_email: s("dave@example.net"),
                target_type: s("invitation"),
                service_name: s("iam"),
                ..blank("invitation_created", t(3))
            },
        ),
        (
            "f5",
            EventBody {
                actor_id: s("system"),
                actor_type: ActorType::System,
                meta: object(json!({"changed": ["display_name"], "count": 3, "public": true})),
                ..blank("organization_updated", t(4))
            },
        ),
        (
            "f6",
            EventBody {
                actor_id: s("u-dave"),
                actor_email: s("dave@example.net"),
                actor_name: s("Dave Été"),
                target_id: s("u-erin"),
                target_email: s("erin@example.com"),
                target_name: s("Erin"),
                target_type: s("user"),
                service_name: s("iam"),
                ip_address: Some(IpAddr::V6("2001:db8::42".parse().expect("IPv6"))),
                meta: object(json!({"role": "admin"})),
                ..blank("organization_user_added", t(4))
            },
        ),
    ];
    let events = append_ok(
        store,
        corpus.iter().map(|(_, b)| to(&org, b.clone())).collect(),
    )
    .await;
    // The same events in another organization: none of them may leak into the answers.
    append_ok(
        store,
        corpus.iter().map(|(_, b)| to(&twin, b.clone())).collect(),
    )
    .await;
    let label_of: HashMap<u64, &str> = events
        .iter()
        .zip(&corpus)
        .map(|(e, (label, _))| (e.seq, *label))
        .collect();

    let any = |column: Column, values: &[&str]| Condition::AnyOf {
        column,
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let text = |words: &str| Condition::Text(words.to_string());
    let filter = |conditions: Vec<Condition>, combine: Combine| Filter {
        conditions,
        combine,
        from: None,
        to: None,
    };
    let one = |condition: Condition| filter(vec![condition], Combine::Or);
    let range = |from: Option<Timestamp>,
                 to: Option<Timestamp>,
                 conditions: Vec<Condition>,
                 combine: Combine| Filter {
        conditions,
        combine,
        from,
        to,
    };
    use Column as C;
    use Combine::{And, Or};
    let case = |filter: Filter, expected: &[&'static str]| (filter, expected.to_vec());
    let cases: Vec<(Filter, Vec<&str>)> = vec![
        case(one(any(C::ActionKey, &["channel_created"])), &["f1"]),
        case(
            one(any(
                C::ActionKey,
                &["channel_created", "invitation_created"],
            )),
            &["f1", "f4"],
        ),
        case(one(any(C::ActionKey, &["no_such_action"])), &[]),
        case(one(any(C::ActionVerb, &["created"])), &["f1", "f4"]),
        case(
            one(any(C::ActionVerb, &["deleted", "assigned"])),
            &["f2", "f3"],
        ),
        case(one(any(C::ActorId, &["u-alice"])), &["f1"]),
        case(one(any(C::ActorId, &["u-alice", "system"])), &["f1", "f5"]),
        case(one(any(C::ActorEmail, &["alice@example.com"])), &["f1"]),
        case(
            one(any(
                C::ActorEmail,
                &["carol@example.com", "bob@example.org"],
            )),
            &["f2", "f4"],
        ),
        case(one(any(C::ActorType, &["service_account"])), &["f3"]),
        case(
            one(any(C::ActorType, &["system", "service_account"])),
            &["f3", "f5"],
        ),
        case(one(any(C::ActorType, &["user"])), &["f1", "f2", "f4", "f6"]),
        case(one(any(C::Actor, &["u-bob"])), &["f2"]),
        case(
            one(any(C::Actor, &["u-bob", "carol@example.com"])),
            &["f2", "f4"],
        ),
        // f4's target has this email; only f6's actor does.
        case(one(any(C::Actor, &["dave@example.net"])), &["f6"]),
        case(one(any(C::TargetId, &["ch-1"])), &["f1", "f3"]),
        case(one(any(C::TargetId, &["ch-2", "inv-9"])), &["f2", "f4"]),
        case(one(any(C::TargetEmail, &["dave@example.net"])), &["f4"]),
        case(
            one(any(
                C::TargetEmail,
                &["dave@example.net", "erin@example.com"],
            )),
            &["f4", "f6"],
        ),
        case(one(any(C::TargetType, &["channel"])), &["f1", "f2", "f3"]),
        case(
            one(any(C::TargetType, &["invitation", "user"])),
            &["f4", "f6"],
        ),
        case(one(any(C::Target, &["dave@example.net"])), &["f4"]),
        case(one(any(C::Target, &["u-erin", "ch-2"])), &["f2", "f6"]),
        case(one(any(C::ServiceName, &["repo"])), &["f1", "f2"]),
        case(
            one(any(C::ServiceName, &["iam", "repo"])),
            &["f1", "f2", "f3", "f4", "f6"],
        ),
        // Combining conditions.
        case(
            filter(
                vec![any(C::ActorId, &["u-alice"]), any(C::TargetId, &["ch-1"])],
                And,
            ),
            &["f1"],
        ),
        case(
            filter(
                vec![any(C::ActorId, &["u-alice"]), any(C::TargetId, &["ch-1"])],
                Or,
            ),
            &["f1", "f3"],
        ),
        case(
            filter(
                vec![any(C::ServiceName, &["iam"]), any(C::ActorType, &["user"])],
                And,
            ),
            &["f4", "f6"],
        ),
        case(
            filter(
                vec![any(C::ServiceName, &["iam"]), any(C::ActorType, &["user"])],
                Or,
            ),
            &["f1", "f2", "f3", "f4", "f6"],
        ),
        case(
            filter(vec![any(C::TargetId, &["ch-1"])], And),
            &["f1", "f3"],
        ),
        case(filter(vec![], And), &["f1", "f2", "f3", "f4", "f5", "f6"]),
        case(filter(vec![], Or), &["f1", "f2", "f3", "f4", "f5", "f6"]),
        // Time bounds are inclusive and always ANDed.
        case(range(Some(t(2)), Some(t(2)), vec![], Or), &["f3"]),
        case(range(Some(t(4)), Some(t(4)), vec![], Or), &["f5", "f6"]),
        case(
            range(Some(t(1)), Some(t(3)), vec![], Or),
            &["f2", "f3", "f4"],
        ),
        case(
            range(Some(t(2).plus_millis(1)), None, vec![], Or),
            &["f4", "f5", "f6"],
        ),
        case(
            range(None, Some(t(2).plus_millis(-1)), vec![], Or),
            &["f1", "f2"],
        ),
        case(range(Some(t(3)), Some(t(1)), vec![], Or), &[]),
        case(
            range(
                Some(t(2)),
                None,
                vec![any(C::ActorId, &["u-alice"]), any(C::ServiceName, &["iam"])],
                Or,
            ),
            &["f3", "f4", "f6"],
        ),
        case(
            range(
                None,
                Some(t(1)),
                vec![
                    any(C::ActorId, &["u-alice"]),
                    any(C::ServiceName, &["repo"]),
                ],
                And,
            ),
            &["f1"],
        ),
        // Free text: every word a prefix of some event word, any case.
        case(one(text("ml-pr")), &["f1", "f3"]),
        case(one(text("ML")), &["f1", "f2", "f3"]),
        case(one(text("quarterly")), &["f1"]),
        case(one(text("QUART")), &["f1"]),
        case(one(text("data sci")), &["f3"]),
        case(one(text("12")), &["f3"]),
        case(one(text("display")), &["f5"]),
        case(one(text("true")), &["f5"]),
        case(one(text("admin")), &["f6"]),
        // meta keys, user agents and request ids are not searchable.
        case(one(text("role")), &[]),
        case(one(text("reason")), &[]),
        case(one(text("zebra")), &[]),
        case(one(text("firefox")), &[]),
        case(one(text("alice ml")), &["f1"]),
        case(one(text("prod alice")), &["f1"]),
        case(one(text("rod")), &[]),
        case(one(text("été")), &["f6"]),
        case(one(text("ÉT")), &["f6"]),
        case(one(text("10.0")), &["f1"]),
        case(one(text("2001:db8")), &["f6"]),
        case(one(text("invit")), &["f4"]),
        case(one(text("example.com")), &["f1", "f4", "f6"]),
        case(one(text("bob")), &["f2"]),
        case(one(text("ci bot")), &["f3"]),
        case(one(text("zqxj")), &[]),
        // Text with column conditions.
        case(
            filter(vec![text("ml"), any(C::ActorId, &["u-alice"])], And),
            &["f1"],
        ),
        case(
            filter(vec![text("ml"), any(C::ActorId, &["u-alice"])], Or),
            &["f1", "f2", "f3"],
        ),
        case(
            filter(vec![text("example"), any(C::ServiceName, &["iam"])], And),
            &["f4", "f6"],
        ),
        case(
            filter(vec![text("data"), any(C::ActorType, &["system"])], Or),
            &["f3", "f5"],
        ),
        case(filter(vec![text("ml"), text("staging")], And), &["f2"]),
        case(
            filter(vec![text("ml"), text("admin")], Or),
            &["f1", "f2", "f3", "f6"],
        ),
    ];
    for (filter, expected) in &cases {
        let reference: Vec<&str> = events
            .iter()
            .filter(|e| reference_matches(filter, e))
            .map(|e| label_of[&e.seq])
            .collect();
        assert_eq!(
            &reference, expected,
            "the suite's own reference disagrees with the spelled-out answer for {filter:?}"
        );
        let got = query_all(store, org.id, filter, Order::OldestFirst).await;
        let got_labels: Vec<&str> = got
            .iter()
            .map(|e| {
                assert_eq!(
                    e.org_id, org.id,
                    "{filter:?} returned another organization's event"
                );
                label_of.get(&e.seq).copied().unwrap_or("?")
            })
            .collect();
        assert_eq!(&got_labels, expected, "query with {filter:?}");
        assert_eq!(
            count_all(store, org.id, filter).await,
            Count {
                n: expected.len() as u64,
                exact: true
            },
            "count with {filter:?}"
        );
    }

    // Free text against the reference predicate on a random corpus.
    let mut rng = StdRng::seed_from_u64(0x7E_47);
    let times = tie_heavy_times();
    let random_org = make_org(store, "filters-text").await;
    let bodies = (0..150).map(|_| random_body(&mut rng, &times)).collect();
    let random_events = append_all(store, &random_org, bodies, 50).await;
    for _ in 0..80 {
        let search = random_text(&mut rng, &random_events);
        let words = query_words(&search);
        let mut expected: Vec<Event> = random_events
            .iter()
            .filter(|e| matches(&event_words(&e.body), &words))
            .cloned()
            .collect();
        expected.sort_by_key(sort_key);
        let filter = one(text(&search));
        let got = query_all(store, random_org.id, &filter, Order::OldestFirst).await;
        assert_same_events(
            &expected,
            &got,
            &format!(
                "text search {search:?} (words {words:?}) against auditlog_core::text::matches"
            ),
        );
    }
}

/// Pages are ordered by `(occurred_at, seq)` both ways, also among many events at one
/// instant; offsets skip, keyset positions continue strictly after, limits hold.
pub async fn order_and_paging(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "paging").await;
    let base = base_time();
    // 15 events share one instant; the others surround it. Appended out of time order.
    let mut offsets: Vec<i64> = vec![0; 15];
    offsets.extend([
        -86_400_000,
        -1,
        -1,
        1,
        1,
        2,
        1000,
        1000,
        5,
        -5,
        7,
        3_600_000,
        -3_600_000,
        9,
        3,
    ]);
    let mut rng = StdRng::seed_from_u64(0x0D_E5);
    offsets.shuffle(&mut rng);
    let bodies: Vec<EventBody> = offsets
        .iter()
        .enumerate()
        .map(|(i, offset)| {
            body(
                "channel_created",
                &format!("user{i}@example.com"),
                base.as_millis() + offset,
            )
        })
        .collect();
    let events = append_all(store, &org, bodies, 7).await;
    let all = Filter::default();
    let oldest_first = reference_query(&events, &all, Order::OldestFirst);
    let newest_first = reference_query(&events, &all, Order::NewestFirst);
    for (order, expected) in [
        (Order::OldestFirst, &oldest_first),
        (Order::NewestFirst, &newest_first),
    ] {
        let got = query_all(store, org.id, &all, order).await;
        assert_same_events(
            expected,
            &got,
            &format!("{order:?}, ordered by (occurred_at, seq)"),
        );
        for limit in [1u32, 3, 7, 29, 30, 31] {
            let query = Query {
                filter: all.clone(),
                order,
                limit,
                start: Start::Offset(0),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            let n = (limit as usize).min(expected.len());
            assert_same_events(
                &expected[..n],
                &page,
                &format!("{order:?} first page with limit {limit}"),
            );
        }
        for offset in [0u64, 1, 7, 14, 29, 30, 31, 1000] {
            let query = Query {
                filter: all.clone(),
                order,
                limit: 7,
                start: Start::Offset(offset),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            let from = (offset as usize).min(expected.len());
            let until = (from + 7).min(expected.len());
            assert_same_events(
                &expected[from..until],
                &page,
                &format!("{order:?} offset {offset} limit 7"),
            );
        }
        for (idx, event) in expected.iter().enumerate() {
            let query = Query {
                filter: all.clone(),
                order,
                limit: 1000,
                start: Start::After(position(event)),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            assert_same_events(
                &expected[idx + 1..],
                &page,
                &format!(
                    "{order:?} after the position of event seq {} (index {idx})",
                    event.seq
                ),
            );
            let query = Query { limit: 4, ..query };
            let page = ok(store.query(org.id, &query).await, "query");
            let until = (idx + 5).min(expected.len());
            assert_same_events(
                &expected[idx + 1..until],
                &page,
                &format!(
                    "{order:?} after the position of event seq {} (index {idx}), limit 4",
                    event.seq
                ),
            );
        }
        for limit in [1, 2, 5, 30] {
            let keyset = walk_keyset(store, org.id, &all, order, limit, events.len()).await;
            assert_same_events(
                expected,
                &keyset,
                &format!("{order:?} keyset walk with limit {limit}"),
            );
        }
    }
    // Positions that are no event's: the order compares (occurred_at, seq) as a pair.
    for seq in [0u64, 1_000_000] {
        for (order, expected) in [
            (Order::OldestFirst, &oldest_first),
            (Order::NewestFirst, &newest_first),
        ] {
            let at = Position {
                occurred_at: base,
                seq,
            };
            let query = Query {
                filter: all.clone(),
                order,
                limit: 1000,
                start: Start::After(at),
            };
            let page = ok(store.query(org.id, &query).await, "query");
            let want: Vec<Event> = expected
                .iter()
                .filter(|e| match order {
                    Order::OldestFirst => sort_key(e) > (base, seq),
                    Order::NewestFirst => sort_key(e) < (base, seq),
                })
                .cloned()
                .collect();
            assert_same_events(
                &want,
                &page,
                &format!("{order:?} after the position ({base}, seq {seq}), which is no event's"),
            );
        }
    }
}
