//! The committed chain fixture (`docs/fixtures/chain-v1.jsonl`, written by version 1 of the
//! canonical encoding) must keep verifying: a change to the encoding, the hashes or the
//! checkpoint signature format breaks this test before it breaks anyone's stored history.

use auditlog_core::chain::{ChainVerifier, CheckpointWire};
use auditlog_core::wire::EventRecord;

const FIXTURE: &str = include_str!("../../../docs/fixtures/chain-v1.jsonl");

/// The fixture was signed with the Ed25519 key whose seed is 32 bytes of 7.
fn fixture_key() -> ed25519_dalek::VerifyingKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key()
}

fn parse() -> (Vec<auditlog_core::Event>, CheckpointWire) {
    let mut lines: Vec<&str> = FIXTURE.lines().collect();
    let checkpoint: CheckpointWire = serde_json::from_str(lines.pop().unwrap()).unwrap();
    let events = lines
        .iter()
        .map(|line| {
            serde_json::from_str::<EventRecord>(line)
                .unwrap()
                .to_event()
                .unwrap()
        })
        .collect();
    (events, checkpoint)
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
