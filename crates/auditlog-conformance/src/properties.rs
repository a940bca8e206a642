//! Property cases: paging, facets and daily counts equal the reference on random corpora.

use std::sync::Arc;

use auditlog_core::query::{Filter, Order};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use auditlog_store::{Count, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::events::*;
use crate::reference::*;
use crate::support::*;

/// Property: on random corpora with frequent ties, walking random filters page by page (by
/// keyset and by offset) returns exactly the reference answer in order, and counts agree.
pub async fn property_paging_matches_reference(store: Arc<dyn Store>) {
    const ROUNDS: usize = 20;
    const FILTERS_PER_ORG: usize = 4;
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0x5EED_0008);
    let times = tie_heavy_times();
    for round in 0..ROUNDS {
        let corpus =
            RandomCorpus::build(store, &mut rng, &format!("property-{round}"), 300, &times).await;
        let all_events = corpus.all_events();
        for (org, events) in corpus.orgs.iter().zip(&corpus.events) {
            for filter_idx in 0..FILTERS_PER_ORG {
                let filter = random_filter(&mut rng, &all_events, &times);
                let order = if rng.gen_bool(0.5) {
                    Order::NewestFirst
                } else {
                    Order::OldestFirst
                };
                let limit = rng.gen_range(1..=40);
                let cap = rng.gen_range(1..=30);
                let context = format!(
                    "round {round}, filter {filter_idx}, organization {} ({} events): {filter:?}, {order:?}, limit {limit}",
                    org.name,
                    events.len()
                );
                let expected = reference_query(events, &filter, order);
                let by_keyset =
                    walk_keyset(store, org.id, &filter, order, limit, events.len()).await;
                assert_same_events(&expected, &by_keyset, &format!("keyset walk, {context}"));
                let by_offset =
                    walk_offset(store, org.id, &filter, order, limit, events.len()).await;
                assert_same_events(&expected, &by_offset, &format!("offset walk, {context}"));
                assert_eq!(
                    count_all(store, org.id, &filter).await,
                    Count {
                        n: expected.len() as u64,
                        exact: true
                    },
                    "count with cap u64::MAX, {context}"
                );
                let capped = ok(store.count(org.id, &filter, cap).await, "count");
                assert_capped_count(capped, expected.len(), cap, &context);
            }
        }
    }
}

/// Property: facets count actions and actors exactly as the reference does, most frequent
/// first, at most `max_each` of each.
pub async fn facets_match_reference(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0xFACE_7500);
    let times = tie_heavy_times();
    for round in 0..5 {
        let corpus =
            RandomCorpus::build(store, &mut rng, &format!("facets-{round}"), 200, &times).await;
        let all_events = corpus.all_events();
        for (org, events) in corpus.orgs.iter().zip(&corpus.events) {
            for filter_idx in 0..8 {
                let filter = if filter_idx == 0 {
                    Filter::default()
                } else {
                    random_filter(&mut rng, &all_events, &times)
                };
                let max_each = *pick(&mut rng, &[1usize, 2, 3, 5, 1000]);
                let facets = ok(store.facets(org.id, &filter, max_each).await, "facets");
                let context = format!(
                    "round {round}, organization {}, {filter:?}, max_each {max_each}",
                    org.name
                );
                assert_facets(&facets, events, &filter, max_each, &context);
            }
        }
    }
}

/// Property: daily counts are per UTC day, ascending, only days with matching events, and
/// equal the reference, with events on a day's first and last millisecond.
pub async fn daily_counts_match_reference(store: Arc<dyn Store>) {
    let store = &*store;
    let mut rng = StdRng::seed_from_u64(0xDA1_1E5);
    let first_day = base_time().day();
    let times: Vec<Timestamp> = [0, 1, 2, 4, 6]
        .into_iter()
        .flat_map(|day| {
            let start = Timestamp::start_of_day(first_day + day);
            [0, 1, 43_200_000, MS_PER_DAY - 1].map(|ms| start.plus_millis(ms))
        })
        .collect();
    for round in 0..5 {
        let corpus =
            RandomCorpus::build(store, &mut rng, &format!("daily-{round}"), 200, &times).await;
        let all_events = corpus.all_events();
        for (org, events) in corpus.orgs.iter().zip(&corpus.events) {
            for filter_idx in 0..8 {
                let filter = if filter_idx == 0 {
                    Filter::default()
                } else {
                    random_filter(&mut rng, &all_events, &times)
                };
                let got = ok(store.daily_counts(org.id, &filter).await, "daily_counts");
                assert_eq!(
                    got,
                    reference_daily_counts(events, &filter),
                    "daily_counts (day since epoch, count), round {round}, organization {}, {filter:?}",
                    org.name
                );
            }
        }
    }
}
