//! Fuzz target `import`: a JSON Lines file as `auditlog import` reads it, one event per line
//! (blank lines skipped, each line trimmed), with a corpus of import files and of export lines
//! that an operator might feed it by mistake.

use crate::driver::{self, Target};
use crate::events;

/// Fragments of import lines, and the export-only fields an import must refuse by name.
const DICTIONARY: &[&[u8]] = &[
    b"{\"action_key\":\"channel_created\"}",
    b"\"action_key\":",
    b"\"org\":\"acme\"",
    b"\"meta\":",
    b"\"occurred_at\":",
    b"\"actor_email\":",
    b"\"ip_address\":",
    b"\"id\":",
    b"\"seq\":1",
    b"\"hash\":",
    b"\"prev_hash\":",
    b"\"message\":",
    b"\"type\":\"checkpoint\"",
    b"\n\n",
    b"\r\n",
];

const TARGET: Target = Target {
    name: "import",
    dictionary: DICTIONARY,
    max_len: 8 * 1024,
    check,
};

#[test]
fn fuzz() {
    driver::run(&TARGET, Vec::new());
}

/// One import file: every line must be read as the HTTP API would read it, and an error must
/// name the field (the importer prints `line N: field: message`).
fn check(input: &[u8]) -> String {
    // The set of line outcomes, not their sequence: the pool should grow with new kinds of
    // line, not with every order of known ones.
    let mut outcomes = std::collections::BTreeSet::new();
    for line in input.split(|byte| *byte == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            outcomes.insert("not UTF-8".to_string());
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        outcomes.insert(events::check_event_text(text));
    }
    outcomes.into_iter().collect::<Vec<_>>().join("|")
}
