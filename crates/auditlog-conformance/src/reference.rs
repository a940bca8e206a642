//! The reference semantics the property cases compare a store with: an in-memory filter
//! ([`reference_matches`]) and query, and random filters and free text drawn from a corpus.

use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position};
use auditlog_core::text::{event_words, matches, query_words};
use auditlog_core::{Event, EventBody, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;

use crate::events::*;

// ---------------------------------------------------------------------------------------
// The reference semantics.
// ---------------------------------------------------------------------------------------

/// Whether `event` matches `filter`, evaluated in memory from the documentation of
/// `auditlog_core::query`: `AnyOf` is "the column equals one of the values" (`actor` tests
/// `actor_id` and `actor_email`, `target` tests `target_id` and `target_email`,
/// `actor_type` its wire name), `Text` is [`auditlog_core::text::matches`] over the event's
/// words, conditions combine by `combine` (no conditions select everything), and `from` and
/// `to` are inclusive bounds on `occurred_at`, always ANDed.
pub fn reference_matches(filter: &Filter, event: &Event) -> bool {
    let body = &event.body;
    // `Option::is_none_or` would read better but is newer than the workspace's MSRV.
    let in_range = filter.from.into_iter().all(|from| body.occurred_at >= from)
        && filter.to.into_iter().all(|to| body.occurred_at <= to);
    if !in_range {
        return false;
    }
    if filter.conditions.is_empty() {
        return true;
    }
    let mut results = filter.conditions.iter().map(|condition| match condition {
        Condition::AnyOf { column, values } => column_values(*column, body)
            .into_iter()
            .any(|value| values.iter().any(|wanted| wanted == value)),
        Condition::Text(text) => matches(&event_words(body), &query_words(text)),
    });
    match filter.combine {
        Combine::And => results.all(|matched| matched),
        Combine::Or => results.any(|matched| matched),
    }
}

/// The values a column has for an event: none, one, or (for `actor` and `target`) two.
pub(crate) fn column_values(column: Column, body: &EventBody) -> Vec<&str> {
    let fields: [Option<&str>; 2] = match column {
        Column::ActionKey => [Some(body.action_key.as_str()), None],
        Column::ActionVerb => [body.action_verb.as_deref(), None],
        Column::ActorId => [body.actor_id.as_deref(), None],
        Column::ActorEmail => [body.actor_email.as_deref(), None],
        Column::ActorType => [Some(body.actor_type.as_str()), None],
        Column::Actor => [body.actor_id.as_deref(), body.actor_email.as_deref()],
        Column::TargetId => [body.target_id.as_deref(), None],
        Column::TargetEmail => [body.target_email.as_deref(), None],
        Column::TargetType => [body.target_type.as_deref(), None],
        Column::Target => [body.target_id.as_deref(), body.target_email.as_deref()],
        Column::ServiceName => [body.service_name.as_deref(), None],
        Column::Impersonator => match &body.extensions.impersonator {
            Some(real) => [real.id.as_deref(), real.email.as_deref()],
            None => [None, None],
        },
        Column::Outcome => [Some(body.extensions.outcome.as_str()), None],
    };
    fields.into_iter().flatten().collect()
}

/// The events of `events` that match `filter`, in `order`.
pub(crate) fn reference_query(events: &[Event], filter: &Filter, order: Order) -> Vec<Event> {
    let mut selected: Vec<Event> = events
        .iter()
        .filter(|event| reference_matches(filter, event))
        .cloned()
        .collect();
    selected.sort_by_key(sort_key);
    if order == Order::NewestFirst {
        selected.reverse();
    }
    selected
}

pub(crate) fn sort_key(event: &Event) -> (Timestamp, u64) {
    (event.body.occurred_at, event.seq)
}

pub(crate) fn position(event: &Event) -> Position {
    Position {
        occurred_at: event.body.occurred_at,
        seq: event.seq,
    }
}

// ---------------------------------------------------------------------------------------
// Random filters and text.
// ---------------------------------------------------------------------------------------

/// A random filter whose values are mostly drawn from `corpus`, with time bounds near
/// `times` (exactly on them, or one millisecond either side).
pub(crate) fn random_filter(rng: &mut StdRng, corpus: &[Event], times: &[Timestamp]) -> Filter {
    let n_conditions = *pick(rng, &[0, 1, 1, 2, 2, 3]);
    let conditions = (0..n_conditions)
        .map(|_| random_condition(rng, corpus))
        .collect();
    let combine = if rng.gen_bool(0.5) {
        Combine::And
    } else {
        Combine::Or
    };
    let from = rng.gen_bool(0.3).then(|| near(rng, times));
    let to = rng.gen_bool(0.3).then(|| near(rng, times));
    Filter {
        conditions,
        combine,
        from,
        to,
    }
}

pub(crate) fn near(rng: &mut StdRng, times: &[Timestamp]) -> Timestamp {
    let at = *pick(rng, times);
    at.plus_millis(*pick(rng, &[0, 0, -1, 1]))
}

pub(crate) fn random_condition(rng: &mut StdRng, corpus: &[Event]) -> Condition {
    if rng.gen_bool(0.25) {
        return Condition::Text(random_text(rng, corpus));
    }
    let column = *pick(rng, &Column::ALL);
    let n_values = rng.gen_range(1..=3);
    let values = (0..n_values)
        .map(|_| {
            let event = pick(rng, corpus);
            let present = column_values(column, &event.body);
            if present.is_empty() || rng.gen_bool(0.08) {
                "no-such-value@example.com".to_string()
            } else {
                pick(rng, &present).to_string()
            }
        })
        .collect();
    Condition::AnyOf { column, values }
}

/// A search string made of prefixes of one event's words (sometimes upper-cased, sometimes
/// with a word no event has, sometimes from the fields that are not searchable), joined by
/// punctuation or spaces.
pub(crate) fn random_text(rng: &mut StdRng, corpus: &[Event]) -> String {
    let event = pick(rng, corpus);
    if rng.gen_bool(0.08) {
        // user_agent and request_id are not among an event's searchable words.
        let unsearchable = [&event.body.user_agent, &event.body.request_id];
        if let Some(text) = pick(rng, &unsearchable) {
            return text.clone();
        }
    }
    let words = event_words(&event.body);
    let n_words = rng.gen_range(1..=3);
    let parts: Vec<String> = (0..n_words)
        .map(|_| {
            if rng.gen_bool(0.07) {
                return "zqxj".to_string();
            }
            let chars: Vec<char> = pick(rng, &words).chars().collect();
            let len = rng.gen_range(1..=chars.len());
            let prefix: String = chars[..len].iter().collect();
            if rng.gen_bool(0.3) {
                prefix.to_uppercase()
            } else {
                prefix
            }
        })
        .collect();
    parts.join(*pick(rng, &[" ", "-", ".", "  ", "/", ", "]))
}
