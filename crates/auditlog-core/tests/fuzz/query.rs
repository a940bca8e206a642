//! Fuzz target `query`: the text a reader sends to select events — a `q` entry, a `sort`, and
//! the dates of `from` and `to` (strict RFC 3339 and the lenient form the page and the CLI
//! take). Each input is given to every one of these parsers.

use auditlog_core::query::{parse_q, parse_sort, Column, Condition, Filter, Order, ParseError};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::driver::{self, fnv1a, Target};

/// Column names, `q` and `sort` syntax, and the parts of an RFC 3339 timestamp.
const DICTIONARY: &[&[u8]] = &[
    b"action_key:",
    b"action_verb:",
    b"actor_id:",
    b"actor_email:",
    b"actor_type:",
    b"actor:",
    b"target_id:",
    b"target_email:",
    b"target_type:",
    b"target:",
    b"service_name:",
    b"text:",
    b"search:",
    b"occurred_at",
    b"-occurred_at",
    b"+occurred_at",
    b"created_at",
    b"-created_at",
    b",,",
    b"2026-01-31",
    b"1970-01-01",
    b"1969-12-31",
    b"9999-12-31",
    b"T",
    b"t",
    b"Z",
    b"z",
    b"+02:00",
    b"-00:00",
    b"+23:59",
    b"-23:59",
    b"23:59:60",
    b"00:00:00",
    b".999999999",
    b".0001",
    b"9999-12-31T23:59:59.999-01:00",
];

const TARGET: Target = Target {
    name: "query",
    dictionary: DICTIONARY,
    // Beyond 100 values of 512 characters, so that both limits are crossed.
    max_len: 64 * 1024,
    check,
};

#[test]
fn fuzz() {
    driver::run(&TARGET, Vec::new());
}

/// Query strings arrive decoded as UTF-8 text, so invalid bytes become U+FFFD first.
fn check(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let q = check_q(&text);
    let sort = check_sort(&text);
    let time = check_timestamp(&text);
    check_timestamp(&boundary_timestamp(fnv1a(input)));
    format!("{q} {sort} {time}")
}

/// A timestamp built from the values at the edges of each of its parts (the years 1969, 1970
/// and 9999, the last day of a month, 23:59:60, nine fraction digits, offsets of a minute),
/// most of them valid: mutating bytes seldom lands on such a combination.
fn boundary_timestamp(seed: u64) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut pick = |options: &[&'static str]| options[rng.gen_range(0..options.len())];
    format!(
        "{}-{}-{}{}{}:{}:{}{}{}",
        pick(&["1969", "1970", "2026", "9999", "0000", "2024"]),
        pick(&["01", "02", "12", "00", "13"]),
        pick(&["01", "28", "29", "31", "00", "32"]),
        pick(&["T", "t", " "]),
        pick(&["00", "23", "24"]),
        pick(&["00", "59", "60"]),
        pick(&["00", "59", "60"]),
        pick(&[
            "",
            ".0",
            ".999",
            ".9999",
            ".0001",
            ".999999999",
            ".1234567891"
        ]),
        pick(&["Z", "z", "+00:00", "-00:00", "+00:01", "-00:01", "+23:59", "-23:59", ""]),
    )
}

/// A parsed `q` entry is within the limits, written back as `q` it parses to itself, and its
/// stored JSON form reads back equal; an error has a message and echoes little of the input.
fn check_q(text: &str) -> String {
    match parse_q(text) {
        Ok(condition) => {
            let written = match &condition {
                Condition::AnyOf { column, values } => {
                    assert!(
                        !values.is_empty() && values.len() <= 100,
                        "{} values",
                        values.len()
                    );
                    for value in values {
                        assert!(
                            !value.is_empty()
                                && value.trim() == value
                                && !value.contains(',')
                                && value.chars().count() <= 512,
                            "a parsed value breaks the rules: {value:?}"
                        );
                    }
                    assert_eq!(Column::from_name(column.name()), Some(*column));
                    format!("{}:{}", column.name(), values.join(","))
                }
                Condition::Text(words) => {
                    assert!(
                        !words.is_empty() && words.trim() == words && words.chars().count() <= 512,
                        "parsed words break the rules: {words:?}"
                    );
                    format!("text:{words}")
                }
            };
            assert_eq!(
                parse_q(&written).as_ref(),
                Ok(&condition),
                "a condition written back as q parses differently: {written:?}"
            );
            let filter = Filter {
                conditions: vec![condition],
                ..Filter::default()
            };
            assert_eq!(
                filter.check_limits(),
                Ok(()),
                "q accepted what the filter limits refuse"
            );
            let stored = serde_json::to_string(&filter).expect("a filter serializes");
            assert_eq!(
                serde_json::from_str::<Filter>(&stored).ok().as_ref(),
                Some(&filter),
                "a filter changed through its stored form: {stored}"
            );
            match &filter.conditions[0] {
                Condition::AnyOf { column, values } => {
                    let n = match values.len() {
                        1 => "one",
                        2..=9 => "few",
                        _ => "many",
                    };
                    format!("q {} {n}", column.name())
                }
                Condition::Text(_) => "q text".to_string(),
            }
        }
        Err(error) => {
            assert_message(&error.to_string());
            match &error {
                ParseError::NoColon(echo) | ParseError::UnknownColumn(echo, _) => {
                    assert!(echo.chars().count() <= 64, "an error echoes {echo:?}");
                    if matches!(error, ParseError::NoColon(_)) {
                        "q no_colon".to_string()
                    } else {
                        "q unknown_column".to_string()
                    }
                }
                ParseError::NoValues(column) => format!("q no_values {column}"),
                ParseError::ValueTooLong(_) => "q too_long".to_string(),
                ParseError::TooMany(_) => "q too_many".to_string(),
                ParseError::BadSort(_) => panic!("parse_q reported a sort error: {error}"),
            }
        }
    }
}

/// A parsed order, written back, parses to itself and is the order of the last key given.
fn check_sort(text: &str) -> &'static str {
    let last_key = text.split(',').map(str::trim).rfind(|key| !key.is_empty());
    match parse_sort(text) {
        Ok(order) => {
            let written = match order {
                Order::NewestFirst => "-occurred_at",
                Order::OldestFirst => "occurred_at",
            };
            assert_eq!(parse_sort(written), Ok(order));
            let expected = match last_key {
                None => Order::NewestFirst,
                Some(key) if key.starts_with('-') => Order::NewestFirst,
                Some(_) => Order::OldestFirst,
            };
            assert_eq!(order, expected, "the last key of {text:?} does not decide");
            "sort ok"
        }
        Err(error) => {
            assert_message(&error.to_string());
            let ParseError::BadSort(echo) = &error else {
                panic!("parse_sort reported a q error: {error}")
            };
            assert!(echo.chars().count() <= 64, "an error echoes {echo:?}");
            "sort bad"
        }
    }
}

/// `Timestamp::parse` accepts exactly the RFC 3339 instants of 1970 to 9999, at the
/// millisecond at or before the instant (never the one after); what it returns prints in the
/// fixed form, which parses back to the same instant. The lenient parser accepts the same and
/// bare dates, which mean the first millisecond of their day.
fn check_timestamp(text: &str) -> String {
    let parsed = Timestamp::parse(text);
    let expected = OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|at| i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok())
        .and_then(Timestamp::from_millis);
    assert_eq!(
        parsed.as_ref().ok(),
        expected.as_ref(),
        "{text:?} is not parsed to the millisecond at or before it"
    );
    // Which rule of the parser refused the text, without the values it quotes.
    let mut refusal = String::new();
    if let Err(error) = &parsed {
        let message = error.to_string();
        assert_message(&message);
        refusal = message
            .rsplit(": ")
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
            .take(48)
            .collect();
    }
    if let Ok(at) = parsed {
        let printed = at.to_string();
        assert!(
            printed.len() == 24 && printed.ends_with('Z'),
            "{printed:?} is not in the fixed form"
        );
        assert_eq!(
            Timestamp::parse(&printed),
            Ok(at),
            "{printed:?} does not parse back"
        );
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(at));
        let day = Timestamp::start_of_day(at.day());
        assert!(day <= at && at.as_millis() - day.as_millis() < MS_PER_DAY);
    }
    match Timestamp::parse_lenient(text) {
        Ok(at) => {
            if let Ok(strict) = parsed {
                assert_eq!(at, strict, "the lenient parser reads {text:?} differently");
            } else {
                assert_eq!(
                    at.as_millis() % MS_PER_DAY,
                    0,
                    "{text:?} is taken as a bare date but is not a day's start"
                );
                assert_eq!(
                    at.to_string().get(..10),
                    Some(text),
                    "a bare date is not its own day"
                );
            }
            if parsed.is_ok() {
                "time ok".to_string()
            } else {
                "time date".to_string()
            }
        }
        Err(error) => {
            assert!(parsed.is_err(), "the lenient parser refuses {text:?}");
            assert_message(&error.to_string());
            format!("time refused {refusal}")
        }
    }
}

fn assert_message(message: &str) {
    assert!(
        message.len() > 10,
        "an error without a useful message: {message:?}"
    );
}
