//! `import` with bad input: every rejected file names the line and the field, exits 1 and
//! leaves the organization exactly as empty as it was; plus the boundaries that must still be
//! accepted, `--skip-invalid`, a missing organization and a database from a newer version.

use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use serde_json::{json, Value};

use crate::{valid_event, valid_lines, Env};

/// A valid event with `edit` applied to its JSON object.
fn event_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut event = valid_event(99);
    edit(event.as_object_mut().expect("an object"));
    event.to_string()
}

/// Checks that no event of `acme` was stored: `events` lists none and `verify` counts none.
fn assert_nothing_stored(env: &Env) {
    assert_eq!(env.events_jsonl("acme", &[]), Vec::<Value>::new());
    let verify = env.run(&["verify", "--org", "acme"]);
    verify.expect_code(0);
    assert!(
        verify.stdout.contains("acme: 0 events"),
        "{}",
        verify.stdout
    );
}

/// Imports two valid lines, `bad` on line 3 and two more valid lines into a fresh `acme`;
/// checks exit code 1, that stderr holds `line 3: <expected…>`, and that nothing was stored.
#[track_caller]
fn assert_rejected(bad: String, expected: &[&str]) {
    let env = Env::new();
    env.create_org("acme");
    let mut lines = valid_lines(0, 2);
    lines.push(bad);
    lines.extend(valid_lines(2, 2));
    let run = env.import("acme", &lines, &[]);
    run.expect_code(1);
    let reported: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("line "))
        .collect();
    assert_eq!(
        reported.len(),
        1,
        "exactly one bad line must be reported:\n{}",
        run.stderr
    );
    assert!(
        reported[0].starts_with("line 3: "),
        "the line number must be given: {}",
        reported[0]
    );
    for part in expected {
        assert!(
            reported[0].contains(part),
            "expected {part:?} in {:?}",
            reported[0]
        );
    }
    assert!(
        run.stderr
            .contains("1 invalid line(s): nothing was imported"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "nothing is reported as imported: {}",
        run.stdout
    );
    assert_nothing_stored(&env);
}

#[test]
fn malformed_json_line() {
    assert_rejected(
        r#"{"action_key": "channel_created", "#.to_string(),
        &["EOF"],
    );
    assert_rejected(
        r#"{"action_key": channel_created}"#.to_string(),
        &["expected"],
    );
}

#[test]
fn unknown_field() {
    assert_rejected(
        event_with(|e| {
            e.insert("actor_mail".into(), json!("alice@example.com"));
        }),
        &["actor_mail: unknown field"],
    );
}

#[test]
fn meta_of_the_wrong_type() {
    assert_rejected(
        event_with(|e| {
            e.insert("meta".into(), json!(5));
        }),
        &["meta: must be a JSON object"],
    );
}

#[test]
fn string_field_of_the_wrong_type_names_the_field() {
    assert_rejected(
        event_with(|e| {
            e.insert("actor_id".into(), json!(5));
        }),
        &["actor_id"],
    );
}

#[test]
fn unknown_action() {
    assert_rejected(
        event_with(|e| {
            e.insert("action_key".into(), json!("made_up_action"));
        }),
        &["action_key: unknown action \"made_up_action\""],
    );
}

#[test]
fn bad_email() {
    assert_rejected(
        event_with(|e| {
            e.insert("actor_email".into(), json!("alice.example.com"));
        }),
        &["actor_email: \"alice.example.com\" is not an email address"],
    );
}

#[test]
fn bad_ip_address() {
    assert_rejected(
        event_with(|e| {
            e.insert("ip_address".into(), json!("300.1.2.3"));
        }),
        &["ip_address: \"300.1.2.3\" is not an IPv4 or IPv6 address"],
    );
}

#[test]
fn occurred_at_without_offset() {
    assert_rejected(
        event_with(|e| {
            e.insert("occurred_at".into(), json!("2025-03-01T10:00:00"));
        }),
        &["occurred_at: expected an RFC 3339 timestamp with an offset"],
    );
}

#[test]
fn occurred_at_three_days_ahead() {
    let ahead = Timestamp::now().plus_millis(3 * MS_PER_DAY).to_string();
    assert_rejected(
        event_with(|e| {
            e.insert("occurred_at".into(), json!(ahead));
        }),
        &["occurred_at: ", "is more than a day in the future"],
    );
}

#[test]
fn overlong_actor_id() {
    assert_rejected(
        event_with(|e| {
            e.insert("actor_id".into(), json!("u".repeat(129)));
        }),
        &["actor_id: is longer than 128 characters"],
    );
}

#[test]
fn meta_over_16_kib() {
    assert_rejected(
        event_with(|e| {
            e.insert("meta".into(), json!({ "blob": "x".repeat(16 * 1024) }));
        }),
        &["meta: is ", "bytes as JSON; the limit is 16384"],
    );
}

/// `meta` nested `depth` levels deep, counting `meta` itself as level 1.
fn nested_meta(depth: usize) -> Value {
    let mut value = json!("leaf");
    for _ in 0..depth {
        value = json!({ "inner": value });
    }
    value
}

#[test]
fn meta_nested_17_deep() {
    assert_rejected(
        event_with(|e| {
            e.insert("meta".into(), nested_meta(17));
        }),
        &["meta: is nested 17 levels deep; the limit is 16"],
    );
}

#[test]
fn control_character_in_actor_id() {
    assert_rejected(
        event_with(|e| {
            e.insert("actor_id".into(), json!("bob\u{7}"));
        }),
        &["actor_id: must not contain control characters"],
    );
}

#[test]
fn line_naming_another_organization() {
    assert_rejected(
        event_with(|e| {
            e.insert("org".into(), json!("globex"));
        }),
        &["org: names \"globex\", but this import is into \"acme\""],
    );
}

#[test]
fn every_problem_of_a_line_is_reported_and_blank_lines_count() {
    let env = Env::new();
    env.create_org("acme");
    let bad = event_with(|e| {
        e.insert("actor_email".into(), json!("nobody"));
        e.insert("ip_address".into(), json!("::g"));
    });
    let lines = vec![valid_event(0).to_string(), String::new(), bad];
    let run = env.import("acme", &lines, &[]);
    run.expect_code(1);
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with("line "))
        .expect("a reported line");
    assert!(line.starts_with("line 3: "), "{line}");
    assert!(line.contains("actor_email: "), "{line}");
    assert!(line.contains("ip_address: "), "{line}");
    assert_nothing_stored(&env);
}

#[test]
fn values_at_the_limits_are_accepted() {
    let env = Env::new();
    let org_id = env.create_org("acme");
    let lines = vec![
        event_with(|e| {
            e.insert("actor_id".into(), json!("u".repeat(128)));
        }),
        event_with(|e| {
            e.insert("meta".into(), nested_meta(16));
        }),
        // `{"blob":"…"}` is 11 bytes of JSON around the string.
        event_with(|e| {
            e.insert("meta".into(), json!({ "blob": "x".repeat(16 * 1024 - 11) }));
        }),
        event_with(|e| {
            e.insert("org".into(), json!("acme"));
        }),
        event_with(|e| {
            e.insert("org".into(), json!(org_id.to_string()));
        }),
        event_with(|e| {
            let ahead = Timestamp::now().plus_millis(MS_PER_DAY / 2).to_string();
            e.insert("occurred_at".into(), json!(ahead));
        }),
    ];
    let run = env.import("acme", &lines, &[]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("imported 6 events into acme (seq 1..=6)"),
        "{}",
        run.stdout
    );
    assert_eq!(env.events_jsonl("acme", &[]).len(), 6);
}

#[test]
fn one_bad_line_among_good_ones_imports_nothing_unless_skipped() {
    let env = Env::new();
    env.create_org("acme");
    let mut lines = valid_lines(0, 3);
    lines.insert(
        1,
        event_with(|e| {
            e.insert("action_key".into(), json!("made_up_action"));
        }),
    );

    let refused = env.import("acme", &lines, &[]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains(
            "1 invalid line(s): nothing was imported (use --skip-invalid to import the 3 valid ones)"
        ),
        "{}",
        refused.stderr
    );
    assert_nothing_stored(&env);

    let skipped = env.import("acme", &lines, &["--skip-invalid"]);
    skipped.expect_code(0);
    assert!(
        skipped
            .stderr
            .contains("line 2: action_key: unknown action"),
        "the skipped line is still reported: {}",
        skipped.stderr
    );
    assert!(
        skipped
            .stdout
            .contains("imported 3 events into acme (seq 1..=3); signed checkpoint at seq 3"),
        "{}",
        skipped.stdout
    );
    assert!(
        skipped.stdout.contains("skipped 1 invalid line(s)"),
        "{}",
        skipped.stdout
    );
    let mut request_ids: Vec<String> = env
        .events_jsonl("acme", &[])
        .iter()
        .map(|record| {
            record["request_id"]
                .as_str()
                .expect("request_id")
                .to_string()
        })
        .collect();
    request_ids.sort();
    assert_eq!(request_ids, ["req-0", "req-1", "req-2"]);
    let verify = env.run(&["verify"]);
    verify.expect_code(0);
    assert!(
        verify
            .stdout
            .contains("acme: 3 events, chain intact, signed checkpoint at seq 3 matches"),
        "{}",
        verify.stdout
    );
}

#[test]
fn import_into_a_missing_organization_says_how_to_create_it() {
    let env = Env::new();
    env.create_org("acme");
    let run = env.import("globex", &valid_lines(0, 3), &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no organization is named \"globex\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("auditlog org create globex"),
        "{}",
        run.stderr
    );
    assert_nothing_stored(&env);
}

#[test]
fn database_from_a_newer_version_is_refused() {
    let env = Env::new();
    env.create_org("acme");
    env.open_db()
        .execute_batch("PRAGMA user_version = 99")
        .expect("set user_version");

    for args in [
        vec!["org", "list"],
        vec!["verify"],
        vec!["events", "--org", "acme"],
    ] {
        let run = env.run(&args);
        run.expect_code(2);
        assert!(run.stderr.contains("upgrade"), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("schema version 99"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let refused = env.import("acme", &valid_lines(0, 3), &[]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("upgrade"), "{}", refused.stderr);

    // The file was neither migrated nor written to.
    let db = env.open_db();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version");
    assert_eq!(version, 99);
    let n_events: i64 = db
        .query_row("SELECT count(*) FROM log", [], |row| row.get(0))
        .expect("count");
    assert_eq!(n_events, 0);
}

#[test]
fn a_repeated_key_is_refused_naming_it() {
    assert_rejected(
        r#"{"action_key":"channel_created","action_key":"token_created"}"#.to_string(),
        &["action_key", "appears more than once"],
    );
    assert_rejected(
        r#"{"action_key":"channel_created","meta":{"a":[{"k":1,"k":2}]}}"#.to_string(),
        &["meta.a[0].k", "appears more than once"],
    );
}

#[test]
fn a_number_a_double_cannot_hold_is_refused_naming_it() {
    for number in [
        "123456789012345678901234567890",
        "-9223372036854775809",
        "1.00000000000000000000001",
    ] {
        assert_rejected(
            format!(r#"{{"action_key":"channel_created","meta":{{"amount":{number}}}}}"#),
            &[
                "meta.amount",
                "not exactly an IEEE 754 double",
                "as a string",
            ],
        );
    }
}
