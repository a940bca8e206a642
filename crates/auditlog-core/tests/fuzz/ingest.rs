//! Fuzz target `ingest`: a client's JSON event as the HTTP API receives it, through the I-JSON
//! check, parsing and validation (`events` has the assertions).

use crate::driver::{self, Target};
use crate::events;

/// Field names, values the validator has rules for, and JSON fragments of events.
const DICTIONARY: &[&[u8]] = &[
    b"\"action_key\"",
    b"\"action_verb\"",
    b"\"actor_id\"",
    b"\"actor_email\"",
    b"\"actor_name\"",
    b"\"actor_type\"",
    b"\"target_id\"",
    b"\"target_email\"",
    b"\"target_name\"",
    b"\"target_type\"",
    b"\"service_name\"",
    b"\"ip_address\"",
    b"\"user_agent\"",
    b"\"request_id\"",
    b"\"meta\"",
    b"\"occurred_at\"",
    b"\"org\"",
    b"\"channel_created\"",
    b"\"token_created\"",
    b"\"widget_frobbed\"",
    b"\"created\"",
    b"\"user\"",
    b"\"service_account\"",
    b"\"system\"",
    b"@",
    b"\"a@b\"",
    b"\"::1\"",
    b"\"2001:db8::7\"",
    b"\"::ffff:1.2.3.4\"",
    b"\"203.0.113.7\"",
    b"\"2026-05-31T10:00:00Z\"",
    b"\"2026-06-02T00:00:00.001Z\"",
    b"\"9999-12-31T23:59:59.999+00:00\"",
    b"\"meta\":{\"a\":",
    b"\"a\":1,\"a\":2",
    b"\"\":",
];

const TARGET: Target = Target {
    name: "ingest",
    dictionary: DICTIONARY,
    // Above the 16 KiB that `meta` may hold, so that the size limit is crossed both ways.
    max_len: 20 * 1024,
    check,
};

#[test]
fn fuzz() {
    driver::run(&TARGET, Vec::new());
}

/// One request body holding one event.
fn check(input: &[u8]) -> String {
    match std::str::from_utf8(input) {
        Ok(text) => events::check_event_text(text),
        Err(_) => {
            assert!(
                events::parse_like_http(input).is_err(),
                "a body that is not UTF-8 was read as an event"
            );
            "not UTF-8".to_string()
        }
    }
}
