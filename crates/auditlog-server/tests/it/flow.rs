//! The whole flow a deployment goes through, over HTTP: a platform ingests events (one, then
//! a batch); an administrator lists them with every filter, sort and paging mode, reads one,
//! the facets and the catalog; a security engineer fetches the public key and a signed
//! checkpoint; a service account trades its credentials for a token and reads with it; and
//! exports in JSON Lines, CSV and gzip are downloaded and verified offline.
//!
//! Expectations are computed here, from the events as the test sent them and from the full
//! listing, with predicates written independently of the server's filter code.

use std::collections::{BTreeMap, HashSet};

use auditlog_core::chain::CheckpointWire;
use auditlog_core::export::{verify_export, ExportFormat};
use auditlog_core::Timestamp;
use serde_json::{json, Map, Value};

use crate::{query, wait_for_export, Backend, Server};

on_each_backend! {
    whole_flow_ingest_read_verify_export =>
        whole_flow_ingest_read_verify_export_sqlite,
        whole_flow_ingest_read_verify_export_postgres;
}

const ORG: &str = "acme";
const HOUR_MS: i64 = 3_600_000;

/// The events the platform sends: every field used, three kinds of actor, a shared instant
/// (events 10 and 11) so that paging must break ties, and a rare word for text search.
fn dataset() -> Vec<Value> {
    let actions = [
        "channel_created",
        "channel_deleted",
        "policy_created",
        "user_added_to_group",
    ];
    let actors = [
        ("u-alice", Some("alice@example.com"), "Alice", "user"),
        ("u-bob", Some("bob@example.com"), "Bob", "user"),
        ("sa-ci", None, "ci-bot", "service_account"),
    ];
    let base = Timestamp::parse("2024-05-01T08:00:00Z").expect("timestamp");
    (0..15usize)
        .map(|idx| {
            let (actor_id, actor_email, actor_name, actor_type) = if idx == 14 {
                ("cron", None, "nightly", "system")
            } else {
                actors[idx % 3]
            };
            let slot = if idx == 11 { 10 } else { idx } as i64;
            let extra_ms = if idx == 12 { 123 } else { 0 };
            let at = base.plus_millis(slot * 7 * HOUR_MS + extra_ms);
            let mut event = Map::new();
            event.insert("action_key".into(), json!(actions[idx % 4]));
            event.insert("actor_id".into(), json!(actor_id));
            if let Some(email) = actor_email {
                event.insert("actor_email".into(), json!(email));
            }
            event.insert("actor_name".into(), json!(actor_name));
            event.insert("actor_type".into(), json!(actor_type));
            event.insert("target_id".into(), json!(format!("t-{idx}")));
            if idx % 2 == 0 {
                event.insert(
                    "target_email".into(),
                    json!(format!("target{idx}@example.com")),
                );
            }
            if idx % 5 == 0 {
                event.insert("target_type".into(), json!("mirror"));
            }
            let target_name = if idx % 4 == 1 {
                format!("zebrafish-{idx}")
            } else {
                format!("name-{idx}")
            };
            event.insert("target_name".into(), json!(target_name));
            event.insert(
                "service_name".into(),
                json!(if idx % 2 == 0 { "repo" } else { "iam" }),
            );
            if idx % 4 == 0 {
                event.insert("ip_address".into(), json!(format!("203.0.113.{idx}")));
                event.insert("user_agent".into(), json!("platform/1.0"));
            }
            event.insert("request_id".into(), json!(format!("req-{idx}")));
            let note = if idx == 7 {
                "a zebrafish swam by"
            } else {
                "plain"
            };
            event.insert("meta".into(), json!({"idx": idx, "note": note}));
            event.insert("occurred_at".into(), json!(at.to_string()));
            Value::Object(event)
        })
        .collect()
}

fn millis(record: &Value) -> i64 {
    let text = record["occurred_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no occurred_at in {record}"));
    Timestamp::parse(text)
        .unwrap_or_else(|e| panic!("bad occurred_at {text:?}: {e}"))
        .as_millis()
}

/// The ids an ingest answered with.
fn stored_ids(reply: &Value) -> Vec<String> {
    reply["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids in {reply}"))
        .iter()
        .map(|id| id.as_str().expect("an id").to_string())
        .collect()
}

fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("id").to_string()
}

fn ids_of(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(id_of)
        .collect()
}

/// The ids of `all` (oldest first) that `keep` selects, in the requested order.
fn expected(all: &[Value], keep: impl Fn(&Value) -> bool, newest_first: bool) -> Vec<String> {
    let mut ids: Vec<String> = all.iter().filter(|r| keep(r)).map(id_of).collect();
    if newest_first {
        ids.reverse();
    }
    ids
}

/// A reader of one organization's log over HTTP.
struct Reader<'a> {
    server: &'a Server,
    token: String,
}

impl Reader<'_> {
    async fn list(&self, pairs: &[(&str, &str)]) -> Value {
        self.server
            .get(&format!("/api/audit-logs?{}", query(pairs)))
            .bearer(&self.token)
            .org(ORG)
            .header("X-API-Version", "v1")
            .send()
            .await
            .expect(200)
            .json()
    }

    /// Checks one filtered listing (newest first, the default) against `keep`.
    async fn check(
        &self,
        all: &[Value],
        pairs: &[(&str, &str)],
        keep: impl Fn(&Value) -> bool,
    ) -> Vec<String> {
        let body = self.list(pairs).await;
        let want = expected(all, keep, true);
        assert_eq!(ids_of(&body["items"]), want, "listing for {pairs:?}");
        assert_eq!(
            body["total_count"].as_u64(),
            Some(want.len() as u64),
            "total_count for {pairs:?}"
        );
        assert!(!want.is_empty(), "the filter {pairs:?} selects nothing");
        want
    }

    /// Follows `next_cursor` until it is null; returns every id seen, in order.
    async fn page_all(&self, pairs: &[(&str, &str)], limit: usize) -> Vec<String> {
        let limit_text = limit.to_string();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut all_pairs: Vec<(&str, &str)> = pairs.to_vec();
            all_pairs.push(("limit", &limit_text));
            if let Some(cursor) = &cursor {
                all_pairs.push(("cursor", cursor));
            }
            let body = self.list(&all_pairs).await;
            let page = ids_of(&body["items"]);
            assert!(page.len() <= limit, "a page longer than its limit");
            seen.extend(page);
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => {
                    assert!(body["next_cursor"].is_null(), "bad next_cursor in {body}");
                    return seen;
                }
            }
        }
        panic!("paging {pairs:?} never ended");
    }
}

async fn whole_flow_ingest_read_verify_export(backend: Backend) {
    let server = Server::start(backend).await;
    let org = server.org(ORG, true).await;
    let admin_token = server.admin(&org, "admin@acme.test").await;
    let ingest = server.ingest_key(Some(&org)).await;
    let reader = Reader {
        server: &server,
        token: admin_token.clone(),
    };
    let verifying_key = server.service.signing_key().verifying_key();

    // --- Ingest: one event, then a batch, with an organization's ingest key.
    let sent = dataset();
    let head_before = server.head(&org).await;
    let single = server
        .post("/api/audit-logs/events")
        .bearer(&ingest)
        .json(&sent[0])
        .send()
        .await
        .expect(201)
        .json();
    assert_eq!(single["count"], 1);
    let mut sent_ids = stored_ids(&single);
    let batch = server
        .post("/api/audit-logs/events")
        .bearer(&ingest)
        .org(ORG)
        .json(&Value::Array(sent[1..].to_vec()))
        .send()
        .await
        .expect(201)
        .json();
    assert_eq!(batch["count"], sent.len() - 1);
    sent_ids.extend(stored_ids(&batch));
    assert_eq!(sent_ids.len(), sent.len());
    assert_eq!(
        sent_ids.iter().collect::<HashSet<_>>().len(),
        sent.len(),
        "ids repeat"
    );
    assert_eq!(server.head(&org).await, head_before + sent.len() as u64);

    // --- The full listing holds every event once, as it was sent.
    let everything = reader.list(&[("limit", "1000")]).await;
    let mut all: Vec<Value> = everything["items"].as_array().expect("items").clone();
    assert_eq!(all.len() as u64, server.head(&org).await);
    assert_eq!(everything["total_count"].as_u64(), Some(all.len() as u64));
    assert_eq!(everything["total_count_exact"], true);
    assert!(everything["next_cursor"].is_null());
    all.sort_by_key(|r| (millis(r), r["seq"].as_u64().expect("seq")));
    let by_id: BTreeMap<String, &Value> = all.iter().map(|r| (id_of(r), r)).collect();
    for (id, event) in sent_ids.iter().zip(&sent) {
        let record = by_id
            .get(id)
            .unwrap_or_else(|| panic!("ingested event {id} is not listed"));
        for (field, value) in event.as_object().expect("object") {
            if field == "occurred_at" {
                assert_eq!(millis(record), millis(event), "occurred_at of {id}");
            } else {
                assert_eq!(&record[field], value, "{field} of {id}: {record}");
            }
        }
        assert_eq!(record["org_id"], json!(org.id));
        assert_eq!(record["org_name"], ORG);
        assert!(record["action_verb"].is_string(), "no verb: {record}");
        assert!(
            record["target_type"].is_string(),
            "no target type: {record}"
        );
        assert!(
            record["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message: {record}"
        );
        assert!(record["created_at"].is_string());
        assert_eq!(record["hash"].as_str().map(str::len), Some(64));
    }
    let at = |idx: usize| by_id[&sent_ids[idx]]["occurred_at"].as_str().expect("time");
    let (t3, t7) = (at(3).to_string(), at(7).to_string());
    let (t3_ms, t7_ms) = (millis(by_id[&sent_ids[3]]), millis(by_id[&sent_ids[7]]));
    let is = |field: &'static str, value: &'static str| {
        move |r: &Value| r[field].as_str() == Some(value)
    };

    // --- Each filter column.
    reader
        .check(
            &all,
            &[("q", "action_key:channel_created")],
            is("action_key", "channel_created"),
        )
        .await;
    reader
        .check(
            &all,
            &[("q", "action_key:channel_created,policy_created")],
            |r| {
                matches!(
                    r["action_key"].as_str(),
                    Some("channel_created" | "policy_created")
                )
            },
        )
        .await;
    reader
        .check(&all, &[("q", "actor_id:u-bob")], is("actor_id", "u-bob"))
        .await;
    reader
        .check(
            &all,
            &[("q", "actor_email:alice@example.com")],
            is("actor_email", "alice@example.com"),
        )
        .await;
    for actor_type in ["user", "service_account", "system"] {
        let q = format!("actor_type:{actor_type}");
        reader
            .check(&all, &[("q", &q)], |r| {
                r["actor_type"].as_str() == Some(actor_type)
            })
            .await;
    }
    reader
        .check(&all, &[("q", "target_id:t-3,t-4")], |r| {
            matches!(r["target_id"].as_str(), Some("t-3" | "t-4"))
        })
        .await;
    reader
        .check(
            &all,
            &[("q", "target_email:target2@example.com")],
            is("target_email", "target2@example.com"),
        )
        .await;
    reader
        .check(
            &all,
            &[("q", "target_type:mirror")],
            is("target_type", "mirror"),
        )
        .await;
    reader
        .check(
            &all,
            &[("q", "service_name:repo")],
            is("service_name", "repo"),
        )
        .await;
    let zebra = reader
        .check(&all, &[("q", "text:zebrafish")], |r| {
            r.to_string().to_lowercase().contains("zebrafish")
        })
        .await;
    // Names (1, 5, 9, 13) and one meta value (7).
    assert_eq!(zebra.len(), 5, "text search found {zebra:?}");

    // --- search_operator: and narrows, or (the default) widens.
    let alice_or_repo = |r: &Value| {
        r["actor_id"].as_str() == Some("u-alice") || r["service_name"].as_str() == Some("repo")
    };
    let alice_and_repo = |r: &Value| {
        r["actor_id"].as_str() == Some("u-alice") && r["service_name"].as_str() == Some("repo")
    };
    let and = reader
        .check(
            &all,
            &[
                ("q", "actor_id:u-alice"),
                ("q", "service_name:repo"),
                ("search_operator", "and"),
            ],
            alice_and_repo,
        )
        .await;
    let or = reader
        .check(
            &all,
            &[
                ("q", "actor_id:u-alice"),
                ("q", "service_name:repo"),
                ("search_operator", "or"),
            ],
            alice_or_repo,
        )
        .await;
    assert!(and.len() < or.len());
    reader
        .check(
            &all,
            &[("q", "actor_id:u-alice"), ("q", "service_name:repo")],
            alice_or_repo,
        )
        .await;

    // --- Dates: inclusive at both ends, and ANDed with an `or` filter.
    let in_range = move |r: &Value| (t3_ms..=t7_ms).contains(&millis(r));
    let range = reader
        .check(
            &all,
            &[("from_date", t3.as_str()), ("to_date", t7.as_str())],
            in_range,
        )
        .await;
    assert_eq!(range.len(), 5, "from_date/to_date are inclusive");
    reader
        .check(&all, &[("from_date", t7.as_str())], move |r| {
            millis(r) >= t7_ms
        })
        .await;
    reader
        .check(&all, &[("to_date", t3.as_str())], move |r| {
            millis(r) <= t3_ms
        })
        .await;
    reader
        .check(
            &all,
            &[
                ("from_date", t3.as_str()),
                ("to_date", t7.as_str()),
                ("q", "actor_id:u-alice"),
                ("q", "service_name:repo"),
            ],
            move |r| in_range(r) && alice_or_repo(r),
        )
        .await;
    // A bare date is its first instant, UTC.
    reader
        .check(&all, &[("to_date", "2024-05-02")], |r| {
            millis(r)
                <= Timestamp::parse("2024-05-02T00:00:00Z")
                    .unwrap()
                    .as_millis()
        })
        .await;

    // --- Sort, limit and offset.
    let oldest_first = reader
        .list(&[("sort", "occurred_at"), ("limit", "1000")])
        .await;
    assert_eq!(
        ids_of(&oldest_first["items"]),
        expected(&all, |_| true, false)
    );
    let newest_first = reader
        .list(&[("sort", "-occurred_at"), ("limit", "1000")])
        .await;
    assert_eq!(
        ids_of(&newest_first["items"]),
        expected(&all, |_| true, true)
    );
    let window = reader
        .list(&[("sort", "occurred_at"), ("limit", "3"), ("offset", "2")])
        .await;
    assert_eq!(
        ids_of(&window["items"]),
        expected(&all, |_| true, false)[2..5].to_vec()
    );
    assert_eq!(window["total_count"].as_u64(), Some(all.len() as u64));
    let beyond = reader.list(&[("offset", "100000")]).await;
    assert_eq!(beyond["items"], json!([]));
    assert_eq!(beyond["total_count"].as_u64(), Some(all.len() as u64));
    let default_page = reader.list(&[]).await;
    assert_eq!(
        ids_of(&default_page["items"]),
        expected(&all, |_| true, true)
    );

    // --- Cursor paging returns every event exactly once, in both orders and with a filter.
    for (sort, newest) in [("occurred_at", false), ("-occurred_at", true)] {
        for limit in [1, 4, all.len()] {
            let seen = reader.page_all(&[("sort", sort)], limit).await;
            assert_eq!(
                seen,
                expected(&all, |_| true, newest),
                "cursor paging sort={sort} limit={limit}"
            );
        }
    }
    let seen = reader
        .page_all(&[("q", "service_name:repo"), ("sort", "occurred_at")], 2)
        .await;
    assert_eq!(seen, expected(&all, is("service_name", "repo"), false));

    // --- One event; an unknown one; a malformed id.
    let one_id = &sent_ids[4];
    let one = server
        .get(&format!("/api/audit-logs/{one_id}"))
        .bearer(&admin_token)
        .org(ORG)
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(&&one, by_id.get(one_id).expect("listed"));
    let missing = server
        .get(&format!("/api/audit-logs/{}", uuid::Uuid::new_v4()))
        .bearer(&admin_token)
        .org(ORG)
        .send()
        .await
        .expect(404);
    assert!(missing.json()["detail"].is_string());
    let malformed = server
        .get("/api/audit-logs/not-a-uuid")
        .bearer(&admin_token)
        .org(ORG)
        .send()
        .await
        .expect(422);
    assert_eq!(
        malformed.locs(),
        vec![vec![json!("path"), json!("audit_log_id")]]
    );

    // --- Facets, for everything and for a filter.
    for (pairs, keep) in [
        (
            vec![],
            Box::new(|_: &Value| true) as Box<dyn Fn(&Value) -> bool>,
        ),
        (
            vec![("q", "service_name:repo")],
            Box::new(is("service_name", "repo")),
        ),
    ] {
        let facets = server
            .get(&format!("/api/audit-logs/facets?{}", query(&pairs)))
            .bearer(&admin_token)
            .org(ORG)
            .send()
            .await
            .expect(200)
            .json();
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for record in all.iter().filter(|r| keep(r)) {
            *want
                .entry(record["action_key"].as_str().expect("key").to_string())
                .or_default() += 1;
        }
        let actions = facets["actions"].as_array().expect("actions");
        let got: BTreeMap<String, u64> = actions
            .iter()
            .map(|a| {
                (
                    a["action_key"].as_str().expect("key").to_string(),
                    a["count"].as_u64().expect("count"),
                )
            })
            .collect();
        assert_eq!(got, want, "action facets for {pairs:?}");
        let counts: Vec<u64> = actions
            .iter()
            .map(|a| a["count"].as_u64().unwrap())
            .collect();
        assert!(
            counts.windows(2).all(|w| w[0] >= w[1]),
            "not most frequent first"
        );
        for action in actions {
            assert!(action["display_name"].is_string(), "{action}");
            assert!(action["group"].is_string(), "{action}");
        }
        let users = facets["users"].as_array().expect("users");
        for actor in ["u-alice", "u-bob", "sa-ci", "cron"] {
            let want = all
                .iter()
                .filter(|r| keep(r) && r["actor_id"].as_str() == Some(actor))
                .count() as u64;
            let got = users
                .iter()
                .filter(|u| u["actor_id"].as_str() == Some(actor))
                .map(|u| u["count"].as_u64().expect("count"))
                .sum::<u64>();
            assert_eq!(got, want, "user facet {actor} for {pairs:?}: {users:?}");
        }
        let alice = users
            .iter()
            .find(|u| u["actor_id"] == "u-alice")
            .expect("alice");
        assert_eq!(alice["actor_email"], "alice@example.com");
        assert_eq!(alice["actor_name"], "Alice");
    }

    // --- The catalog.
    let catalog = server
        .get("/api/audit-logs/actions")
        .bearer(&admin_token)
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(catalog["accept_unknown"], false);
    let groups = catalog["groups"].as_array().expect("groups");
    let keys: HashSet<&str> = groups
        .iter()
        .flat_map(|g| g["actions"].as_array().expect("actions"))
        .map(|a| a["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys.len(), 27, "the seed lists 27 actions: {keys:?}");
    for key in [
        "channel_created",
        "policy_created",
        "audit_log_export_requested",
    ] {
        assert!(keys.contains(key), "{key} missing from the catalog");
    }
    let channels = groups
        .iter()
        .find(|g| g["group"] == "Channels")
        .expect("a Channels group");
    assert!(channels["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["key"] == "channel_created" && a["display_name"] == "Channel Created"));

    // --- The public key (no token) and a signed checkpoint of the head.
    let public = server
        .get("/api/audit-logs/public-key")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(public["algorithm"], "ed25519");
    let key_hex = public["public_key"].as_str().expect("public_key");
    let published = auditlog_service::keys::parse_public_key(key_hex).expect("a valid key");
    assert_eq!(published, verifying_key);
    assert_eq!(
        public["key_id"].as_str(),
        Some(auditlog_core::chain::key_id(&verifying_key).as_str())
    );
    let checkpoint = server
        .get("/api/audit-logs/checkpoint")
        .bearer(&admin_token)
        .org(ORG)
        .send()
        .await
        .expect(200)
        .json();
    let wire: CheckpointWire = serde_json::from_value(checkpoint.clone()).expect("checkpoint");
    let signed = wire.into_signed().expect("a well-formed checkpoint");
    signed.verify(&published).expect("validly signed");
    assert_eq!(signed.checkpoint.org_id, org.id);
    assert_eq!(signed.checkpoint.seq, server.head(&org).await);
    let last = all
        .iter()
        .max_by_key(|r| r["seq"].as_u64())
        .expect("events");
    assert_eq!(checkpoint["hash"], last["hash"]);
    let again = server
        .get("/api/audit-logs/checkpoint")
        .bearer(&admin_token)
        .org(ORG)
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(again, checkpoint, "an unmoved head is not signed again");

    // --- A service account trades its credentials for a token (form and JSON).
    let (client_id, secret) = server.service_account(&org, "exporter").await;
    let form = query(&[
        ("grant_type", "client_credentials"),
        ("client_id", &client_id),
        ("client_secret", &secret),
    ]);
    let by_form = server
        .post("/api/iam/token")
        .body("application/x-www-form-urlencoded", form)
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(by_form["token_type"], "bearer");
    assert_eq!(by_form["expires_in"], 900);
    let by_json = server
        .post("/api/iam/token")
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        }))
        .send()
        .await
        .expect(200)
        .json();
    let sa_token = by_json["access_token"].as_str().expect("token").to_string();
    assert_ne!(by_form["access_token"], by_json["access_token"]);
    let wrong = server
        .post("/api/iam/token")
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "al_secret_wrong",
        }))
        .send()
        .await
        .expect(401);
    assert!(wrong.header("www-authenticate").is_some());
    server
        .post("/api/iam/token")
        .body(
            "application/x-www-form-urlencoded",
            format!("client_id={client_id}&client_secret={secret}"),
        )
        .send()
        .await
        .expect(400);
    // Reading with it: the token is bound to its organization, so the header is optional.
    let head = server.head(&org).await;
    for named in [true, false] {
        let mut call = server.get("/api/audit-logs?limit=1").bearer(&sa_token);
        if named {
            call = call.org(ORG);
        }
        let body = call.send().await.expect(200).json();
        assert_eq!(body["total_count"].as_u64(), Some(head));
    }
    let signins = reader
        .list(&[
            ("q", "action_key:authentication_success"),
            ("q", "outcome:success"),
            ("search_operator", "and"),
        ])
        .await;
    assert_eq!(signins["total_count"], 2, "each token exchange is recorded");
    let failed = reader.list(&[("q", "outcome:failure")]).await;
    assert_eq!(failed["total_count"], 1, "so is the wrong secret: {failed}");
    assert_eq!(failed["items"][0]["reason"], "wrong client secret");

    // --- Exports: JSON Lines, CSV and gzip of both, then filtered ones, verified offline.
    let exports: Vec<(&str, &String, Value, Option<u64>)> = vec![
        ("jsonl", &admin_token, json!({}), None),
        ("csv", &admin_token, json!({"format": "csv"}), None),
        ("jsonl.gz", &admin_token, json!({"gzip": true}), None),
        (
            "csv.gz",
            &sa_token,
            json!({"format": "csv", "gzip": true}),
            None,
        ),
        (
            "jsonl",
            &sa_token,
            json!({"q": ["action_key:channel_created"], "search_operator": "or"}),
            Some(
                all.iter()
                    .filter(|r| r["action_key"] == "channel_created")
                    .count() as u64,
            ),
        ),
        (
            "csv",
            &admin_token,
            json!({"from_date": t3, "to_date": t7, "format": "csv"}),
            Some(5),
        ),
    ];
    let mut job_ids = Vec::new();
    for (extension, token, request, filtered) in exports {
        let head_before = server.head(&org).await;
        let created = server
            .post("/api/audit-logs/export")
            .bearer(token)
            .org(ORG)
            .json(&request)
            .send()
            .await
            .expect(200)
            .json();
        let job_id = created["id"].as_str().expect("job id").to_string();
        let head = server.head(&org).await;
        assert_eq!(head, head_before + 1, "the request is recorded in the log");
        let status = wait_for_export(&server, token, ORG, &job_id).await;
        assert_eq!(status["id"], job_id.as_str());
        assert_eq!(status["org_id"], json!(org.id));
        assert_eq!(status["progress"], 100);
        assert!(status["completed_at"].is_string(), "{status}");
        assert!(status["error_message"].is_null(), "{status}");
        let total = status["total_records"].as_u64().expect("total_records");
        assert_eq!(
            total,
            filtered.unwrap_or(head),
            "total_records of {request}"
        );
        let path = format!("/api/audit-logs/export/{job_id}/download");
        assert_eq!(
            status["download_url"].as_str(),
            Some(format!("http://{}{path}", server.addr).as_str())
        );
        let download = server
            .get(&path)
            .bearer(token)
            .org(ORG)
            .send()
            .await
            .expect(200);
        let content_type = download.header("content-type").expect("content type");
        let gzip = extension.ends_with(".gz");
        let csv = extension.starts_with("csv");
        let want_type = match (csv, gzip) {
            (_, true) => "application/gzip",
            (true, false) => "text/csv",
            (false, false) => "application/x-ndjson",
        };
        assert!(content_type.starts_with(want_type), "{content_type}");
        assert!(download
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment") && d.contains(extension)));
        if gzip {
            assert_eq!(&download.body[..2], &[0x1f, 0x8b], "not gzip");
        } else if csv {
            assert!(download
                .text()
                .starts_with("id,org_id,org_name,action_key,"));
            // The rows, then the checkpoint row, then the tree checkpoint's row, whose note
            // cell spans the note's lines.
            let text = download.text();
            let (rows, tree) = text.split_once("\n#tree_checkpoint,").expect("a tree row");
            assert_eq!(
                rows.lines().count() as u64,
                total + 2,
                "header, rows, checkpoint"
            );
            assert!(
                tree.starts_with(&format!("\"auditlog/{}\n{head}\n", org.id)),
                "{tree}"
            );
        } else {
            let text = download.text();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            assert_eq!(
                lines.len() as u64,
                total + 2,
                "events, then the checkpoint and the tree checkpoint"
            );
            assert_eq!(lines[lines.len() - 2]["type"], "checkpoint");
            assert_eq!(lines[lines.len() - 1]["type"], "tree_checkpoint");
            for line in &lines[..lines.len() - 2] {
                // Events listed before the export match the listing field for field.
                if let Some(listed) = by_id.get(&id_of(line)) {
                    let mut line = line.clone();
                    assert!(line["prev_hash"].is_string());
                    assert_eq!(line["inclusion_proof"]["tree_size"], json!(head));
                    line.as_object_mut().unwrap().remove("prev_hash");
                    line.as_object_mut().unwrap().remove("inclusion_proof");
                    assert_eq!(&&line, listed);
                }
            }
        }
        let report = verify_export(download.body.as_slice(), &published)
            .unwrap_or_else(|e| panic!("export {extension} of {request} does not verify: {e}"));
        assert_eq!(report.records, total);
        assert_eq!(report.org_id, org.id);
        assert_eq!(report.checkpoint_seq, head);
        assert_eq!(report.gzip, gzip);
        assert_eq!(
            report.format,
            if csv {
                ExportFormat::Csv
            } else {
                ExportFormat::Jsonl
            }
        );
        assert_eq!(report.complete, filtered.is_none(), "{report:?}");
        job_ids.push(job_id);
    }
    let requested = reader
        .list(&[
            ("q", "action_key:audit_log_export_requested"),
            ("sort", "occurred_at"),
        ])
        .await;
    let targets: Vec<&str> = requested["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target_id"].as_str().expect("job id"))
        .collect();
    assert_eq!(targets, job_ids, "every export request is in the log");
    server
        .get(&format!("/api/audit-logs/export/{}", uuid::Uuid::new_v4()))
        .bearer(&admin_token)
        .org(ORG)
        .send()
        .await
        .expect(404);

    // --- And the whole chain still verifies.
    let verified = server
        .service
        .verify_org(org.id, &|_| {})
        .await
        .expect("the chain verifies");
    assert_eq!(verified.events, server.head(&org).await);
}
