//! The read side: a filter becomes one SQL `WHERE` clause (always starting with
//! `org_id = $1`), and each read is one statement over it, or two pipelined for facets.
//!
//! - **Pages** are ordered by `(occurred_at, seq)`; a keyset position becomes a row
//!   comparison the primary key `(org_id, occurred_at, seq)` seeks to, and `Offset` becomes
//!   `OFFSET`. Column conditions are `= ANY($n)` on the columns the `events_by_*` indexes
//!   lead with, so the planner can pick an index per filter.
//! - **Free text** matches `words`, a `tsvector` of the event's words
//!   (`auditlog_core::text::event_words`), with a prefix `tsquery` of the search's words:
//!   every search word must be a prefix of some event word, as `text::matches` says. Each
//!   lexeme is `'<org_key>.<word>'`, so the GIN index's entries are per organization and a
//!   search for a common word reads only that organization's postings. Words are passed
//!   verbatim (`::text::tsquery`), never through a text search configuration, whose
//!   splitting and case folding depend on the server's locale.
//! - **Counts and daily counts** of a filter that is only a time range, optionally with one
//!   `action_key` condition, are exact and cheap: whole UTC days come from the
//!   `event_day_actions` rollup and only the partial days at the range's edges are counted
//!   in `events`. Any other filter is counted in `events`, stopping past the caller's cap.
//! - **Facets** of a time range come from both rollups the same way; of any other filter,
//!   from grouping the matching events.

use std::fmt::Write;

use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Query, Start, MAX_LIMIT};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::{entry, text, ActorType, Event, EventBody, Extensions, Outcome, Timestamp};
use auditlog_store::{ActorCount, Count, Facets, StoreError};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Transaction};
use uuid::Uuid;

use crate::append::{day_number, push_lexeme};
use crate::{backend, from_sql_time, hash32, sql_time};

/// The columns of a full event, in the order [`event_from_row`] reads them.
pub(crate) const EVENT_COLUMNS: &str =
    "org_id, seq, id, occurred_at, created_at, action_key, action_verb,
    actor_id, actor_email, actor_name, actor_type, target_id, target_email, target_name,
    target_type, service_name, ip_address, user_agent, request_id, meta, hash, salts,
    extensions";

pub(crate) fn event_from_row(row: &Row) -> Result<Event, StoreError> {
    let id: Uuid = row.get(2);
    let corrupt = |what: &str| StoreError::Corrupt(format!("event {id}: {what}"));
    let actor_type: &str = row.get(10);
    let meta = match row.get::<_, Option<&str>>(19) {
        None => serde_json::Map::new(),
        Some(text) => {
            serde_json::from_str(text).map_err(|_| corrupt("meta is not a JSON object"))?
        }
    };
    let (entry, personal_meta) =
        entry::decode_salts(row.get::<_, Option<&[u8]>>(21)).map_err(|e| corrupt(&e))?;
    let extensions = match row.get::<_, Option<&str>>(22) {
        None => Extensions::default(),
        Some(text) => {
            serde_json::from_str(text).map_err(|e| corrupt(&format!("extensions: {e}")))?
        }
    };
    Ok(Event {
        entry,
        id,
        org_id: row.get(0),
        seq: row.get::<_, i64>(1) as u64,
        created_at: from_sql_time(row.get(4))?,
        hash: hash32(row.get(20), "an event's hash")?,
        body: EventBody {
            action_key: row.get(5),
            action_verb: row.get(6),
            actor_id: row.get(7),
            actor_email: row.get(8),
            actor_name: row.get(9),
            actor_type: ActorType::parse(actor_type)
                .ok_or_else(|| corrupt("unknown actor type"))?,
            target_id: row.get(11),
            target_email: row.get(12),
            target_name: row.get(13),
            target_type: row.get(14),
            service_name: row.get(15),
            ip_address: row.get(16),
            user_agent: row.get(17),
            request_id: row.get(18),
            meta,
            occurred_at: from_sql_time(row.get(3))?,
            personal_meta,
            extensions,
        },
    })
}

fn events_from_rows(rows: &[Row]) -> Result<Vec<Event>, StoreError> {
    rows.iter().map(event_from_row).collect()
}

/// The parameters of a statement being written, numbered as they are bound.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    /// Binds a value; returns its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    fn as_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// What a filter's conditions amount to.
enum Shape<'a> {
    /// Nothing can match (an empty time range).
    Nothing,
    /// Every event of the time range matches.
    All,
    /// These conditions, combined so.
    Conditions(Vec<&'a Condition>, Combine),
}

fn shape(filter: &Filter) -> Shape<'_> {
    if filter.is_empty_range() {
        return Shape::Nothing;
    }
    let mut kept = Vec::with_capacity(filter.conditions.len());
    for condition in &filter.conditions {
        if let Condition::Text(search) = condition {
            // A search without words matches every event (`text::matches` of no words).
            if text::query_words(search).is_empty() {
                match filter.combine {
                    Combine::Or => return Shape::All,
                    Combine::And => continue,
                }
            }
        }
        kept.push(condition);
    }
    if kept.is_empty() {
        Shape::All
    } else {
        Shape::Conditions(kept, filter.combine)
    }
}

/// The `action_key` values a rollup can answer for: `Some(None)` for every action,
/// `Some(Some(values))` for one `action_key` condition, `None` when rollups cannot answer.
fn rollup_actions<'a>(shape: &Shape<'a>) -> Option<Option<&'a [String]>> {
    match shape {
        Shape::All => Some(None),
        Shape::Conditions(conditions, _) => match conditions.as_slice() {
            [Condition::AnyOf {
                column: Column::ActionKey,
                values,
            }] => Some(Some(values.as_slice())),
            _ => None,
        },
        Shape::Nothing => None,
    }
}

/// `org_id = $n` and the filter's time range and conditions; `None` when nothing matches.
/// `tag` is the organization's `org_key` (`None` when it does not exist).
fn filter_sql(
    params: &mut Params,
    org_id: Uuid,
    filter: &Filter,
    tag: Option<i64>,
) -> Option<String> {
    let conditions = match shape(filter) {
        Shape::Nothing => return None,
        Shape::All => None,
        Shape::Conditions(conditions, combine) => {
            Some(conditions_sql(params, &conditions, combine, tag))
        }
    };
    let mut sql = format!("org_id = {}", params.bind(org_id));
    if let Some(from) = filter.from {
        let _ = write!(sql, " AND occurred_at >= {}", params.bind(sql_time(from)));
    }
    if let Some(to) = filter.to {
        let _ = write!(sql, " AND occurred_at <= {}", params.bind(sql_time(to)));
    }
    if let Some(conditions) = conditions {
        let _ = write!(sql, " AND {conditions}");
    }
    Some(sql)
}

fn conditions_sql(
    params: &mut Params,
    conditions: &[&Condition],
    combine: Combine,
    tag: Option<i64>,
) -> String {
    let parts: Vec<String> = conditions
        .iter()
        .map(|condition| condition_sql(params, condition, tag))
        .collect();
    let joiner = match combine {
        Combine::And => " AND ",
        Combine::Or => " OR ",
    };
    format!("({})", parts.join(joiner))
}

fn condition_sql(params: &mut Params, condition: &Condition, tag: Option<i64>) -> String {
    match condition {
        Condition::AnyOf { column, values } => {
            let list = params.bind(values.clone());
            let any = |name: &str| format!("{name} = ANY({list}::text[])");
            match column {
                Column::ActionKey => any("action_key"),
                Column::ActionVerb => any("action_verb"),
                Column::ActorId => any("actor_id"),
                Column::ActorEmail => any("actor_email"),
                Column::ActorType => any("actor_type"),
                Column::Actor => format!("({} OR {})", any("actor_id"), any("actor_email")),
                Column::TargetId => any("target_id"),
                Column::TargetEmail => any("target_email"),
                Column::TargetType => any("target_type"),
                Column::Target => format!("({} OR {})", any("target_id"), any("target_email")),
                Column::ServiceName => any("service_name"),
                Column::Impersonator => format!(
                    "({} OR {})",
                    any("impersonator_id"),
                    any("impersonator_email")
                ),
                // `success` is stored as no outcome at all.
                Column::Outcome => match values.iter().any(|v| v == Outcome::Success.as_str()) {
                    true => format!("(outcome IS NULL OR {})", any("outcome")),
                    false => any("outcome"),
                },
            }
        }
        Condition::Text(search) => {
            let words = text::query_words(search);
            match tag {
                _ if words.is_empty() => "TRUE".to_string(),
                // The organization does not exist, so it has no events to find.
                None => "FALSE".to_string(),
                Some(tag) => format!(
                    "words @@ {}::text::tsquery",
                    params.bind(tsquery_literal(tag, &words))
                ),
            }
        }
    }
}

/// A `tsquery` that holds when every word is a prefix of one of the event's lexemes.
fn tsquery_literal(tag: i64, words: &[String]) -> String {
    let mut out = String::new();
    for word in words {
        if !out.is_empty() {
            out.push_str(" & ");
        }
        push_lexeme(&mut out, tag, word);
        out.push_str(":*");
    }
    out
}

/// A position's `seq` as a bigint: no event's `seq` reaches `i64::MAX`, so clamping a larger
/// one selects the same events.
fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// One page of events.
pub async fn query(
    client: &Client,
    org_id: Uuid,
    tag: Option<i64>,
    query: &Query,
) -> Result<Vec<Event>, StoreError> {
    let mut params = Params::default();
    let Some(filter) = filter_sql(&mut params, org_id, &query.filter, tag) else {
        return Ok(Vec::new());
    };
    let (cmp, dir) = match query.order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE {filter}");
    let offset = match query.start {
        Start::After(position) => {
            let at = params.bind(sql_time(position.occurred_at));
            let seq = params.bind(seq_param(position.seq));
            let _ = write!(
                sql,
                " AND (occurred_at, seq) {cmp} ({at}::timestamptz, {seq}::bigint)"
            );
            0
        }
        Start::Offset(n) => seq_param(n),
    };
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let _ = write!(
        sql,
        " ORDER BY occurred_at {dir}, seq {dir} LIMIT {limit} OFFSET {offset}"
    );
    let rows = client
        .query(&sql, &params.as_refs())
        .await
        .map_err(backend)?;
    events_from_rows(&rows)
}

/// One event by id, only if it belongs to the organization.
pub async fn get_event(
    client: &Client,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<Event>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE org_id = $1 AND id = $2"),
            &[&org_id, &id],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(event_from_row).transpose()
}

/// Events with `seq > after_seq` in chain order.
pub async fn events_by_seq(
    client: &Client,
    org_id: Uuid,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3"
            ),
            &[&org_id, &seq_param(after_seq), &i64::from(limit)],
        )
        .await
        .map_err(backend)?;
    events_from_rows(&rows)
}

/// Events with `after_seq < seq <= up_to_seq` in chain order, at most `limit`, read inside a
/// transaction (the Merkle tree's catch-up and backfill, `crate::tree`).
pub(crate) async fn events_in_seq_range(
    tx: &Transaction<'_>,
    org_id: Uuid,
    after_seq: u64,
    up_to_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = $1 AND seq > $2 AND seq <= $3
                 ORDER BY seq LIMIT $4"
            ),
            &[
                &org_id,
                &seq_param(after_seq),
                &seq_param(up_to_seq),
                &i64::from(limit),
            ],
        )
        .await
        .map_err(backend)?;
    events_from_rows(&rows)
}

/// How many events match: exact from the rollups when they can answer, otherwise counted and
/// capped.
pub async fn count(
    client: &Client,
    org_id: Uuid,
    tag: Option<i64>,
    filter: &Filter,
    cap: u64,
) -> Result<Count, StoreError> {
    let shape = shape(filter);
    if let Some(actions) = rollup_actions(&shape) {
        let mut params = Params::default();
        let parts = RollupParts::new(&mut params, org_id, filter, actions);
        let sql = format!(
            "SELECT (SELECT COALESCE(sum(n), 0) FROM event_day_actions
                     WHERE org_id = {org}{days}{actions})::bigint
                  + (SELECT count(*) FROM events WHERE org_id = {org} AND {edges}{actions})",
            org = parts.org,
            days = parts.whole_days,
            edges = parts.edges,
            actions = parts.actions,
        );
        let n: i64 = client
            .query_one(&sql, &params.as_refs())
            .await
            .map_err(backend)?
            .get(0);
        return Ok(Count {
            n: n.max(0) as u64,
            exact: true,
        });
    }
    let mut params = Params::default();
    let Some(filter) = filter_sql(&mut params, org_id, filter, tag) else {
        return Ok(Count { n: 0, exact: true });
    };
    // One more than the cap tells "exactly cap" from "more than cap".
    let limit = match i64::try_from(cap) {
        Ok(cap) if cap < i64::MAX => format!(" LIMIT {}", cap + 1),
        _ => String::new(),
    };
    let sql = format!("SELECT count(*) FROM (SELECT 1 FROM events WHERE {filter}{limit}) AS m");
    let n: i64 = client
        .query_one(&sql, &params.as_refs())
        .await
        .map_err(backend)?
        .get(0);
    let n = n.max(0) as u64;
    Ok(if n > cap {
        Count {
            n: cap,
            exact: false,
        }
    } else {
        Count { n, exact: true }
    })
}

/// Events per UTC day (days since the epoch), ascending.
pub async fn daily_counts(
    client: &Client,
    org_id: Uuid,
    tag: Option<i64>,
    filter: &Filter,
) -> Result<Vec<(i64, u64)>, StoreError> {
    const DAY_OF: &str = "((occurred_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')";
    let shape = shape(filter);
    let mut params = Params::default();
    let sql = if let Some(actions) = rollup_actions(&shape) {
        let parts = RollupParts::new(&mut params, org_id, filter, actions);
        format!(
            "SELECT day, sum(n)::bigint FROM (
                 SELECT day - DATE '1970-01-01' AS day, n FROM event_day_actions
                 WHERE org_id = {org}{days}{actions}
                 UNION ALL
                 SELECT {DAY_OF}, count(*) FROM events
                 WHERE org_id = {org} AND {edges}{actions} GROUP BY 1
             ) AS per_day GROUP BY day ORDER BY day",
            org = parts.org,
            days = parts.whole_days,
            edges = parts.edges,
            actions = parts.actions,
        )
    } else {
        let Some(filter) = filter_sql(&mut params, org_id, filter, tag) else {
            return Ok(Vec::new());
        };
        format!(
            "SELECT {DAY_OF} AS day, count(*) FROM events WHERE {filter} GROUP BY day ORDER BY day"
        )
    };
    let rows = client
        .query(&sql, &params.as_refs())
        .await
        .map_err(backend)?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                i64::from(row.get::<_, i32>(0)),
                row.get::<_, i64>(1).max(0) as u64,
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect())
}

/// Counts per action and per actor, most frequent first, at most `max_each` of each.
pub async fn facets(
    client: &Client,
    org_id: Uuid,
    tag: Option<i64>,
    filter: &Filter,
    max_each: usize,
) -> Result<Facets, StoreError> {
    let limit = i64::try_from(max_each).unwrap_or(i64::MAX);
    let shape = shape(filter);
    let mut params = Params::default();
    let (actions_sql, actors_sql) = match shape {
        Shape::Nothing => return Ok(Facets::default()),
        Shape::All => {
            let parts = RollupParts::new(&mut params, org_id, filter, None);
            let (org, days, edges) = (parts.org, parts.whole_days, parts.edges);
            (
                format!(
                    "SELECT action_key, sum(n)::bigint AS total FROM (
                         SELECT action_key, n FROM event_day_actions WHERE org_id = {org}{days}
                         UNION ALL
                         SELECT action_key, count(*) FROM events
                         WHERE org_id = {org} AND {edges} GROUP BY action_key
                     ) AS t GROUP BY action_key
                     ORDER BY total DESC, action_key COLLATE \"C\" LIMIT {limit}"
                ),
                format!(
                    "SELECT actor_id, actor_email, min(actor_name), sum(n)::bigint AS total FROM (
                         SELECT actor_id, actor_email, actor_name, n FROM event_day_actors
                         WHERE org_id = {org}{days}
                         UNION ALL
                         SELECT actor_id, actor_email, min(actor_name), count(*) FROM events
                         WHERE org_id = {org} AND {edges} GROUP BY actor_id, actor_email
                     ) AS t GROUP BY actor_id, actor_email
                     ORDER BY total DESC, actor_email COLLATE \"C\", actor_id COLLATE \"C\"
                     LIMIT {limit}"
                ),
            )
        }
        Shape::Conditions(..) => {
            let Some(filter) = filter_sql(&mut params, org_id, filter, tag) else {
                return Ok(Facets::default());
            };
            (
                format!(
                    "SELECT action_key, count(*) AS total FROM events WHERE {filter}
                     GROUP BY action_key ORDER BY total DESC, action_key COLLATE \"C\" LIMIT {limit}"
                ),
                format!(
                    "SELECT actor_id, actor_email, min(actor_name), count(*) AS total FROM events
                     WHERE {filter} GROUP BY actor_id, actor_email
                     ORDER BY total DESC, actor_email COLLATE \"C\", actor_id COLLATE \"C\"
                     LIMIT {limit}"
                ),
            )
        }
    };
    // Both statements use the same placeholders, so they share the parameters.
    let refs = params.as_refs();
    let (action_rows, actor_rows) = tokio::try_join!(
        client.query(&actions_sql, &refs),
        client.query(&actors_sql, &refs),
    )
    .map_err(backend)?;
    Ok(Facets {
        actions: action_rows
            .iter()
            .map(|row| (row.get(0), row.get::<_, i64>(1).max(0) as u64))
            .collect(),
        actors: actor_rows
            .iter()
            .map(|row| ActorCount {
                actor_id: row.get(0),
                actor_email: row.get(1),
                actor_name: row.get(2),
                count: row.get::<_, i64>(3).max(0) as u64,
            })
            .collect(),
    })
}

/// The pieces of a rollup statement: whole UTC days from the rollup table, the partial days
/// at the range's edges from `events`.
struct RollupParts {
    /// The placeholder of `org_id`.
    org: String,
    /// `AND day …` bounds of the whole days (or `AND FALSE` when there are none).
    whole_days: String,
    /// A predicate on `occurred_at` selecting the partial days (or `FALSE`).
    edges: String,
    /// `AND action_key = ANY(…)`, or nothing for every action.
    actions: String,
}

impl RollupParts {
    fn new(
        params: &mut Params,
        org_id: Uuid,
        filter: &Filter,
        actions: Option<&[String]>,
    ) -> RollupParts {
        let split = DaySplit::of(filter.from, filter.to);
        let org = params.bind(org_id);
        let whole_days = match split.whole {
            None => " AND FALSE".to_string(),
            Some((first, last)) => {
                let mut sql = String::new();
                if let Some(first) = first {
                    let _ = write!(
                        sql,
                        " AND day >= DATE '1970-01-01' + {}::int",
                        params.bind(first)
                    );
                }
                if let Some(last) = last {
                    let _ = write!(
                        sql,
                        " AND day <= DATE '1970-01-01' + {}::int",
                        params.bind(last)
                    );
                }
                sql
            }
        };
        let edges = if split.edges.is_empty() {
            "FALSE".to_string()
        } else {
            let ranges: Vec<String> = split
                .edges
                .iter()
                .map(|(lo, hi)| {
                    let lo = params.bind(sql_time(*lo));
                    let hi = params.bind(sql_time(*hi));
                    format!("occurred_at BETWEEN {lo}::timestamptz AND {hi}::timestamptz")
                })
                .collect();
            format!("({})", ranges.join(" OR "))
        };
        let actions = actions
            .map(|values| {
                format!(
                    " AND action_key = ANY({}::text[])",
                    params.bind(values.to_vec())
                )
            })
            .unwrap_or_default();
        RollupParts {
            org,
            whole_days,
            edges,
            actions,
        }
    }
}

/// How an inclusive time range divides into whole UTC days and partial days at its edges.
#[derive(Debug, PartialEq, Eq)]
struct DaySplit {
    /// The first and last whole day (days since the epoch; `None` is unbounded), or `None`
    /// when the range holds no whole day.
    whole: Option<(Option<i32>, Option<i32>)>,
    /// Inclusive ranges of the partial days.
    edges: Vec<(Timestamp, Timestamp)>,
}

impl DaySplit {
    fn of(from: Option<Timestamp>, to: Option<Timestamp>) -> DaySplit {
        let ms = |at: i64| Timestamp::from_millis(at).expect("within the range of from and to");
        // A day is whole when its first and last millisecond are both in the range.
        let first = from.map(|from| {
            from.as_millis().div_euclid(MS_PER_DAY)
                + i64::from(from.as_millis().rem_euclid(MS_PER_DAY) != 0)
        });
        let last = to.map(|to| (to.as_millis() + 1).div_euclid(MS_PER_DAY) - 1);
        if let (Some(from), Some(to), Some(first), Some(last)) = (from, to, first, last) {
            if first > last {
                return DaySplit {
                    whole: None,
                    edges: vec![(from, to)],
                };
            }
        }
        let mut edges = Vec::new();
        if let (Some(from), Some(first)) = (from, first) {
            if from.as_millis() < first * MS_PER_DAY {
                edges.push((from, ms(first * MS_PER_DAY - 1)));
            }
        }
        if let (Some(to), Some(last)) = (to, last) {
            if to.as_millis() >= (last + 1) * MS_PER_DAY {
                edges.push((ms((last + 1) * MS_PER_DAY), to));
            }
        }
        let day = |day: i64| day_number(Timestamp::start_of_day(day));
        DaySplit {
            whole: Some((first.map(day), last.map(day))),
            edges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    #[test]
    fn time_ranges_split_into_whole_and_partial_days() {
        let d = MS_PER_DAY;
        assert_eq!(
            DaySplit::of(None, None),
            DaySplit {
                whole: Some((None, None)),
                edges: vec![]
            }
        );
        // Exactly days 10 through 11.
        assert_eq!(
            DaySplit::of(Some(ts(10 * d)), Some(ts(12 * d - 1))),
            DaySplit {
                whole: Some((Some(10), Some(11))),
                edges: vec![]
            }
        );
        // Partial days on both sides of day 11.
        assert_eq!(
            DaySplit::of(Some(ts(10 * d + 5)), Some(ts(12 * d + 7))),
            DaySplit {
                whole: Some((Some(11), Some(11))),
                edges: vec![
                    (ts(10 * d + 5), ts(11 * d - 1)),
                    (ts(12 * d), ts(12 * d + 7))
                ]
            }
        );
        // Within one day, and across one midnight without a whole day.
        assert_eq!(
            DaySplit::of(Some(ts(10 * d + 5)), Some(ts(10 * d + 9))),
            DaySplit {
                whole: None,
                edges: vec![(ts(10 * d + 5), ts(10 * d + 9))]
            }
        );
        assert_eq!(
            DaySplit::of(Some(ts(10 * d + 5)), Some(ts(11 * d + 9))),
            DaySplit {
                whole: None,
                edges: vec![(ts(10 * d + 5), ts(11 * d + 9))]
            }
        );
        // Open on one side.
        assert_eq!(
            DaySplit::of(None, Some(ts(12 * d))),
            DaySplit {
                whole: Some((None, Some(11))),
                edges: vec![(ts(12 * d), ts(12 * d))]
            }
        );
        assert_eq!(
            DaySplit::of(Some(ts(12 * d - 1)), None),
            DaySplit {
                whole: Some((Some(12), None)),
                edges: vec![(ts(12 * d - 1), ts(12 * d - 1))]
            }
        );
    }

    #[test]
    fn searches_become_prefix_queries_on_tagged_lexemes() {
        let words = text::query_words("ML-Prod été");
        assert_eq!(
            tsquery_literal(3, &words),
            "'3.ml':* & '3.prod':* & '3.été':*"
        );
    }
}
