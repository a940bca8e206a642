//! The read side: pages, counts, facets and chain walks, each inside one read transaction on
//! a pooled connection that has `index.db` attached as `idx`.
//!
//! **Visibility.** The index trails the log. Every read first takes its snapshot of
//! `index.db`, then of the log (see `SqliteStore::read`), so the log it sees holds at least
//! everything the index covers; for the organization it asks about, events past the
//! organization's last indexed `seq` (the *tail*, a few thousand events at most while the
//! indexer keeps up) are read from the log, matched in memory with `Filter::matches`, and
//! merged into the answer. An acknowledged event is therefore in every answer at once.
//!
//! Every query is scoped by `org_key` in SQL. Three plans answer a filter over the indexed
//! part:
//! - **days**: walk the organization's days (from `org_days`) in the requested order and ask
//!   each day's slice of an index for the matching events, stopping once the page is full.
//!   Conditions become SQL on dictionary keys. Whole days of counts and facets come from the
//!   rollup tables.
//! - **text**: when a free-text condition must hold, the organization's FTS postings give the
//!   candidate positions; other conditions are applied in SQL and the matches are sorted.
//! - **scan**: a free-text condition ORed with others; walks days and evaluates the filter in
//!   memory. Correct, and as slow as the time range is large.

use std::collections::HashMap;

use auditlog_core::chain::{Checkpoint, SignedCheckpoint};
use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position, Query, Start};
use auditlog_core::{text, Event, EventBody, Outcome, Timestamp};
use auditlog_store::{ActorCount, ChainHead, Count, Facets, StoreError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use uuid::Uuid;

use crate::{backend, log_row};

/// Columns of a full event of the index, read from its log row. `{where}` follows.
fn event_select() -> String {
    format!(
        "SELECT {} FROM event_index e JOIN log l ON l.lsn = e.lsn",
        log_row::COLUMNS
    )
}

/// Number of bits of `pos` that hold `seq`.
const SEQ_BITS: u32 = 40;

/// One organization as the read side addresses it.
pub struct OrgScope {
    org_id: Uuid,
    org_key: i64,
    /// The organization's last `seq` the index covers: later events are the tail.
    indexed_seq: u64,
}

impl OrgScope {
    /// The organization's key in this file.
    pub fn org_key(&self) -> i64 {
        self.org_key
    }

    /// Resolves an organization id; `None` when it does not exist. Must run after the read
    /// transaction has taken its snapshot of `index.db` (see the module's doc).
    pub fn resolve(conn: &Connection, org_id: Uuid) -> Result<Option<OrgScope>, StoreError> {
        let org_key: Option<i64> = conn
            .prepare_cached("SELECT org_key FROM orgs WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([org_id.as_bytes().as_slice()], |row| row.get(0))
                    .optional()
            })
            .map_err(backend)?;
        let Some(org_key) = org_key else {
            return Ok(None);
        };
        let mut scope = OrgScope {
            org_id,
            org_key,
            indexed_seq: 0,
        };
        let last: Option<i64> = conn
            .prepare_cached("SELECT max(pos) FROM event_index WHERE pos BETWEEN ?1 AND ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![scope.pos(0), scope.pos(u64::MAX)], |row| row.get(0))
            })
            .map_err(backend)?;
        scope.indexed_seq = last.map_or(0, |pos| (pos & ((1 << SEQ_BITS) - 1)) as u64);
        Ok(Some(scope))
    }

    fn pos(&self, seq: u64) -> i64 {
        pos(self.org_key, seq.min((1 << SEQ_BITS) - 1))
    }
}

/// An event's key in `index.db`: its organization's key, then its `seq`.
pub(crate) fn pos(org_key: i64, seq: u64) -> i64 {
    (org_key << SEQ_BITS) | seq as i64
}

/// A filter compiled for this backend.
enum Plan {
    /// SQL conditions (`sql` uses `?` placeholders bound from `params`), per day.
    Days {
        sql: String,
        params: Vec<SqlValue>,
        rollup_actions: Option<Vec<String>>,
        /// `INDEXED BY …` naming the most selective index for ANDed conditions, or empty.
        hint: &'static str,
    },
    /// FTS query plus SQL conditions.
    Text {
        fts: String,
        sql: String,
        params: Vec<SqlValue>,
    },
    /// In-memory evaluation of the whole filter over the time range.
    Scan,
    /// Nothing can match.
    Nothing,
}

fn plan(conn: &Connection, scope: &OrgScope, filter: &Filter) -> Result<Plan, StoreError> {
    if filter.is_empty_range() {
        return Ok(Plan::Nothing);
    }
    // A text condition without words matches everything.
    let mut conditions: Vec<&Condition> = Vec::new();
    for condition in &filter.conditions {
        if let Condition::Text(words) = condition {
            if text::query_words(words).is_empty() {
                if filter.combine == Combine::Or {
                    conditions.clear();
                    return plan_conditions(conn, scope, &[], Combine::And);
                }
                continue;
            }
        }
        conditions.push(condition);
    }
    plan_conditions(conn, scope, &conditions, filter.combine)
}

fn plan_conditions(
    conn: &Connection,
    scope: &OrgScope,
    conditions: &[&Condition],
    combine: Combine,
) -> Result<Plan, StoreError> {
    let texts: Vec<&str> = conditions
        .iter()
        .filter_map(|c| match c {
            Condition::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let others: Vec<&Condition> = conditions
        .iter()
        .copied()
        .filter(|c| !matches!(c, Condition::Text(_)))
        .collect();
    let combine = if conditions.len() <= 1 {
        Combine::And
    } else {
        combine
    };
    if !texts.is_empty() && combine == Combine::Or {
        return Ok(Plan::Scan);
    }
    let mut params = Vec::new();
    let sql = conditions_sql(conn, scope, &others, combine, &mut params)?;
    if texts.is_empty() {
        let rollup_actions = match others.as_slice() {
            [] => Some(Vec::new()),
            [Condition::AnyOf {
                column: Column::ActionKey,
                values,
            }] => Some(values.clone()),
            _ => None,
        };
        // Without statistics SQLite cannot tell that one user's events are far fewer than one
        // action's; prefer the index of the most selective column an ANDed filter names.
        let names = |columns: &[Column]| {
            others
                .iter()
                .any(|c| matches!(c, Condition::AnyOf { column, .. } if columns.contains(column)))
        };
        let hint = if combine != Combine::And {
            ""
        } else if names(&[Column::Actor, Column::ActorId, Column::ActorEmail]) {
            "INDEXED BY events_by_actor"
        } else if names(&[Column::Target, Column::TargetId, Column::TargetEmail]) {
            "INDEXED BY events_by_target"
        } else if names(&[Column::Impersonator]) {
            "INDEXED BY events_by_impersonator"
        } else if others.iter().any(|c| {
            // Only failures and refusals are on the outcome path; successes are not.
            matches!(c, Condition::AnyOf { column: Column::Outcome, values }
                if !values.iter().any(|v| v == Outcome::Success.as_str()))
        }) {
            "INDEXED BY events_by_outcome"
        } else if names(&[Column::ActionKey]) {
            "INDEXED BY events_by_action"
        } else {
            ""
        };
        return Ok(Plan::Days {
            sql,
            params,
            rollup_actions,
            hint,
        });
    }
    let mut terms = Vec::new();
    for t in texts {
        for word in text::query_words(t) {
            terms.push(format!("\"{word}\"*"));
        }
    }
    Ok(Plan::Text {
        fts: terms.join(" AND "),
        sql,
        params,
    })
}

/// SQL for non-text conditions: `1` when there are none.
fn conditions_sql(
    conn: &Connection,
    scope: &OrgScope,
    conditions: &[&Condition],
    combine: Combine,
    params: &mut Vec<SqlValue>,
) -> Result<String, StoreError> {
    if conditions.is_empty() {
        return Ok("1".to_string());
    }
    let mut parts = Vec::new();
    for condition in conditions {
        let Condition::AnyOf { column, values } = condition else {
            continue;
        };
        // Values become dictionary keys here, once per query, so that each day's statement
        // is a plain `IN (keys)` that SQLite serves from the (day, org, column) index.
        let keys = |keys: Vec<i64>, params: &mut Vec<SqlValue>| -> String {
            if keys.is_empty() {
                return "(NULL)".to_string();
            }
            let marks = vec!["?"; keys.len()].join(",");
            params.extend(keys.into_iter().map(SqlValue::Integer));
            format!("({marks})")
        };
        let part = match column {
            Column::ActionKey => {
                format!("e.action IN {}", keys(string_keys(conn, values)?, params))
            }
            Column::ActionVerb => format!("e.verb IN {}", keys(string_keys(conn, values)?, params)),
            Column::ServiceName => {
                format!("e.service IN {}", keys(string_keys(conn, values)?, params))
            }
            Column::ActorId | Column::TargetId => {
                let found = principal_keys(conn, scope, "ext_id", values)?;
                format!("{} IN {}", side(*column), keys(found, params))
            }
            Column::ActorEmail | Column::TargetEmail => {
                let found = principal_keys(conn, scope, "email", values)?;
                format!("{} IN {}", side(*column), keys(found, params))
            }
            Column::Actor | Column::Target => {
                let mut found = principal_keys(conn, scope, "ext_id", values)?;
                found.extend(principal_keys(conn, scope, "email", values)?);
                found.sort_unstable();
                found.dedup();
                format!("{} IN {}", side(*column), keys(found, params))
            }
            Column::Impersonator => {
                let mut found = principal_keys(conn, scope, "ext_id", values)?;
                found.extend(principal_keys(conn, scope, "email", values)?);
                found.sort_unstable();
                found.dedup();
                format!("e.impersonator IN {}", keys(found, params))
            }
            Column::Outcome => {
                // `success` is stored as no outcome at all.
                let others: Vec<String> = values
                    .iter()
                    .filter(|v| v.as_str() != Outcome::Success.as_str())
                    .cloned()
                    .collect();
                let listed = format!("e.outcome IN {}", keys(string_keys(conn, &others)?, params));
                match others.len() < values.len() {
                    true => format!("e.outcome IS NULL OR {listed}"),
                    false => listed,
                }
            }
            Column::ActorType | Column::TargetType => {
                // Kinds can match every principal of an organization: keep them a subquery.
                let kinds = keys(string_keys(conn, values)?, params);
                format!(
                    "{} IN (SELECT principal_key FROM principals WHERE org_key = {} AND kind IN {kinds})",
                    side(*column),
                    scope.org_key
                )
            }
        };
        parts.push(format!("({part})"));
    }
    let joiner = match combine {
        Combine::And => " AND ",
        Combine::Or => " OR ",
    };
    Ok(format!("({})", parts.join(joiner)))
}

/// Dictionary keys of the given strings (absent strings have none).
fn string_keys(conn: &Connection, values: &[String]) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT string_key FROM strings WHERE value = ?1")
        .map_err(backend)?;
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        if let Some(key) = stmt
            .query_row([value], |row| row.get(0))
            .optional()
            .map_err(backend)?
        {
            out.push(key);
        }
    }
    Ok(out)
}

/// Keys of the organization's principals whose `column` (`ext_id` or `email`) is one of
/// `values`.
fn principal_keys(
    conn: &Connection,
    scope: &OrgScope,
    column: &str,
    values: &[String],
) -> Result<Vec<i64>, StoreError> {
    let sql = format!("SELECT principal_key FROM principals WHERE org_key = ?1 AND {column} = ?2");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut out = Vec::new();
    for value in values {
        let rows = stmt
            .query_map(params![scope.org_key, value], |row| row.get::<_, i64>(0))
            .map_err(backend)?;
        for key in rows {
            out.push(key.map_err(backend)?);
        }
    }
    Ok(out)
}

fn side(column: Column) -> &'static str {
    match column {
        Column::ActorId | Column::ActorEmail | Column::Actor | Column::ActorType => "e.actor",
        _ => "e.target",
    }
}

/// The organization's days with events within the filter's time range, in walking order.
fn days(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    order: Order,
) -> Result<Vec<i64>, StoreError> {
    let lo = filter.from.map_or(i64::MIN, |t| t.day());
    let hi = filter.to.map_or(i64::MAX, |t| t.day());
    let sql = match order {
        Order::NewestFirst => "SELECT day FROM org_days WHERE org_key = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day DESC",
        Order::OldestFirst => "SELECT day FROM org_days WHERE org_key = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day ASC",
    };
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params![scope.org_key, lo, hi], |row| row.get(0))
        .map_err(backend)?;
    rows.collect::<Result<Vec<i64>, _>>().map_err(backend)
}

/// The organization's days with events between two days, in walking order, read a few at a
/// time: a page that fills on its first day or two reads no more of them, however long the
/// history.
struct DayWalk {
    lo: i64,
    hi: i64,
    order: Order,
    ahead: std::collections::VecDeque<i64>,
    exhausted: bool,
}

impl DayWalk {
    /// Days read per statement.
    const CHUNK: i64 = 16;

    fn new(filter: &Filter, order: Order, after: Option<Position>) -> DayWalk {
        let mut lo = filter.from.map_or(i64::MIN, |t| t.day());
        let mut hi = filter.to.map_or(i64::MAX, |t| t.day());
        // Days wholly beyond a keyset cursor hold nothing the page wants.
        match (after, order) {
            (Some(p), Order::NewestFirst) => hi = hi.min(p.occurred_at.day()),
            (Some(p), Order::OldestFirst) => lo = lo.max(p.occurred_at.day()),
            (None, _) => {}
        }
        DayWalk {
            lo,
            hi,
            order,
            ahead: std::collections::VecDeque::new(),
            exhausted: false,
        }
    }

    fn next(&mut self, conn: &Connection, scope: &OrgScope) -> Result<Option<i64>, StoreError> {
        if self.ahead.is_empty() && !self.exhausted && self.lo <= self.hi {
            let sql = match self.order {
                Order::NewestFirst => "SELECT day FROM org_days WHERE org_key = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day DESC LIMIT ?4",
                Order::OldestFirst => "SELECT day FROM org_days WHERE org_key = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day ASC LIMIT ?4",
            };
            let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![scope.org_key, self.lo, self.hi, Self::CHUNK],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(backend)?;
            for day in rows {
                self.ahead.push_back(day.map_err(backend)?);
            }
            self.exhausted = (self.ahead.len() as i64) < Self::CHUNK;
            match (self.order, self.ahead.back()) {
                (Order::NewestFirst, Some(&last)) => self.hi = last - 1,
                (Order::OldestFirst, Some(&last)) => self.lo = last + 1,
                (_, None) => self.exhausted = true,
            }
        }
        Ok(self.ahead.pop_front())
    }
}

fn time_bounds(filter: &Filter) -> (i64, i64) {
    (
        filter.from.map_or(i64::MIN, |t| t.as_millis()),
        filter.to.map_or(i64::MAX, |t| t.as_millis()),
    )
}

/// The first and last UTC day lying wholly inside the filter's time range (first > last
/// when there is none).
fn whole_days(filter: &Filter) -> (i64, i64) {
    let day_ms = auditlog_core::timestamp::MS_PER_DAY;
    let first = filter.from.map_or(i64::MIN, |from| {
        let day = from.day();
        if Timestamp::start_of_day(day).as_millis() == from.as_millis() {
            day
        } else {
            day + 1
        }
    });
    let last = filter.to.map_or(i64::MAX, |to| {
        let day = to.day();
        if Timestamp::start_of_day(day).as_millis() + day_ms - 1 == to.as_millis() {
            day
        } else {
            day - 1
        }
    });
    (first, last)
}

/// The tail's events that match `filter`, in `order`.
fn tail_matches(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    order: Order,
) -> Result<Vec<Event>, StoreError> {
    tail_page(conn, scope, filter, order, None, None)
}

/// The tail's events that match `filter`, in `order`, after `after` when given, at most
/// `limit` of them when given. A filter of time alone is applied in SQL, sorted and cut
/// there, so only the events a page shows are decoded (the tail can hold thousands of one
/// organization's events while a large ingest runs); other conditions are matched on the
/// decoded events.
fn tail_page(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    order: Order,
    after: Option<Position>,
    limit: Option<usize>,
) -> Result<Vec<Event>, StoreError> {
    let (lo, hi) = time_bounds(filter);
    let mut events = Vec::new();
    if filter.conditions.is_empty() {
        let (cmp, dir) = match order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        let (at, seq) = match (after, order) {
            (Some(p), _) => (p.occurred_at.as_millis(), p.seq.min(i64::MAX as u64) as i64),
            (None, Order::NewestFirst) => (i64::MAX, i64::MAX),
            (None, Order::OldestFirst) => (i64::MIN, i64::MIN),
        };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {} FROM log l WHERE l.org_key = ?1 AND l.seq > ?2
                   AND l.occurred_at BETWEEN ?3 AND ?4 AND (l.occurred_at, l.seq) {cmp} (?5, ?6)
                 ORDER BY l.occurred_at {dir}, l.seq {dir} LIMIT ?7",
                log_row::COLUMNS
            ))
            .map_err(backend)?;
        let limit = limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
        let mut rows = stmt
            .query(params![
                scope.org_key,
                scope.indexed_seq as i64,
                lo,
                hi,
                at,
                seq,
                limit
            ])
            .map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            events.push(log_row::decode(row, scope.org_id)?);
        }
        return Ok(events);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {} FROM log l WHERE l.org_key = ?1 AND l.seq > ?2
               AND l.occurred_at BETWEEN ?3 AND ?4 ORDER BY l.seq",
            log_row::COLUMNS
        ))
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![scope.org_key, scope.indexed_seq as i64, lo, hi])
        .map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let event = log_row::decode(row, scope.org_id)?;
        if filter.matches(&event) && after.is_none_or(|p| p.is_before(&Position::of(&event), order))
        {
            events.push(event);
        }
    }
    sort_events(&mut events, order);
    if let Some(limit) = limit {
        events.truncate(limit);
    }
    Ok(events)
}

/// How many of the tail's events match `filter` (counted in SQL for a filter of time alone).
fn tail_count(conn: &Connection, scope: &OrgScope, filter: &Filter) -> Result<u64, StoreError> {
    if !filter.conditions.is_empty() {
        return Ok(tail_matches(conn, scope, filter, Order::OldestFirst)?.len() as u64);
    }
    let (lo, hi) = time_bounds(filter);
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM log l WHERE l.org_key = ?1 AND l.seq > ?2
               AND l.occurred_at BETWEEN ?3 AND ?4",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![scope.org_key, scope.indexed_seq as i64, lo, hi],
                |row| row.get(0),
            )
        })
        .map_err(backend)?;
    Ok(n as u64)
}

fn sort_events(events: &mut [Event], order: Order) {
    let key = |e: &Event| (e.body.occurred_at, e.seq);
    match order {
        Order::NewestFirst => events.sort_unstable_by_key(|e| std::cmp::Reverse(key(e))),
        Order::OldestFirst => events.sort_unstable_by_key(key),
    }
}

/// One page of events: the indexed part's page merged with the tail's matches.
pub fn query(conn: &Connection, scope: &OrgScope, query: &Query) -> Result<Vec<Event>, StoreError> {
    let limit = query.limit.clamp(1, auditlog_core::query::MAX_LIMIT) as usize;
    // A page from the start or after a cursor needs only the tail's first `limit` events;
    // a page at an offset needs them all, to rank the merge.
    let tail = match query.start {
        Start::After(p) => tail_page(
            conn,
            scope,
            &query.filter,
            query.order,
            Some(p),
            Some(limit),
        )?,
        Start::Offset(0) => tail_page(conn, scope, &query.filter, query.order, None, Some(limit))?,
        Start::Offset(_) => tail_matches(conn, scope, &query.filter, query.order)?,
    };
    if tail.is_empty() {
        return query_indexed(conn, scope, query, query.start, limit);
    }
    let order = query.order;
    let before = |a: &Event, b: &Event| Position::of(a).is_before(&Position::of(b), order);
    match query.start {
        Start::After(_) => {
            // Both parts already start after the cursor.
            let mut page = query_indexed(conn, scope, query, query.start, limit)?;
            page.extend(tail);
            sort_events(&mut page, order);
            page.truncate(limit);
            Ok(page)
        }
        Start::Offset(skip) => {
            // The merged sequence's events `skip..skip + limit` hold at most `t` tail events,
            // so the indexed part is read from `skip - t` on. Its first event `first` has
            // rank `base + k` in the merged sequence, where `k` tail events precede it;
            // tail events before `first` are ranked among indexed events not read, so they
            // are left out (when `base` is 0 nothing is unread and they all count).
            let t = tail.len() as u64;
            let base = skip.saturating_sub(t);
            let indexed =
                query_indexed(conn, scope, query, Start::Offset(base), limit + t as usize)?;
            let Some(first) = indexed.first().cloned() else {
                // Nothing indexed from `base` on: the merged sequence is the (fewer than
                // `base`) indexed events before and the tail, all ranked when `base` is 0.
                if base > 0 {
                    return Ok(Vec::new());
                }
                return Ok(tail.into_iter().skip(skip as usize).take(limit).collect());
            };
            let (mut merged, rank) = if base == 0 {
                let mut all = indexed;
                all.extend(tail);
                (all, 0u64)
            } else {
                let k = tail.iter().filter(|e| before(e, &first)).count() as u64;
                let mut all = indexed;
                all.extend(tail.into_iter().filter(|e| !before(e, &first)));
                (all, base + k)
            };
            sort_events(&mut merged, order);
            Ok(merged
                .into_iter()
                .skip((skip - rank) as usize)
                .take(limit)
                .collect())
        }
    }
}

/// One page of the indexed part: `limit` events from `start`.
fn query_indexed(
    conn: &Connection,
    scope: &OrgScope,
    query: &Query,
    start: Start,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let filter = &query.filter;
    let (lo, hi) = time_bounds(filter);
    let after = match start {
        Start::After(position) => Some(position),
        Start::Offset(_) => None,
    };
    let mut skip = match start {
        Start::Offset(n) => n,
        Start::After(_) => 0,
    };
    match plan(conn, scope, filter)? {
        Plan::Nothing => Ok(Vec::new()),
        Plan::Days {
            sql, params, hint, ..
        } => {
            let from_events = format!("FROM event_index e {hint}");
            let (cmp, dir) = match query.order {
                Order::NewestFirst => ("<", "DESC"),
                Order::OldestFirst => (">", "ASC"),
            };
            let select = event_select().replacen("FROM event_index e", &from_events, 1);
            let page_sql = format!(
                "{select} WHERE e.day = ? AND e.org_key = ? AND e.occurred_at BETWEEN ? AND ?
                 AND (e.occurred_at, e.pos) {cmp} (?, ?) AND {sql}
                 ORDER BY e.occurred_at {dir}, e.pos {dir} LIMIT ? OFFSET ?"
            );
            let count_sql = format!(
                "SELECT count(*) {from_events} WHERE e.day = ? AND e.org_key = ? AND e.occurred_at BETWEEN ? AND ? AND {sql}"
            );
            let mut page_stmt = conn.prepare_cached(&page_sql).map_err(backend)?;
            let mut count_stmt = conn.prepare_cached(&count_sql).map_err(backend)?;
            let (start_ms, start_pos) = match (after, query.order) {
                (Some(p), _) => (p.occurred_at.as_millis(), scope.pos(p.seq)),
                (None, Order::NewestFirst) => (i64::MAX, i64::MAX),
                (None, Order::OldestFirst) => (i64::MIN, i64::MIN),
            };
            let mut events = Vec::with_capacity(limit);
            let mut walk = DayWalk::new(filter, query.order, after);
            while let Some(day) = walk.next(conn, scope)? {
                if let Some(p) = after {
                    let cursor_day = p.occurred_at.day();
                    let beyond = match query.order {
                        Order::NewestFirst => day > cursor_day,
                        Order::OldestFirst => day < cursor_day,
                    };
                    if beyond {
                        continue;
                    }
                }
                if skip > 0 {
                    let mut values = vec![
                        SqlValue::Integer(day),
                        SqlValue::Integer(scope.org_key),
                        SqlValue::Integer(lo),
                        SqlValue::Integer(hi),
                    ];
                    values.extend(params.iter().cloned());
                    let n: i64 = count_stmt
                        .query_row(params_from_iter(values), |row| row.get(0))
                        .map_err(backend)?;
                    if n as u64 <= skip {
                        skip -= n as u64;
                        continue;
                    }
                }
                let mut values = vec![
                    SqlValue::Integer(day),
                    SqlValue::Integer(scope.org_key),
                    SqlValue::Integer(lo),
                    SqlValue::Integer(hi),
                    SqlValue::Integer(start_ms),
                    SqlValue::Integer(start_pos),
                ];
                values.extend(params.iter().cloned());
                values.push(SqlValue::Integer((limit - events.len()) as i64));
                values.push(SqlValue::Integer(skip as i64));
                skip = 0;
                let mut rows = page_stmt.query(params_from_iter(values)).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    events.push(log_row::decode(row, scope.org_id)?);
                }
                if events.len() >= limit {
                    break;
                }
            }
            Ok(events)
        }
        Plan::Text { fts, sql, params } => {
            let need = (skip as usize).saturating_add(limit);
            let plan = (fts.as_str(), sql.as_str(), params.as_slice());
            let matches = text_page(conn, scope, filter, plan, query.order, after, need)?;
            let mut page = Vec::with_capacity(limit);
            for hit in matches.iter().skip(skip as usize).take(limit) {
                page.push(event_at(conn, scope, hit.pos)?.ok_or_else(|| {
                    StoreError::Corrupt("a search posting names a missing event".into())
                })?);
            }
            Ok(page)
        }
        Plan::Scan => {
            let mut events = Vec::with_capacity(limit);
            scan(conn, scope, filter, query.order, |event| {
                let position = Position::of(&event);
                if after.is_some_and(|p| !p.is_before(&position, query.order)) {
                    return true;
                }
                if skip > 0 {
                    skip -= 1;
                    return true;
                }
                events.push(event);
                events.len() < limit
            })?;
            Ok(events)
        }
    }
}

/// A text-plan match: enough to sort, count and facet without loading the event.
struct Hit {
    pos: i64,
    occurred_at: i64,
    action: i64,
    actor: i64,
    day: i64,
}

impl Hit {
    fn position(&self, _scope: &OrgScope) -> Position {
        Position {
            occurred_at: Timestamp::from_millis(self.occurred_at)
                .unwrap_or(Timestamp::from_millis(0).expect("epoch")),
            seq: (self.pos & ((1 << SEQ_BITS) - 1)) as u64,
        }
    }
}

/// The indexed events whose postings match `fts` and that meet the other conditions, among
/// positions `range`; at most `limit` of them (any ones) when given.
#[allow(clippy::too_many_arguments)]
fn text_matches(
    conn: &Connection,
    filter: &Filter,
    fts: &str,
    sql: &str,
    params: &[SqlValue],
    range: (i64, i64),
    limit: Option<u64>,
) -> Result<Vec<Hit>, StoreError> {
    let (lo, hi) = time_bounds(filter);
    let stmt_sql = format!(
        "SELECT e.pos, e.occurred_at, e.action, e.actor, e.day FROM event_index e
         WHERE e.pos IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ? AND rowid BETWEEN ? AND ?)
           AND e.occurred_at BETWEEN ? AND ? AND {sql} LIMIT ?"
    );
    let mut stmt = conn.prepare_cached(&stmt_sql).map_err(backend)?;
    let mut values = vec![
        SqlValue::Text(fts.to_string()),
        SqlValue::Integer(range.0),
        SqlValue::Integer(range.1),
        SqlValue::Integer(lo),
        SqlValue::Integer(hi),
    ];
    values.extend(params.iter().cloned());
    values.push(SqlValue::Integer(
        limit.map_or(-1, |n| n.min(i64::MAX as u64) as i64),
    ));
    let rows = stmt
        .query_map(params_from_iter(values), |row| {
            Ok(Hit {
                pos: row.get(0)?,
                occurred_at: row.get(1)?,
                action: row.get(2)?,
                actor: row.get(3)?,
                day: row.get(4)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

/// The first `need` matches of a search in `order` (after `after` when given), without
/// reading every match of a common word. The organization's postings are streamed in `pos`
/// order — newest `seq` first for newest-first pages — and each posting's event is checked
/// against the other conditions. The indexer keeps, per block of 4,096 seqs, the earliest and
/// latest `occurred_at` (`seq_blocks`): once `need` matches are in hand and no block still
/// ahead of the stream holds an event as new as the worst of them, the stream stops. Events
/// ingested roughly in time order make that a few dozen postings at any organization size;
/// history ingested out of order costs more postings, never a wrong answer. Blocks that lie
/// wholly outside the time range or beyond the cursor are not streamed at all.
#[allow(clippy::too_many_arguments)]
fn text_page(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    plan: (&str, &str, &[SqlValue]),
    order: Order,
    after: Option<Position>,
    need: usize,
) -> Result<Vec<Hit>, StoreError> {
    let (fts, sql, params) = plan;
    if need == 0 {
        return Ok(Vec::new());
    }
    let (lo, hi) = time_bounds(filter);
    // The blocks that can hold a match: overlapping the time range, and not wholly on the
    // far side of the cursor.
    let (lo, hi) = match (after, order) {
        (Some(p), Order::NewestFirst) => (lo, hi.min(p.occurred_at.as_millis())),
        (Some(p), Order::OldestFirst) => (lo.max(p.occurred_at.as_millis()), hi),
        (None, _) => (lo, hi),
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT block, min_at, max_at FROM seq_blocks WHERE org_key = ?1 ORDER BY block",
        )
        .map_err(backend)?;
    let blocks: Vec<(i64, i64, i64)> = stmt
        .query_map(params![scope.org_key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    let overlapping = |b: &&(i64, i64, i64)| b.2 >= lo && b.1 <= hi;
    let (Some(first), Some(last)) = (
        blocks.iter().find(overlapping),
        blocks.iter().rev().find(overlapping),
    ) else {
        return Ok(Vec::new());
    };
    let range = (
        scope.pos((first.0 as u64) << BLOCK_BITS),
        scope.pos((((last.0 + 1) as u64) << BLOCK_BITS) - 1),
    );
    // For each block, the best `occurred_at` that it or any block still ahead of the stream
    // holds: the newest over lower-numbered blocks when streaming downwards, the oldest over
    // higher-numbered ones when streaming upwards.
    let mut bound = Vec::with_capacity(blocks.len());
    match order {
        Order::NewestFirst => {
            let mut newest = i64::MIN;
            for b in &blocks {
                newest = newest.max(b.2);
                bound.push(newest);
            }
        }
        Order::OldestFirst => {
            let mut oldest = i64::MAX;
            for b in blocks.iter().rev() {
                oldest = oldest.min(b.1);
                bound.push(oldest);
            }
            bound.reverse();
        }
    }
    let dir = match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    };
    let mut postings = conn
        .prepare_cached(&format!(
            "SELECT rowid FROM events_fts WHERE events_fts MATCH ?1 AND rowid BETWEEN ?2 AND ?3
             ORDER BY rowid {dir}"
        ))
        .map_err(backend)?;
    let mut check = conn
        .prepare_cached(&format!(
            "SELECT e.occurred_at, e.action, e.actor, e.day FROM event_index e
             WHERE e.pos = ? AND e.occurred_at BETWEEN ? AND ? AND {sql}"
        ))
        .map_err(backend)?;
    let (lo, hi) = time_bounds(filter);
    let mut rows = postings
        .query(params![fts, range.0, range.1])
        .map_err(backend)?;
    let mut best: Vec<Hit> = Vec::with_capacity(need + 1);
    let mut current_block = None;
    while let Some(row) = rows.next().map_err(backend)? {
        let pos: i64 = row.get(0).map_err(backend)?;
        let block = (pos & ((1 << SEQ_BITS) - 1)) >> BLOCK_BITS;
        if current_block != Some(block) {
            current_block = Some(block);
            if best.len() >= need {
                let worst = best[need - 1].occurred_at;
                let idx = blocks.partition_point(|b| b.0 < block);
                let best_ahead = bound.get(idx).copied();
                let hopeless = match (order, best_ahead) {
                    (_, None) => true,
                    (Order::NewestFirst, Some(newest)) => newest < worst,
                    (Order::OldestFirst, Some(oldest)) => oldest > worst,
                };
                if hopeless {
                    break;
                }
            }
        }
        let mut values = vec![
            SqlValue::Integer(pos),
            SqlValue::Integer(lo),
            SqlValue::Integer(hi),
        ];
        values.extend(params.iter().cloned());
        let found = check
            .query_row(params_from_iter(values), |row| {
                Ok(Hit {
                    pos,
                    occurred_at: row.get(0)?,
                    action: row.get(1)?,
                    actor: row.get(2)?,
                    day: row.get(3)?,
                })
            })
            .optional()
            .map_err(backend)?;
        let Some(hit) = found else { continue };
        if after.is_some_and(|p| !p.is_before(&hit.position(scope), order)) {
            continue;
        }
        // Keep `best` sorted in `order`, at most `need` long.
        let key = |h: &Hit| (h.occurred_at, h.pos);
        let at = match order {
            Order::NewestFirst => best.partition_point(|h| key(h) > key(&hit)),
            Order::OldestFirst => best.partition_point(|h| key(h) < key(&hit)),
        };
        if at < need {
            best.insert(at, hit);
            best.truncate(need);
        }
    }
    Ok(best)
}

/// An organization's positions are summarized in blocks of `2^BLOCK_BITS` seqs (the
/// indexer keeps each block's earliest and latest `occurred_at` in `seq_blocks`).
pub const BLOCK_BITS: u32 = 12;

/// Walks the time range's events in `order`, evaluating the filter in memory; `visit`
/// returns false to stop.
fn scan(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    order: Order,
    mut visit: impl FnMut(Event) -> bool,
) -> Result<(), StoreError> {
    let (lo, hi) = time_bounds(filter);
    let dir = match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    };
    let sql = format!(
        "{} WHERE e.day = ?1 AND e.org_key = ?2 AND e.occurred_at BETWEEN ?3 AND ?4
         ORDER BY e.occurred_at {dir}, e.pos {dir}",
        event_select()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    for day in days(conn, scope, filter, order)? {
        let mut rows = stmt
            .query(params![day, scope.org_key, lo, hi])
            .map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let event = log_row::decode(row, scope.org_id)?;
            if filter.matches(&event) && !visit(event) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One event by position.
fn event_at(conn: &Connection, scope: &OrgScope, pos: i64) -> Result<Option<Event>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("{} WHERE e.pos = ?1", event_select()))
        .map_err(backend)?;
    let mut rows = stmt.query([pos]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => Ok(Some(log_row::decode(row, scope.org_id)?)),
        None => Ok(None),
    }
}

/// One event by id, only if it belongs to the organization.
pub fn get_event(
    conn: &Connection,
    scope: &OrgScope,
    id: Uuid,
) -> Result<Option<Event>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {} FROM log l WHERE l.id = ?1 AND l.org_key = ?2",
            log_row::COLUMNS
        ))
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![id.as_bytes().as_slice(), scope.org_key])
        .map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => Ok(Some(log_row::decode(row, scope.org_id)?)),
        None => Ok(None),
    }
}

/// Events with `seq > after_seq` in chain order.
pub fn events_by_seq(
    conn: &Connection,
    scope: &OrgScope,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {} FROM log l WHERE l.org_key = ?1 AND l.seq > ?2 ORDER BY l.seq LIMIT ?3",
            log_row::COLUMNS
        ))
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![
            scope.org_key,
            after_seq.min(i64::MAX as u64) as i64,
            limit
        ])
        .map_err(backend)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        events.push(log_row::decode(row, scope.org_id)?);
    }
    Ok(events)
}

/// Per-day tallies of a filter: what `count`, `facets` and `daily_counts` are built from.
#[derive(Default)]
struct Tally {
    per_day: Vec<(i64, u64)>,
    actions: HashMap<i64, u64>,
    actors: HashMap<i64, u64>,
    total: u64,
    /// Counting stopped at the cap: `total` is a lower bound.
    capped: bool,
}

/// What a tally must collect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Totals per day only, stopping once `cap` is exceeded.
    Count { cap: u64 },
    /// Per-action and per-actor counts too.
    Facets,
}

fn tally(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    want: Want,
) -> Result<Tally, StoreError> {
    let mut out = Tally::default();
    let cap = match want {
        Want::Count { cap } => cap,
        Want::Facets => u64::MAX,
    };
    let (lo, hi) = time_bounds(filter);
    match plan(conn, scope, filter)? {
        Plan::Nothing => {}
        Plan::Days {
            sql,
            params,
            rollup_actions,
            hint,
        } => {
            // Rollups make these counts cheap at any size (one lookup per day, plus the two
            // edge days), so they are never capped.
            let cap = if rollup_actions.is_some() {
                u64::MAX
            } else {
                cap
            };
            // Whole days inside the range are answered from the rollups with two range
            // reads (per day and action, and per actor summed over the range), not one
            // statement per day; only the partial days at the edges are counted from rows.
            let use_rollups = rollup_actions.is_some()
                && (rollup_actions.as_deref() == Some(&[]) || want != Want::Facets);
            let (first_whole, last_whole) = whole_days(filter);
            let mut rolled: HashMap<i64, Vec<(i64, u64)>> = HashMap::new();
            if use_rollups && first_whole <= last_whole {
                let actions = rollup_actions.as_deref().unwrap_or(&[]);
                let action_sql = if actions.is_empty() {
                    String::new()
                } else {
                    format!(
                        "AND action IN (SELECT string_key FROM strings WHERE value IN ({}))",
                        vec!["?"; actions.len()].join(",")
                    )
                };
                let sql = format!(
                    "SELECT day, action, n FROM day_actions
                     WHERE org_key = ? AND day BETWEEN ? AND ? {action_sql}"
                );
                let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
                let mut values = vec![
                    SqlValue::Integer(scope.org_key),
                    SqlValue::Integer(first_whole),
                    SqlValue::Integer(last_whole),
                ];
                values.extend(actions.iter().map(|a| SqlValue::Text(a.clone())));
                let mut rows = stmt.query(params_from_iter(values)).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    let (day, action, n): (i64, i64, i64) = (
                        row.get(0).map_err(backend)?,
                        row.get(1).map_err(backend)?,
                        row.get(2).map_err(backend)?,
                    );
                    rolled.entry(day).or_default().push((action, n as u64));
                }
                if want == Want::Facets {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT actor, sum(n) FROM day_actors
                             WHERE org_key = ?1 AND day BETWEEN ?2 AND ?3 GROUP BY actor",
                        )
                        .map_err(backend)?;
                    let mut rows = stmt
                        .query(params![scope.org_key, first_whole, last_whole])
                        .map_err(backend)?;
                    while let Some(row) = rows.next().map_err(backend)? {
                        let (actor, n): (i64, i64) =
                            (row.get(0).map_err(backend)?, row.get(1).map_err(backend)?);
                        *out.actors.entry(actor).or_default() += n as u64;
                    }
                }
            }
            let direct_sql = format!(
                "SELECT e.action, e.actor, count(*) FROM event_index e {hint} WHERE e.day = ? AND e.org_key = ?
                 AND e.occurred_at BETWEEN ? AND ? AND {sql} GROUP BY e.action, e.actor"
            );
            let count_sql = format!(
                "SELECT count(*) FROM event_index e {hint} WHERE e.day = ? AND e.org_key = ? AND e.occurred_at BETWEEN ? AND ? AND {sql}"
            );
            for day in days(conn, scope, filter, Order::OldestFirst)? {
                let mut day_total = 0u64;
                if use_rollups && (first_whole..=last_whole).contains(&day) {
                    for (action, n) in rolled.get(&day).into_iter().flatten() {
                        day_total += n;
                        if want == Want::Facets {
                            *out.actions.entry(*action).or_default() += n;
                        }
                    }
                } else {
                    let mut values = vec![
                        SqlValue::Integer(day),
                        SqlValue::Integer(scope.org_key),
                        SqlValue::Integer(lo),
                        SqlValue::Integer(hi),
                    ];
                    values.extend(params.iter().cloned());
                    if want == Want::Facets {
                        let mut stmt = conn.prepare_cached(&direct_sql).map_err(backend)?;
                        let mut rows = stmt.query(params_from_iter(values)).map_err(backend)?;
                        while let Some(row) = rows.next().map_err(backend)? {
                            let (action, actor, n): (i64, i64, i64) = (
                                row.get(0).map_err(backend)?,
                                row.get(1).map_err(backend)?,
                                row.get(2).map_err(backend)?,
                            );
                            day_total += n as u64;
                            *out.actions.entry(action).or_default() += n as u64;
                            *out.actors.entry(actor).or_default() += n as u64;
                        }
                    } else {
                        let mut stmt = conn.prepare_cached(&count_sql).map_err(backend)?;
                        let n: i64 = stmt
                            .query_row(params_from_iter(values), |row| row.get(0))
                            .map_err(backend)?;
                        day_total = n as u64;
                    }
                }
                if day_total > 0 {
                    out.per_day.push((day, day_total));
                    out.total += day_total;
                }
                if out.total > cap {
                    out.capped = true;
                    break;
                }
            }
        }
        Plan::Text { fts, sql, params } => {
            // A count stops one past its cap; facets and daily counts need every match.
            let limit = match want {
                Want::Count { cap } if cap < u64::MAX => Some(cap + 1),
                _ => None,
            };
            let range = (scope.pos(0), scope.pos(u64::MAX));
            let hits = text_matches(conn, filter, &fts, &sql, &params, range, limit)?;
            let mut per_day: HashMap<i64, u64> = HashMap::new();
            for hit in &hits {
                *per_day.entry(hit.day).or_default() += 1;
                *out.actions.entry(hit.action).or_default() += 1;
                *out.actors.entry(hit.actor).or_default() += 1;
            }
            out.total = hits.len() as u64;
            out.capped = out.total > cap;
            out.per_day = per_day.into_iter().collect();
            out.per_day.sort_unstable();
        }
        Plan::Scan => {
            let mut keys: Vec<(i64, Event)> = Vec::new();
            scan(conn, scope, filter, Order::OldestFirst, |event| {
                out.total += 1;
                let day = event.body.occurred_at.day();
                match out.per_day.last_mut() {
                    Some((d, n)) if *d == day => *n += 1,
                    _ => out.per_day.push((day, 1)),
                }
                if want == Want::Facets {
                    keys.push((0, event));
                }
                out.capped = out.total > cap;
                !out.capped
            })?;
            // The scan produced events, not dictionary keys: map them back for the facets.
            for (_, event) in keys {
                let action = string_key(conn, &event.body.action_key)?.unwrap_or(0);
                *out.actions.entry(action).or_default() += 1;
                let actor = actor_key(conn, scope, &event.body)?.unwrap_or(0);
                *out.actors.entry(actor).or_default() += 1;
            }
        }
    }
    Ok(out)
}

fn string_key(conn: &Connection, value: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT string_key FROM strings WHERE value = ?1")
        .and_then(|mut stmt| stmt.query_row([value], |row| row.get(0)).optional())
        .map_err(backend)
}

fn actor_key(
    conn: &Connection,
    scope: &OrgScope,
    body: &EventBody,
) -> Result<Option<i64>, StoreError> {
    let Some(kind) = string_key(conn, body.actor_type.as_str())? else {
        return Ok(None);
    };
    conn.prepare_cached(
        "SELECT principal_key FROM principals
         WHERE org_key = ?1 AND kind = ?2 AND ext_id IS ?3 AND email IS ?4 AND name IS ?5",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                scope.org_key,
                kind,
                body.actor_id,
                body.actor_email,
                body.actor_name
            ],
            |row| row.get(0),
        )
        .optional()
    })
    .map_err(backend)
}

/// How many events match, stopping past `cap`.
pub fn count(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    cap: u64,
) -> Result<Count, StoreError> {
    if filter.conditions.is_empty() && filter.from.is_none() && filter.to.is_none() {
        // Everything: seqs run 1, 2, … without a gap after the purged ones, so the head
        // less the purged is the count.
        let n: i64 = conn
            .prepare_cached(
                "SELECT o.head_seq - coalesce(r.purged_through, 0)
                 FROM orgs o LEFT JOIN org_retention r ON r.org_key = o.org_key
                 WHERE o.org_key = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([scope.org_key], |row| row.get(0)))
            .map_err(backend)?;
        return Ok(Count {
            n: n.max(0) as u64,
            exact: true,
        });
    }
    let tally = tally(conn, scope, filter, Want::Count { cap })?;
    let total = tally.total + tail_count(conn, scope, filter)?;
    Ok(if tally.capped || total > cap {
        Count {
            n: cap,
            exact: false,
        }
    } else {
        Count {
            n: total,
            exact: true,
        }
    })
}

/// Events per UTC day.
pub fn daily_counts(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
) -> Result<Vec<(i64, u64)>, StoreError> {
    let mut per_day: std::collections::BTreeMap<i64, u64> =
        tally(conn, scope, filter, Want::Count { cap: u64::MAX })?
            .per_day
            .into_iter()
            .collect();
    for event in tail_matches(conn, scope, filter, Order::OldestFirst)? {
        *per_day.entry(event.body.occurred_at.day()).or_default() += 1;
    }
    Ok(per_day.into_iter().collect())
}

/// Counts per action and per actor.
pub fn facets(
    conn: &Connection,
    scope: &OrgScope,
    filter: &Filter,
    max_each: usize,
) -> Result<Facets, StoreError> {
    let tally = tally(conn, scope, filter, Want::Facets)?;
    let tail = tail_matches(conn, scope, filter, Order::OldestFirst)?;
    let mut action_counts: HashMap<String, u64> = HashMap::with_capacity(tally.actions.len());
    for (key, n) in tally.actions {
        let value: Option<String> = conn
            .prepare_cached("SELECT value FROM strings WHERE string_key = ?1")
            .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
            .map_err(backend)?;
        let value =
            value.ok_or_else(|| StoreError::Corrupt(format!("action key {key} is missing")))?;
        *action_counts.entry(value).or_default() += n;
    }
    for event in &tail {
        *action_counts
            .entry(event.body.action_key.clone())
            .or_default() += 1;
    }
    let mut actions: Vec<(String, u64)> = action_counts.into_iter().collect();
    actions.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    actions.truncate(max_each);

    // Principals with the same id and email but another name are one actor.
    let mut merged: HashMap<(Option<String>, Option<String>), ActorCount> = HashMap::new();
    // Resolve the principals in chunks: one statement per 500 keys, not one per key.
    let keys: Vec<(i64, u64)> = tally.actors.into_iter().collect();
    for chunk in keys.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!("SELECT principal_key, ext_id, email, name FROM principals WHERE principal_key IN ({marks})");
        let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
        let counts: HashMap<i64, u64> = chunk.iter().copied().collect();
        let mut rows = stmt
            .query(params_from_iter(chunk.iter().map(|(key, _)| *key)))
            .map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let key: i64 = row.get(0).map_err(backend)?;
            let (ext_id, email, name): (Option<String>, Option<String>, Option<String>) = (
                row.get(1).map_err(backend)?,
                row.get(2).map_err(backend)?,
                row.get(3).map_err(backend)?,
            );
            let entry = merged
                .entry((ext_id.clone(), email.clone()))
                .or_insert(ActorCount {
                    actor_id: ext_id,
                    actor_email: email,
                    actor_name: None,
                    count: 0,
                });
            entry.count += counts.get(&key).copied().unwrap_or(0);
            if entry.actor_name.is_none() {
                entry.actor_name = name;
            }
        }
    }
    for event in tail {
        let body = event.body;
        let entry = merged
            .entry((body.actor_id.clone(), body.actor_email.clone()))
            .or_insert(ActorCount {
                actor_id: body.actor_id,
                actor_email: body.actor_email,
                actor_name: None,
                count: 0,
            });
        entry.count += 1;
        if entry.actor_name.is_none() {
            entry.actor_name = body.actor_name;
        }
    }
    let mut actors: Vec<ActorCount> = merged.into_values().collect();
    actors.sort_unstable_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.actor_email.cmp(&b.actor_email))
            .then_with(|| a.actor_id.cmp(&b.actor_id))
    });
    actors.truncate(max_each);
    Ok(Facets { actions, actors })
}

/// The chain head recorded for the organization.
pub fn chain_head(conn: &Connection, scope: &OrgScope) -> Result<ChainHead, StoreError> {
    let (seq, hash): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT head_seq, head_hash FROM orgs WHERE org_key = ?1",
            [scope.org_key],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(backend)?;
    Ok(ChainHead {
        seq: seq as u64,
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("head hash is not 32 bytes".into()))?,
    })
}

/// The newest checkpoint of the organization.
pub fn latest_checkpoint(
    conn: &Connection,
    scope: &OrgScope,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let row = conn
        .query_row(
            "SELECT seq, hash, signed_at, key_id, signature FROM checkpoints
             WHERE org_key = ?1 ORDER BY seq DESC, signed_at DESC LIMIT 1",
            [scope.org_key],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Vec<u8>>(4)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?;
    let Some((seq, hash, signed_at, key_id, signature)) = row else {
        return Ok(None);
    };
    let corrupt = || StoreError::Corrupt(format!("checkpoint at seq {seq} is malformed"));
    Ok(Some(SignedCheckpoint {
        checkpoint: Checkpoint {
            org_id: scope.org_id,
            seq: seq as u64,
            hash: hash.try_into().map_err(|_| corrupt())?,
            signed_at: Timestamp::from_millis(signed_at).ok_or_else(corrupt)?,
        },
        key_id,
        signature: signature.try_into().map_err(|_| corrupt())?,
    }))
}
