//! Bad input gets a clear error and changes nothing (docs/design.md): every refused request
//! names what is wrong in `detail[].loc`, and the organization's chain head, and so its
//! events, export requests and jobs, is exactly as before.

use auditlog_core::Timestamp;
use serde_json::{json, Value};

use crate::{query, Backend, Reply, Server};

on_each_backend! {
    bad_ingest_requests_change_nothing =>
        bad_ingest_requests_change_nothing_sqlite,
        bad_ingest_requests_change_nothing_postgres;
    bad_list_parameters_are_named =>
        bad_list_parameters_are_named_sqlite,
        bad_list_parameters_are_named_postgres;
    bad_export_requests_create_no_job =>
        bad_export_requests_create_no_job_sqlite,
        bad_export_requests_create_no_job_postgres;
    accepted_numbers_are_stored_and_returned_in_one_form =>
        accepted_numbers_are_stored_and_returned_in_one_form_sqlite,
        accepted_numbers_are_stored_and_returned_in_one_form_postgres;
}

/// A number that is exactly a double is stored as that double: the API returns it in one
/// form (an integral value within 2^53 as an integer, any other in its shortest round-trip
/// form), the export carries the same, and the chain still verifies.
async fn accepted_numbers_are_stored_and_returned_in_one_form(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let body = br#"{"action_key":"channel_created","meta":{"one":1.0,"tenth":0.1,"two_to_60":1152921504606846976,"big":1.5e300,"neg":-2.50,"exp":1E2}}"#;
    let reply = fx
        .server
        .post("/api/audit-logs/events")
        .bearer(&fx.ingest)
        .body("application/json", body.to_vec())
        .send()
        .await
        .expect(201);
    let id = reply.json()["ids"][0].as_str().expect("an id").to_string();
    let event = fx
        .server
        .get(&format!("/api/audit-logs/{id}"))
        .bearer(&fx.admin)
        .org("acme")
        .send()
        .await
        .expect(200);
    let text = event.text();
    let meta_at = text.find("\"meta\":").expect("the event has meta");
    let meta = &text[meta_at..];
    for written in [
        "\"one\":1,",
        "\"tenth\":0.1",
        "\"two_to_60\":1152921504606846976",
        "\"big\":1.5e+300",
        "\"neg\":-2.5",
        "\"exp\":100",
    ] {
        assert!(meta.contains(written), "{written} in {meta}");
    }
    let verified = fx
        .server
        .service
        .verify_org(fx.org.id, &|_| {})
        .await
        .expect("the chain verifies");
    assert_eq!(Some(verified.events), event.json()["seq"].as_u64());
}

/// The body limit of these tests, so that "too large" stays cheap.
const BODY_LIMIT: usize = 64 * 1024;

struct Fixture {
    server: Server,
    org: auditlog_store::Org,
    admin: String,
    ingest: String,
    platform: String,
}

impl Fixture {
    async fn new(backend: Backend) -> Fixture {
        let server = Server::start_with(backend, |config| config.body_limit = BODY_LIMIT).await;
        let org = server.org("acme", true).await;
        let admin = server.admin(&org, "admin@acme.test").await;
        let ingest = server.ingest_key(Some(&org)).await;
        let platform = server.ingest_key(None).await;
        let fixture = Fixture {
            server,
            org,
            admin,
            ingest,
            platform,
        };
        // Some history, so "unchanged" is not trivially about an empty log.
        fixture
            .server
            .post("/api/audit-logs/events")
            .bearer(&fixture.ingest)
            .json(&json!([good(), good()]))
            .send()
            .await
            .expect(201);
        fixture
    }

    async fn head(&self) -> auditlog_store::ChainHead {
        self.server
            .service
            .store()
            .chain_head(self.org.id)
            .await
            .expect("chain head")
    }

    /// Checks that `reply` has `status`, that (for a 422) one of its `loc`s starts with
    /// `loc`, and that the log did not move.
    #[track_caller]
    fn check(
        &self,
        name: &str,
        reply: &Reply,
        status: u16,
        loc: &[Value],
        before: auditlog_store::ChainHead,
        after: auditlog_store::ChainHead,
    ) {
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        let body = reply.json();
        if status == 422 {
            let locs = reply.locs();
            assert!(
                locs.iter().any(|l| l.starts_with(loc)),
                "{name}: no loc starting with {loc:?} in {body}"
            );
            for detail in body["detail"].as_array().unwrap() {
                assert!(
                    detail["msg"].as_str().is_some_and(|m| !m.is_empty()),
                    "{name}"
                );
                assert!(detail["type"].is_string(), "{name}");
            }
        } else {
            assert!(
                body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: no detail in {body}"
            );
        }
        assert_eq!(after, before, "{name}: the log changed");
    }
}

fn good() -> Value {
    json!({"action_key": "channel_created", "actor_email": "alice@example.com", "target_name": "ml"})
}

fn with(field: &str, value: Value) -> Value {
    let mut event = good();
    event[field] = value;
    event
}

fn loc(parts: &[Value]) -> Vec<Value> {
    parts.to_vec()
}

async fn bad_ingest_requests_change_nothing(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let day_after_tomorrow = Timestamp::now().plus_millis(2 * 86_400_000).to_string();
    let mut meta_too_big = good();
    meta_too_big["meta"] = json!({"blob": "x".repeat(20 * 1024)});
    let batch_with_one_bad: Vec<Value> = (0..10)
        .map(|idx| {
            if idx == 6 {
                with("actor_email", json!("not-an-email"))
            } else {
                good()
            }
        })
        .collect();
    let batch_with_two_bad: Vec<Value> = (0..10)
        .map(|idx| match idx {
            2 => with("meta", json!("text")),
            8 => with("action_key", json!("rocket_launched")),
            _ => good(),
        })
        .collect();
    let body = |value: Value| value.to_string().into_bytes();
    let cases: Vec<(&str, Vec<u8>, Vec<Value>)> = vec![
        (
            "malformed JSON",
            b"{\"action_key\": ".to_vec(),
            loc(&[json!("body")]),
        ),
        ("not JSON", b"hello".to_vec(), loc(&[json!("body")])),
        (
            "a repeated action_key",
            br#"{"action_key":"channel_created","action_key":"token_created"}"#.to_vec(),
            loc(&[json!("body"), json!(0), json!("action_key")]),
        ),
        (
            "a repeated key inside meta, in the second event",
            br#"[{"action_key":"channel_created"},{"action_key":"channel_created","meta":{"a":{"b":1,"b":2}}}]"#.to_vec(),
            loc(&[json!("body"), json!(1), json!("meta"), json!("a"), json!("b")]),
        ),
        (
            "a number beyond a double's precision",
            br#"{"action_key":"channel_created","meta":{"n":123456789012345678901234567890}}"#.to_vec(),
            loc(&[json!("body"), json!(0), json!("meta"), json!("n")]),
        ),
        (
            "an integer below i64 and beyond a double",
            br#"{"action_key":"channel_created","meta":{"n":-9223372036854775809}}"#.to_vec(),
            loc(&[json!("body"), json!(0), json!("meta"), json!("n")]),
        ),
        (
            "a decimal with more digits than a double",
            br#"{"action_key":"channel_created","meta":{"x":[1,1.00000000000000000000001]}}"#.to_vec(),
            loc(&[json!("body"), json!(0), json!("meta"), json!("x"), json!(1)]),
        ),
        (
            "2^53 + 1",
            br#"{"action_key":"channel_created","meta":{"n":9007199254740993}}"#.to_vec(),
            loc(&[json!("body"), json!(0), json!("meta"), json!("n")]),
        ),
        ("empty body", Vec::new(), loc(&[json!("body")])),
        ("a JSON string", body(json!("event")), loc(&[json!("body")])),
        (
            "actor_id is a number",
            body(with("actor_id", json!(5))),
            loc(&[json!("body"), json!(0), json!("actor_id")]),
        ),
        (
            "meta is an array",
            body(with("meta", json!([1]))),
            loc(&[json!("body"), json!(0), json!("meta")]),
        ),
        (
            "meta is too big",
            body(meta_too_big),
            loc(&[json!("body"), json!(0), json!("meta")]),
        ),
        (
            "unknown field",
            body(with("actor_mail", json!("a@b.c"))),
            loc(&[json!("body"), json!(0), json!("actor_mail")]),
        ),
        (
            "unknown action",
            body(with("action_key", json!("rocket_launched"))),
            loc(&[json!("body"), json!(0), json!("action_key")]),
        ),
        (
            "no action",
            body(json!({"actor_email": "alice@example.com"})),
            loc(&[json!("body"), json!(0), json!("action_key")]),
        ),
        (
            "bad occurred_at",
            body(with("occurred_at", json!("yesterday"))),
            loc(&[json!("body"), json!(0), json!("occurred_at")]),
        ),
        (
            "occurred_at in the future",
            body(with("occurred_at", json!(day_after_tomorrow))),
            loc(&[json!("body"), json!(0), json!("occurred_at")]),
        ),
        (
            "bad actor_email",
            body(with("actor_email", json!("alice"))),
            loc(&[json!("body"), json!(0), json!("actor_email")]),
        ),
        (
            "bad ip_address",
            body(with("ip_address", json!("10.0.0.999"))),
            loc(&[json!("body"), json!(0), json!("ip_address")]),
        ),
        (
            "bad actor_type",
            body(with("actor_type", json!("robot"))),
            loc(&[json!("body"), json!(0), json!("actor_type")]),
        ),
        ("empty batch", body(json!([])), loc(&[json!("body")])),
        (
            "batch of 1001",
            body(Value::Array(vec![
                json!({"action_key": "channel_created"});
                1001
            ])),
            loc(&[json!("body")]),
        ),
        (
            "one bad event among 10",
            body(Value::Array(batch_with_one_bad)),
            loc(&[json!("body"), json!(6), json!("actor_email")]),
        ),
        (
            "two bad events among 10 (the first)",
            body(Value::Array(batch_with_two_bad.clone())),
            loc(&[json!("body"), json!(2), json!("meta")]),
        ),
        (
            "two bad events among 10 (the second)",
            body(Value::Array(batch_with_two_bad)),
            loc(&[json!("body"), json!(8), json!("action_key")]),
        ),
        (
            "a batch holding a number",
            body(json!([good(), 7])),
            loc(&[json!("body"), json!(1)]),
        ),
    ];
    for (name, bytes, want_loc) in cases {
        assert!(bytes.len() < BODY_LIMIT, "{name} is too big for this test");
        let before = fx.head().await;
        let reply = fx
            .server
            .post("/api/audit-logs/events")
            .bearer(&fx.ingest)
            .body("application/json", bytes)
            .send()
            .await;
        fx.check(name, &reply, 422, &want_loc, before, fx.head().await);
    }

    // A single bad event in a batch is named alone: the nine good ones are not blamed.
    let before = fx.head().await;
    let reply = fx
        .server
        .post("/api/audit-logs/events")
        .bearer(&fx.ingest)
        .json(&Value::Array(
            (0..10)
                .map(|idx| {
                    if idx == 6 {
                        with("actor_email", json!("nope"))
                    } else {
                        good()
                    }
                })
                .collect(),
        ))
        .send()
        .await;
    fx.check(
        "one bad of 10",
        &reply,
        422,
        &[json!("body"), json!(6)],
        before,
        fx.head().await,
    );
    assert_eq!(
        reply.locs(),
        vec![vec![json!("body"), json!(6), json!("actor_email")]]
    );

    // Too large: refused with 413, with a Content-Length or chunked.
    let mut huge = good();
    huge["meta"] = json!({"blob": "x".repeat(BODY_LIMIT + 1024)});
    for chunked in [false, true] {
        let before = fx.head().await;
        let mut call = fx
            .server
            .post("/api/audit-logs/events")
            .bearer(&fx.ingest)
            .json(&huge);
        if chunked {
            call = call.chunked();
        }
        let reply = call.send().await;
        fx.check(
            &format!("too large (chunked: {chunked})"),
            &reply,
            413,
            &[],
            before,
            fx.head().await,
        );
    }

    // An unknown organization: 404 for a platform key, in the header; 422 naming the
    // event's `org` in the body.
    let before = fx.head().await;
    let reply = fx
        .server
        .post("/api/audit-logs/events")
        .bearer(&fx.platform)
        .org("no-such-org")
        .json(&good())
        .send()
        .await;
    fx.check(
        "unknown org header",
        &reply,
        404,
        &[],
        before,
        fx.head().await,
    );
    let reply = fx
        .server
        .post("/api/audit-logs/events")
        .bearer(&fx.platform)
        .json(&json!([
            with("org", json!("acme")),
            with("org", json!("no-such-org"))
        ]))
        .send()
        .await;
    fx.check(
        "unknown org in the event",
        &reply,
        422,
        &[json!("body"), json!(1), json!("org")],
        before,
        fx.head().await,
    );

    // A malformed Idempotency-Key is named too.
    for key in ["", &"k".repeat(256)] {
        let reply = fx
            .server
            .post("/api/audit-logs/events")
            .bearer(&fx.ingest)
            .header("Idempotency-Key", key)
            .json(&good())
            .send()
            .await;
        fx.check(
            "bad idempotency key",
            &reply,
            422,
            &[json!("header"), json!("idempotency-key")],
            before,
            fx.head().await,
        );
    }

    fx.server
        .service
        .verify_org(fx.org.id, &|_| {})
        .await
        .expect("the chain verifies");
}

async fn bad_list_parameters_are_named(backend: Backend) {
    let fx = Fixture::new(backend).await;
    // A cursor made for the oldest-first order.
    let page = fx
        .server
        .get("/api/audit-logs?sort=occurred_at&limit=1")
        .bearer(&fx.admin)
        .org("acme")
        .send()
        .await
        .expect(200)
        .json();
    let oldest_cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
    // (what, query parameters, the parameter the 422 must name)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "bad from_date",
            vec![("from_date", "yesterday")],
            "from_date",
        ),
        ("bad to_date", vec![("to_date", "2024-13-45")], "to_date"),
        (
            "to_date without a zone",
            vec![("to_date", "2024-05-01T10:00:00")],
            "to_date",
        ),
        ("bad cursor", vec![("cursor", "!!garbage!!")], "cursor"),
        ("tampered cursor", vec![("cursor", "eyJhIjoxfQ")], "cursor"),
        (
            "cursor of the other order",
            vec![("cursor", oldest_cursor.as_str())],
            "cursor",
        ),
        (
            "cursor and offset",
            vec![
                ("sort", "occurred_at"),
                ("cursor", oldest_cursor.as_str()),
                ("offset", "3"),
            ],
            "offset",
        ),
        ("bad q column", vec![("q", "colour:red")], "q"),
        ("q without a colon", vec![("q", "action_key")], "q"),
        ("q without values", vec![("q", "action_key:")], "q"),
        ("limit 0", vec![("limit", "0")], "limit"),
        ("limit 1001", vec![("limit", "1001")], "limit"),
        ("limit not a number", vec![("limit", "ten")], "limit"),
        ("offset -1", vec![("offset", "-1")], "offset"),
        ("bad sort", vec![("sort", "actor_email")], "sort"),
        (
            "bad operator",
            vec![("search_operator", "xor")],
            "search_operator",
        ),
        // An empty value is not an absent parameter: the reference refuses each of these.
        ("empty to_date", vec![("to_date", "")], "to_date"),
        ("empty from_date", vec![("from_date", "")], "from_date"),
        ("empty limit", vec![("limit", "")], "limit"),
        ("empty offset", vec![("offset", "")], "offset"),
        ("empty q", vec![("q", "")], "q"),
    ];
    for path in ["/api/audit-logs", "/api/audit-logs/facets"] {
        for (name, pairs, param) in &cases {
            if path.ends_with("facets") && matches!(*param, "cursor" | "offset" | "limit") {
                continue;
            }
            let before = fx.head().await;
            let reply = fx
                .server
                .get(&format!("{path}?{}", query(pairs)))
                .bearer(&fx.admin)
                .org("acme")
                .send()
                .await;
            fx.check(
                &format!("{path} {name}"),
                &reply,
                422,
                &[json!("query"), json!(param)],
                before,
                fx.head().await,
            );
        }
    }
    // Every problem at once.
    let reply = fx
        .server
        .get("/api/audit-logs?limit=0&offset=-1&from_date=x")
        .bearer(&fx.admin)
        .org("acme")
        .send()
        .await
        .expect(422);
    let mut locs = reply.locs();
    locs.sort_by_key(|l| l[1].to_string());
    assert_eq!(
        locs,
        vec![
            vec![json!("query"), json!("from_date")],
            vec![json!("query"), json!("limit")],
            vec![json!("query"), json!("offset")],
        ]
    );
}

async fn bad_export_requests_create_no_job(backend: Backend) {
    let fx = Fixture::new(backend).await;
    let cases: Vec<(&str, Vec<u8>, Vec<Value>)> = vec![
        (
            "q is a string",
            json!({"q": "action_key:channel_created"})
                .to_string()
                .into_bytes(),
            loc(&[json!("body"), json!("q")]),
        ),
        (
            "bad q column",
            json!({"q": ["colour:red"]}).to_string().into_bytes(),
            loc(&[json!("body"), json!("q"), json!(0)]),
        ),
        (
            "unknown format",
            json!({"format": "xml"}).to_string().into_bytes(),
            loc(&[json!("body"), json!("format")]),
        ),
        (
            "format is a number",
            json!({"format": 5}).to_string().into_bytes(),
            loc(&[json!("body"), json!("format")]),
        ),
        (
            "gzip is a string",
            json!({"gzip": "yes"}).to_string().into_bytes(),
            loc(&[json!("body"), json!("gzip")]),
        ),
        (
            "bad from_date",
            json!({"from_date": "nope"}).to_string().into_bytes(),
            loc(&[json!("body"), json!("from_date")]),
        ),
        (
            "to_date is a number",
            json!({"to_date": 5}).to_string().into_bytes(),
            loc(&[json!("body"), json!("to_date")]),
        ),
        (
            "bad operator",
            json!({"search_operator": "xor"}).to_string().into_bytes(),
            loc(&[json!("body"), json!("search_operator")]),
        ),
        (
            "unknown field",
            json!({"colour": "red"}).to_string().into_bytes(),
            loc(&[json!("body"), json!("colour")]),
        ),
        ("an array", b"[1]".to_vec(), loc(&[json!("body")])),
        // The reference requires a body: none at all is a 422, not "export everything".
        ("no body", Vec::new(), loc(&[json!("body")])),
        (
            "empty from_date",
            json!({"from_date": ""}).to_string().into_bytes(),
            loc(&[json!("body"), json!("from_date")]),
        ),
        (
            "empty q entry",
            json!({"q": [""]}).to_string().into_bytes(),
            loc(&[json!("body"), json!("q"), json!(0)]),
        ),
        ("malformed JSON", b"{".to_vec(), loc(&[json!("body")])),
    ];
    for (name, bytes, want_loc) in cases {
        let before = fx.head().await;
        let reply = fx
            .server
            .post("/api/audit-logs/export")
            .bearer(&fx.admin)
            .org("acme")
            .body("application/json", bytes)
            .send()
            .await;
        // The request is recorded in the log before its job is created, so an unmoved head
        // also means no job.
        fx.check(name, &reply, 422, &want_loc, before, fx.head().await);
    }
    // Export files go to the data directory on either backend, so this holds for both.
    let exports = fx.server.dir.path().join("exports");
    let files: Vec<_> = std::fs::read_dir(&exports)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "export files were written: {files:?}");
}
