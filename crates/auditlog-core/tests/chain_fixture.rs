//! The committed chain fixtures (`docs/fixtures/chain-v1.jsonl`, written by version 1 of the
//! canonical encoding, and `docs/fixtures/log-v2.jsonl`, of version-2 entries) must keep
//! verifying: a change to the encoding, the hashes or the
//! checkpoint signature format breaks this test before it breaks anyone's stored history.

use auditlog_core::chain::{ChainVerifier, CheckpointWire};
use auditlog_core::wire::EventRecord;

const FIXTURE: &str = include_str!("../../../docs/fixtures/chain-v1.jsonl");

/// The fixture was signed with the Ed25519 key whose seed is 32 bytes of 7.
fn fixture_key() -> ed25519_dalek::VerifyingKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key()
}

/// The events of a fixture's event lines.
fn events_of(lines: &[&str]) -> Vec<auditlog_core::Event> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str::<EventRecord>(line)
                .unwrap()
                .to_event()
                .unwrap()
        })
        .collect()
}

fn parse() -> (Vec<auditlog_core::Event>, CheckpointWire) {
    let mut lines: Vec<&str> = FIXTURE.lines().collect();
    let checkpoint: CheckpointWire = serde_json::from_str(lines.pop().unwrap()).unwrap();
    (events_of(&lines), checkpoint)
}

#[test]
fn version_1_fixture_still_verifies() {
    let (events, checkpoint) = parse();
    assert_eq!(events.len(), 4);
    let mut verifier = ChainVerifier::new(events[0].org_id);
    for event in &events {
        verifier.push(event).unwrap();
    }
    let signed = checkpoint.into_signed().unwrap();
    signed.verify(&fixture_key()).unwrap();
    let (seq, hash) = verifier.head();
    ChainVerifier::check_checkpoint(&signed.checkpoint, seq, Some(hash)).unwrap();
    // Pin the head so that a self-consistent change of encoding is noticed too.
    assert_eq!(
        hex::encode(hash),
        hex::encode(signed.checkpoint.hash),
        "the fixture's head must be the signed one"
    );
}

#[test]
fn any_edit_to_the_fixture_is_detected() {
    let (events, _) = parse();
    let mut edited = events.clone();
    edited[1]
        .body
        .meta
        .insert("note".into(), serde_json::json!("rewritten"));
    let mut verifier = ChainVerifier::new(edited[0].org_id);
    verifier.push(&edited[0]).unwrap();
    let error = verifier.push(&edited[1]).unwrap_err();
    assert!(error.to_string().contains("seq 2"), "{error}");

    let mut swapped = events;
    swapped.swap(1, 2);
    let mut verifier = ChainVerifier::new(swapped[0].org_id);
    verifier.push(&swapped[0]).unwrap();
    assert!(verifier.push(&swapped[1]).is_err());
}

/// The direct encoder that appends and verification use writes exactly the bytes of the
/// readable definition, `canonical_value`, for the fixture and for events that use every
/// field, escapes, non-ASCII keys in `meta`, numbers and absent values.
#[test]
fn direct_encoding_equals_the_value_definition() {
    use auditlog_core::canonical;
    use auditlog_core::chain::{canonical_value, encode_canonical};
    let (mut events, _) = parse();
    let mut varied = events[0].clone();
    varied.seq = 9_007_199_254_740_993;
    varied.body.actor_name = Some("Zoë \"Z\" \\ O'Brien\n\u{1}".into());
    varied.body.target_email = None;
    varied.body.target_id = Some("t-1".into());
    varied.body.ip_address = Some("2001:db8::7".parse().unwrap());
    varied.body.meta = serde_json::from_str(
        r#"{"\u00e9":1,"b":[1.5,-0.0,1e21,{"z":null,"a":true}],"a":"x","\ufb33":2,"\ud800\udc00":3}"#,
    )
    .unwrap();
    events.push(varied);
    let mut empty = events[0].clone();
    empty.body.meta = serde_json::Map::new();
    empty.body.action_verb = None;
    empty.body.request_id = None;
    empty.body.ip_address = None;
    events.push(empty);
    for event in &events {
        let mut direct = Vec::new();
        encode_canonical(event, &mut direct);
        let reference = canonical::encode(&canonical_value(event));
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(reference).unwrap()
        );
    }
}

/// A record made by moving an event out is the record made by copying it.
#[test]
fn records_moved_from_events_equal_records_copied_from_them() {
    let catalog = auditlog_core::Catalog::builtin();
    let (events, _) = parse();
    for event in events {
        let copied = EventRecord::new(&event, Some("acme"), &catalog);
        assert_eq!(
            EventRecord::from_event(event, Some("acme"), &catalog),
            copied
        );
    }
}

/// The committed fixture of version 2 (`docs/fixtures/log-v2.jsonl`): a chain that starts with
/// two version-1 entries (stored before version 2) and goes on with version-2 entries, one of
/// them with a personal meta key and one with fields erased since; then the chain's signed
/// checkpoint and the signed tree checkpoint of the same events.
const FIXTURE_V2: &str = include_str!("../../../docs/fixtures/log-v2.jsonl");

fn parse_v2() -> (Vec<auditlog_core::Event>, CheckpointWire, String) {
    let mut lines: Vec<&str> = FIXTURE_V2.lines().collect();
    let tree: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    let checkpoint: CheckpointWire = serde_json::from_str(lines.pop().unwrap()).unwrap();
    let note = tree["note"].as_str().unwrap().to_string();
    (events_of(&lines), checkpoint, note)
}

#[test]
fn version_2_fixture_still_verifies() {
    use auditlog_core::merkle::{Frontier, Hash};
    use auditlog_core::note::{Checkpoint, NoteVerifier};
    use auditlog_core::Entry;

    let (events, checkpoint, note) = parse_v2();
    assert_eq!(events.len(), 5);
    assert!(matches!(events[0].entry, Entry::V1) && matches!(events[2].entry, Entry::V2(_)));
    let mut verifier = ChainVerifier::new(events[0].org_id);
    let mut frontier = Frontier::new();
    for event in &events {
        verifier.push(event).unwrap();
        frontier.append(Hash(auditlog_core::chain::leaf_hash(event)));
    }
    let signed = checkpoint.into_signed().unwrap();
    signed.verify(&fixture_key()).unwrap();
    let (seq, hash) = verifier.head();
    ChainVerifier::check_checkpoint(&signed.checkpoint, seq, Some(hash)).unwrap();
    let key = NoteVerifier::new("auditlog", fixture_key()).unwrap();
    let (tree, _) = Checkpoint::open(note.as_bytes(), &[key]).unwrap();
    assert_eq!(tree.size(), 5);
    assert_eq!(
        tree.root(),
        frontier.root(),
        "the signed tree of the fixture's leaves"
    );
}

#[test]
fn version_2_entries_hide_personal_values_and_survive_erasure_only_as_erased() {
    let (events, _, _) = parse_v2();
    // The canonical form of a version-2 entry holds no personal value.
    let mut canonical = Vec::new();
    auditlog_core::entry::encode_canonical_v2(
        &events[2],
        &match &events[2].entry {
            auditlog_core::Entry::V2(salts) => {
                auditlog_core::entry::commitments(&events[2].body, salts).unwrap()
            }
            auditlog_core::Entry::V1 => unreachable!("a version-2 entry"),
        },
        &mut canonical,
    );
    let text = String::from_utf8(canonical).unwrap();
    for value in [
        "alice@example.com",
        "carol@example.com",
        "Carol",
        "2001:db8::5",
        "555",
    ] {
        assert!(!text.contains(value), "{value} in {text}");
    }
    assert!(
        text.contains("\"role\":\"admin\""),
        "other meta stays: {text}"
    );
    // The erased event verifies without the values; putting one back breaks it, and so does
    // a changed salt of another event.
    let mut verifier = ChainVerifier::new(events[0].org_id);
    for event in &events[..4] {
        verifier.push(event).unwrap();
    }
    let mut restored = events[4].clone();
    restored.body.actor_email = Some("dave@example.net".into());
    assert!(verifier.clone().push(&restored).is_err());
    verifier.push(&events[4]).unwrap();
    let mut salted = events[2].clone();
    salted.entry = auditlog_core::Entry::V2(auditlog_core::Salts::Seed([0; 16]));
    let mut again = ChainVerifier::new(events[0].org_id);
    again.push(&events[0]).unwrap();
    again.push(&events[1]).unwrap();
    assert!(again.push(&salted).is_err());
}
