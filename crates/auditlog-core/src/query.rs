//! How a reader asks for events: a [`Filter`], an [`Order`], and where to start (an offset or
//! a keyset [`Cursor`]). Also parses the reference API's `q=column:v1,v2` syntax, and turns
//! the form people fill in ([`FilterForm`]: the page's filters, the CLI's flags) into a
//! filter directly, so no value goes through `q` text and back.
//!
//! A filter is stored (an export job's request) as JSON: `docs/export-jobs.md` specifies
//! that encoding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A column a `q` condition may test. Stored by its `q` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// `action_key`.
    ActionKey,
    /// `action_verb`.
    ActionVerb,
    /// `actor_id`.
    ActorId,
    /// `actor_email`.
    ActorEmail,
    /// `actor_type`.
    ActorType,
    /// `actor`: matches `actor_id` or `actor_email` (the page's Users filter).
    Actor,
    /// `target_id`.
    TargetId,
    /// `target_email`.
    TargetEmail,
    /// `target_type`.
    TargetType,
    /// `target`: matches `target_id` or `target_email`.
    Target,
    /// `service_name`.
    ServiceName,
    /// `impersonator`: matches the impersonator's id or email.
    Impersonator,
    /// `outcome`: `success`, `failure` or `denied`.
    Outcome,
}

impl Column {
    /// Every column, in the order the docs list them.
    pub const ALL: [Column; 13] = [
        Column::ActionKey,
        Column::ActionVerb,
        Column::ActorId,
        Column::ActorEmail,
        Column::ActorType,
        Column::Actor,
        Column::TargetId,
        Column::TargetEmail,
        Column::TargetType,
        Column::Target,
        Column::ServiceName,
        Column::Impersonator,
        Column::Outcome,
    ];

    /// The name used in `q`.
    pub fn name(self) -> &'static str {
        match self {
            Column::ActionKey => "action_key",
            Column::ActionVerb => "action_verb",
            Column::ActorId => "actor_id",
            Column::ActorEmail => "actor_email",
            Column::ActorType => "actor_type",
            Column::Actor => "actor",
            Column::TargetId => "target_id",
            Column::TargetEmail => "target_email",
            Column::TargetType => "target_type",
            Column::Target => "target",
            Column::ServiceName => "service_name",
            Column::Impersonator => "impersonator",
            Column::Outcome => "outcome",
        }
    }

    /// Looks a column up by its `q` name.
    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One condition of a filter. Stored as `{"any_of": {"column": …, "values": […]}}` or
/// `{"text": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The column equals any of the values.
    AnyOf {
        /// The column tested.
        column: Column,
        /// The accepted values (at least one).
        values: Vec<String>,
    },
    /// Every word of the text occurs (as a word prefix) in the event's message, names,
    /// emails, ids or `meta` values. Case-insensitive.
    Text(String),
}

/// How the conditions of a filter combine (the reference API's `search_operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Any condition matches.
    #[default]
    Or,
    /// All conditions match.
    And,
}

/// Which events of one organization a query selects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Conditions, combined by `combine`.
    pub conditions: Vec<Condition>,
    /// How conditions combine.
    pub combine: Combine,
    /// Earliest `occurred_at`, inclusive. Always ANDed with the conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// Latest `occurred_at`, inclusive. Always ANDed with the conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
}

/// The filter a person fills in, on the page or as command-line flags: actions, users, words
/// and a date range. Every part given must hold; several actions (or users) are
/// alternatives. Values are taken as they are, commas included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterForm {
    /// Action keys; any of them.
    pub actions: Vec<String>,
    /// Users by id or email; any of them.
    pub users: Vec<String>,
    /// Words that must all occur.
    pub text: Option<String>,
    /// Earliest `occurred_at`, inclusive.
    pub from: Option<Timestamp>,
    /// Latest `occurred_at`, inclusive.
    pub to: Option<Timestamp>,
}

impl FilterForm {
    /// The filter the form describes.
    pub fn filter(&self) -> Filter {
        let mut conditions = Vec::new();
        for (column, values) in [
            (Column::ActionKey, &self.actions),
            (Column::Actor, &self.users),
        ] {
            if !values.is_empty() {
                conditions.push(Condition::AnyOf {
                    column,
                    values: values.clone(),
                });
            }
        }
        if let Some(text) = self.text.as_deref().filter(|t| !t.trim().is_empty()) {
            conditions.push(Condition::Text(text.to_string()));
        }
        Filter {
            conditions,
            combine: Combine::And,
            from: self.from,
            to: self.to,
        }
    }
}

impl Filter {
    /// Checks the limits `q` parsing enforces, for a filter that did not come from `q` (a
    /// form, or a stored export request): at most [`MAX_VALUES`] conditions, each with 1 to
    /// [`MAX_VALUES`] values (or words) of at most [`MAX_VALUE_LEN`] characters.
    pub fn check_limits(&self) -> Result<(), ParseError> {
        if self.conditions.len() > MAX_VALUES {
            return Err(ParseError::TooMany(MAX_VALUES));
        }
        for condition in &self.conditions {
            let (name, values): (&str, Vec<&str>) = match condition {
                Condition::AnyOf { column, values } => {
                    (column.name(), values.iter().map(String::as_str).collect())
                }
                Condition::Text(text) => ("text", vec![text.as_str()]),
            };
            if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
                return Err(ParseError::NoValues(name.to_string()));
            }
            if values.len() > MAX_VALUES {
                return Err(ParseError::TooMany(MAX_VALUES));
            }
            if values.iter().any(|v| v.chars().count() > MAX_VALUE_LEN) {
                return Err(ParseError::ValueTooLong(MAX_VALUE_LEN));
            }
        }
        Ok(())
    }

    /// True when the filter selects every event of the time range (no conditions).
    pub fn has_conditions(&self) -> bool {
        !self.conditions.is_empty()
    }

    /// True when a time range that is certainly empty was asked for.
    pub fn is_empty_range(&self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if from > to)
    }
}

/// Sort order by `occurred_at`, ties broken by `seq` (which orders like `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first (`-occurred_at`), the default.
    #[default]
    NewestFirst,
    /// Oldest first (`occurred_at`).
    OldestFirst,
}

/// A position in an organization's `(occurred_at, seq)` order: a page continues strictly
/// after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// `occurred_at` of the last event returned.
    pub occurred_at: Timestamp,
    /// `seq` of the last event returned.
    pub seq: u64,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Skip this many events (costs O(offset); kept for the reference API).
    Offset(u64),
    /// Continue after a position (keyset; costs the same at any depth).
    After(Position),
}

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Which events.
    pub filter: Filter,
    /// In which order.
    pub order: Order,
    /// How many at most (1..=1000).
    pub limit: u32,
    /// From where.
    pub start: Start,
}

/// Largest page a query may ask for.
pub const MAX_LIMIT: u32 = 1000;

/// An opaque keyset cursor: the order it belongs to and the position to continue after.
///
/// Encoded as base64url (no padding) of `v1:<order>:<occurred_at ms>:<seq>`; a cursor is only
/// valid with the sort order it was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The order the cursor walks.
    pub order: Order,
    /// Where the previous page ended.
    pub position: Position,
}

/// Why a cursor string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: {0}")]
pub struct CursorError(&'static str);

impl Cursor {
    /// The opaque string form.
    pub fn encode(&self) -> String {
        let order = match self.order {
            Order::NewestFirst => "d",
            Order::OldestFirst => "a",
        };
        let text = format!(
            "v1:{order}:{}:{}",
            self.position.occurred_at.as_millis(),
            self.position.seq
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Parses the opaque string form.
    pub fn decode(text: &str) -> Result<Cursor, CursorError> {
        if text.len() > 128 {
            return Err(CursorError("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError("not base64url"))?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError("not a cursor"))?;
        let mut parts = text.split(':');
        let (Some("v1"), Some(order), Some(ms), Some(seq), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CursorError("not a cursor of this version"));
        };
        let order = match order {
            "d" => Order::NewestFirst,
            "a" => Order::OldestFirst,
            _ => return Err(CursorError("unknown order")),
        };
        let occurred_at = ms
            .parse::<i64>()
            .ok()
            .and_then(Timestamp::from_millis)
            .ok_or(CursorError("bad time"))?;
        let seq = seq.parse::<u64>().map_err(|_| CursorError("bad seq"))?;
        Ok(Cursor {
            order,
            position: Position { occurred_at, seq },
        })
    }
}

/// Why a `q` or `sort` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No `:` between column and values.
    #[error("{0:?} is not of the form column:value1,value2")]
    NoColon(String),
    /// A column we do not filter on.
    #[error("unknown column {0:?}; filterable columns are {1}")]
    UnknownColumn(String, String),
    /// No non-empty value after the colon.
    #[error("no value after {0:?}")]
    NoValues(String),
    /// A value longer than any stored value could be.
    #[error("a value is longer than {0} characters")]
    ValueTooLong(usize),
    /// Too many values or conditions.
    #[error("too many values: at most {0}")]
    TooMany(usize),
    /// A sort key we do not support.
    #[error("cannot sort by {0:?}; use occurred_at or -occurred_at")]
    BadSort(String),
}

/// Most values one condition, or conditions one filter, may have.
pub const MAX_VALUES: usize = 100;
/// Longest value in a condition (the longest stored field is an email of 320).
pub const MAX_VALUE_LEN: usize = 512;

/// Parses one `q` entry: `column:v1,v2` or `text:words`.
pub fn parse_q(entry: &str) -> Result<Condition, ParseError> {
    let (column, rest) = entry
        .split_once(':')
        .ok_or_else(|| ParseError::NoColon(entry.chars().take(64).collect()))?;
    let column = column.trim();
    if column == "text" || column == "search" {
        let text = rest.trim();
        if text.is_empty() {
            return Err(ParseError::NoValues(column.to_string()));
        }
        if text.chars().count() > MAX_VALUE_LEN {
            return Err(ParseError::ValueTooLong(MAX_VALUE_LEN));
        }
        return Ok(Condition::Text(text.to_string()));
    }
    let column = Column::from_name(column).ok_or_else(|| {
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        ParseError::UnknownColumn(
            column.chars().take(64).collect(),
            format!("{} and text", names.join(", ")),
        )
    })?;
    let values: Vec<String> = rest
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    if values.is_empty() {
        return Err(ParseError::NoValues(column.name().to_string()));
    }
    if values.len() > MAX_VALUES {
        return Err(ParseError::TooMany(MAX_VALUES));
    }
    if values.iter().any(|v| v.chars().count() > MAX_VALUE_LEN) {
        return Err(ParseError::ValueTooLong(MAX_VALUE_LEN));
    }
    Ok(Condition::AnyOf { column, values })
}

/// Parses the reference API's `sort` (`col,-col`); only `occurred_at` (and `created_at`,
/// which orders the same within an organization) is sortable. Empty means newest first.
pub fn parse_sort(text: &str) -> Result<Order, ParseError> {
    let mut order = Order::NewestFirst;
    for key in text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        order = match key {
            "-occurred_at" | "-created_at" => Order::NewestFirst,
            "occurred_at" | "+occurred_at" | "created_at" | "+created_at" => Order::OldestFirst,
            other => return Err(ParseError::BadSort(other.chars().take(64).collect())),
        };
    }
    Ok(order)
}

impl Filter {
    /// Whether a stored event matches the filter: the definition every backend's query must
    /// agree with (backends use indexes; this evaluates one event in memory).
    pub fn matches(&self, event: &crate::Event) -> bool {
        let at = event.body.occurred_at;
        if self.from.is_some_and(|from| at < from) || self.to.is_some_and(|to| at > to) {
            return false;
        }
        if self.conditions.is_empty() {
            return true;
        }
        let mut results = self.conditions.iter().map(|c| c.matches(&event.body));
        match self.combine {
            Combine::And => results.all(|hit| hit),
            Combine::Or => results.any(|hit| hit),
        }
    }
}

impl Condition {
    /// Whether an event body satisfies this one condition.
    pub fn matches(&self, body: &crate::EventBody) -> bool {
        match self {
            Condition::Text(text) => {
                let wanted = crate::text::query_words(text);
                crate::text::matches(&crate::text::event_words(body), &wanted)
            }
            Condition::AnyOf { column, values } => {
                let any = |field: Option<&str>| {
                    field.is_some_and(|field| values.iter().any(|v| v == field))
                };
                match column {
                    Column::ActionKey => any(Some(&body.action_key)),
                    Column::ActionVerb => any(body.action_verb.as_deref()),
                    Column::ActorId => any(body.actor_id.as_deref()),
                    Column::ActorEmail => any(body.actor_email.as_deref()),
                    Column::ActorType => any(Some(body.actor_type.as_str())),
                    Column::Actor => {
                        any(body.actor_id.as_deref()) || any(body.actor_email.as_deref())
                    }
                    Column::TargetId => any(body.target_id.as_deref()),
                    Column::TargetEmail => any(body.target_email.as_deref()),
                    Column::TargetType => any(body.target_type.as_deref()),
                    Column::Target => {
                        any(body.target_id.as_deref()) || any(body.target_email.as_deref())
                    }
                    Column::ServiceName => any(body.service_name.as_deref()),
                    Column::Impersonator => {
                        body.extensions.impersonator.as_ref().is_some_and(|real| {
                            any(real.id.as_deref()) || any(real.email.as_deref())
                        })
                    }
                    Column::Outcome => any(Some(body.extensions.outcome.as_str())),
                }
            }
        }
    }
}

impl Position {
    /// The position of a stored event.
    pub fn of(event: &crate::Event) -> Position {
        Position {
            occurred_at: event.body.occurred_at,
            seq: event.seq,
        }
    }

    /// True when `other` comes strictly after `self` in `order`.
    pub fn is_before(&self, other: &Position, order: Order) -> bool {
        let (a, b) = ((self.occurred_at, self.seq), (other.occurred_at, other.seq));
        match order {
            Order::OldestFirst => a < b,
            Order::NewestFirst => a > b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_value_with_a_comma_is_one_value() {
        let form = FilterForm {
            actions: vec!["channel_created".into()],
            users: vec!["Doe, Jane".into()],
            text: Some("mirror".into()),
            ..FilterForm::default()
        };
        let filter = form.filter();
        assert_eq!(filter.combine, Combine::And);
        assert_eq!(
            filter.conditions[1],
            Condition::AnyOf {
                column: Column::Actor,
                values: vec!["Doe, Jane".into()],
            }
        );
        filter.check_limits().unwrap();
        // An empty form selects everything.
        assert!(!FilterForm::default().filter().has_conditions());
    }

    #[test]
    fn the_stored_encoding_of_a_filter() {
        let filter = Filter {
            conditions: vec![
                Condition::AnyOf {
                    column: Column::ActionKey,
                    values: vec!["channel_created".into(), "a,b".into()],
                },
                Condition::Text("conda mirror".into()),
            ],
            combine: Combine::And,
            from: Some(Timestamp::parse("2026-01-01T00:00:00Z").unwrap()),
            to: None,
        };
        let json = serde_json::to_string(&filter).unwrap();
        expect_test::expect![[r#"{"conditions":[{"any_of":{"column":"action_key","values":["channel_created","a,b"]}},{"text":"conda mirror"}],"combine":"and","from":"2026-01-01T00:00:00.000Z"}"#]]
            .assert_eq(&json);
        assert_eq!(serde_json::from_str::<Filter>(&json).unwrap(), filter);
        assert_eq!(
            serde_json::from_str::<Filter>("{}").unwrap(),
            Filter::default()
        );
    }

    #[test]
    fn limits_hold_for_filters_not_parsed_from_q() {
        let many = |n: usize| Filter {
            conditions: vec![Condition::AnyOf {
                column: Column::Actor,
                values: vec!["x".into(); n],
            }],
            ..Filter::default()
        };
        many(MAX_VALUES).check_limits().unwrap();
        assert_eq!(
            many(MAX_VALUES + 1).check_limits(),
            Err(ParseError::TooMany(MAX_VALUES))
        );
        assert!(many(0).check_limits().is_err());
        let long = Filter {
            conditions: vec![Condition::Text("x".repeat(MAX_VALUE_LEN + 1))],
            ..Filter::default()
        };
        assert_eq!(
            long.check_limits(),
            Err(ParseError::ValueTooLong(MAX_VALUE_LEN))
        );
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            order: Order::OldestFirst,
            position: Position {
                occurred_at: Timestamp::from_millis(1_700_000_000_123).unwrap(),
                seq: 42,
            },
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for bad in [
            "",
            "!!!",
            "djE6eDox",
            &URL_SAFE_NO_PAD.encode("v1:d:-5:1"),
            &"a".repeat(200),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_q_entries() {
        assert_eq!(
            parse_q("action_key:channel_created, channel_deleted"),
            Ok(Condition::AnyOf {
                column: Column::ActionKey,
                values: vec!["channel_created".into(), "channel_deleted".into()]
            })
        );
        assert_eq!(
            parse_q("text:ml prod"),
            Ok(Condition::Text("ml prod".into()))
        );
        assert!(
            matches!(parse_q("colour:red"), Err(ParseError::UnknownColumn(c, _)) if c == "colour")
        );
        assert_eq!(
            parse_q("action_key"),
            Err(ParseError::NoColon("action_key".into()))
        );
        assert_eq!(
            parse_q("actor_email: , "),
            Err(ParseError::NoValues("actor_email".into()))
        );
        let many = format!("actor_id:{}", vec!["x"; 101].join(","));
        assert_eq!(parse_q(&many), Err(ParseError::TooMany(100)));
    }

    #[test]
    fn parses_sort() {
        assert_eq!(parse_sort(""), Ok(Order::NewestFirst));
        assert_eq!(parse_sort("occurred_at"), Ok(Order::OldestFirst));
        assert_eq!(parse_sort("-occurred_at"), Ok(Order::NewestFirst));
        assert!(parse_sort("actor_email").is_err());
    }
}
