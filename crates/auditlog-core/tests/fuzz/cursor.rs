//! Fuzz target `cursor`: the opaque keyset cursor a client hands back. Each input is decoded
//! as it is; and a valid cursor made from the input's hash is encoded, damaged and decoded.

use auditlog_core::query::{Cursor, Order, Position};
use auditlog_core::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::driver::{self, fnv1a, Target};

/// The plain-text parts of a cursor, and base64url of some (`v1:d:`, `v1:a:`).
const DICTIONARY: &[&[u8]] = &[
    b"djE6ZDo", b"djE6YTo", b"djE6", b"v1:", b"d:", b"a:", b"-", b"_", b"=", b"==", b"/", b"+",
];

const TARGET: Target = Target {
    name: "cursor",
    dictionary: DICTIONARY,
    max_len: 256,
    check,
};

#[test]
fn fuzz() {
    driver::run(&TARGET, Vec::new());
}

fn check(input: &[u8]) -> String {
    // A cursor arrives in a query string, decoded as UTF-8 text.
    let text = String::from_utf8_lossy(input);
    let outcome = check_decode(&text);
    check_damaged(fnv1a(input));
    outcome
}

/// A decoded cursor encodes to a cursor that decodes to it; a refusal says why.
fn check_decode(text: &str) -> String {
    match Cursor::decode(text) {
        Ok(cursor) => {
            let encoded = cursor.encode();
            assert!(
                encoded.len() <= 128,
                "an encoded cursor is too long to decode"
            );
            assert_eq!(
                Cursor::decode(&encoded),
                Ok(cursor),
                "{text:?} decodes to a cursor that does not survive encoding"
            );
            // Canonical cursors (the only ones the service hands out) come back byte for byte.
            if plain(text).is_some_and(|plain| plain == plain_of(&cursor)) {
                assert_eq!(encoded, text);
            }
            match cursor.order {
                Order::NewestFirst => "decoded newest first".to_string(),
                Order::OldestFirst => "decoded oldest first".to_string(),
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with("invalid cursor: ") && message.len() > 16,
                "{message:?}"
            );
            // The reasons are fixed sentences: each is an outcome of its own.
            message
        }
    }
}

/// A random valid cursor decodes to itself; with bytes of its text changed, it is refused or
/// decodes to a cursor that is valid and survives encoding.
fn check_damaged(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let order = if rng.gen() {
        Order::NewestFirst
    } else {
        Order::OldestFirst
    };
    let ms = match rng.gen_range(0..4) {
        0 => 0,
        1 => 253_402_300_799_999,
        _ => rng.gen_range(0..=253_402_300_799_999),
    };
    let seq = match rng.gen_range(0..4) {
        0 => 0,
        1 => u64::MAX,
        _ => rng.gen(),
    };
    let cursor = Cursor {
        order,
        position: Position {
            occurred_at: Timestamp::from_millis(ms).unwrap(),
            seq,
        },
    };
    let encoded = cursor.encode();
    assert_eq!(
        Cursor::decode(&encoded),
        Ok(cursor),
        "{encoded} does not round trip"
    );
    let mut damaged = encoded.into_bytes();
    for _ in 0..rng.gen_range(1..=3) {
        let at = rng.gen_range(0..damaged.len());
        match rng.gen_range(0..3) {
            0 => damaged[at] ^= 1 << rng.gen_range(0..8),
            1 => damaged[at] = rng.gen_range(0x20..0x7f),
            _ => {
                damaged.remove(at);
                if damaged.is_empty() {
                    break;
                }
            }
        }
    }
    let damaged = String::from_utf8_lossy(&damaged);
    if let Ok(decoded) = Cursor::decode(&damaged) {
        assert_eq!(Cursor::decode(&decoded.encode()), Ok(decoded));
    }
}

/// The text a cursor string stands for, if it is base64url of UTF-8.
fn plain(text: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes).ok()
}

/// The text of a cursor as the service writes it.
fn plain_of(cursor: &Cursor) -> String {
    let order = match cursor.order {
        Order::NewestFirst => "d",
        Order::OldestFirst => "a",
    };
    format!(
        "v1:{order}:{}:{}",
        cursor.position.occurred_at.as_millis(),
        cursor.position.seq
    )
}
