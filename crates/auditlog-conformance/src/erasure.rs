//! Cases: legal holds and the erasure of a data subject (`Change::PlaceHold`,
//! `Change::LiftHold`, `Change::EraseSubject`).

use std::sync::Arc;

use auditlog_core::chain::leaf_hash;
use auditlog_core::entry::{self, Subject};
use auditlog_core::query::{Column, Condition, Filter};
use auditlog_store::{Change, Changed, Erasure, LegalHold, Store, StoreError};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

fn hold(org_id: Uuid, n: u32, subject: Option<&str>) -> LegalHold {
    LegalHold {
        id: fixed_id(HOLD_IDS, n),
        org_id,
        subject: subject.map(String::from),
        reason: format!("case {n}"),
        placed_by: "counsel@acme.test".to_string(),
        placed_at: base_time(),
        lifted_at: None,
        lifted_by: None,
    }
}

const HOLD_IDS: u32 = 0x401d_0000;

async fn erase(
    store: &dyn Store,
    org_id: Uuid,
    subject: &Subject,
    seqs: Vec<u64>,
) -> Result<Erasure, StoreError> {
    let change = Change::EraseSubject {
        org_id,
        subject: subject.clone(),
        seqs,
    };
    match store.apply(vec![change], None).await?.changed.as_slice() {
        [Changed::Erased(erasure)] => Ok(*erasure),
        other => panic!("EraseSubject answered {other:?}"),
    }
}

/// A hold of the organization, and a hold of one person, each refuse that person's erasure
/// (and only theirs); lifted, they stop protecting. An erasure deletes the person's fields
/// from the events that name them as actor or target and from no other event, keeps every
/// hash and leaf, and leaves the chain verifying; the fields are gone from reads, filters
/// and facets, the ids stay, and another organization's events are untouched.
pub async fn holds_protect_and_erasure_keeps_the_chain(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "acme").await;
    let other = make_org(store, "globex").await;
    let mut bodies = Vec::new();
    for i in 0..30 {
        let mut body = body(
            "organization_user_added",
            if i % 3 == 0 {
                "zoe@acme.test"
            } else {
                "admin@acme.test"
            },
            base_time().as_millis() + i * 1000,
        );
        if i % 5 == 0 {
            body.target_id = Some("user-zoe".to_string());
            body.target_email = Some("zoe@acme.test".to_string());
            body.target_name = Some("Zoe".to_string());
        }
        bodies.push(body);
    }
    let before = append_all(store, &org, bodies.clone(), 10).await;
    let theirs = append_all(store, &other, bodies, 10).await;
    let zoe = Subject {
        email: Some("ZOE@acme.test".to_string()),
        id: None,
    };
    let all_seqs: Vec<u64> = before.iter().map(|e| e.seq).collect();

    // A hold of the whole organization protects her; so does a hold of her id.
    for (n, subject) in [(1, None), (2, Some("user-zoe"))] {
        let placed = ok(
            store
                .apply(vec![Change::PlaceHold(hold(org.id, n, subject))], None)
                .await,
            "place a hold",
        );
        assert!(matches!(
            placed.changed.as_slice(),
            [Changed::Hold(Some(_))]
        ));
        match erase(store, org.id, &zoe, all_seqs.clone()).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("a hold ({subject:?}) must refuse the erasure, got {other:?}"),
        }
        let lift = Change::LiftHold {
            org_id: org.id,
            id: fixed_id(HOLD_IDS, n),
            at: base_time(),
            by: "counsel@acme.test".into(),
        };
        let lifted = ok(store.apply(vec![lift.clone()], None).await, "lift");
        assert!(
            matches!(lifted.changed.as_slice(), [Changed::Hold(Some(h))] if h.lifted_at.is_some()),
            "lifting a live hold reports it lifted: {:?}",
            lifted.changed
        );
        let again = ok(store.apply(vec![lift], None).await, "lift again");
        assert!(
            matches!(again.changed.as_slice(), [Changed::Hold(None)]),
            "a lifted hold cannot be lifted again"
        );
    }
    // Someone else's hold does not protect her, and a hold is per organization.
    ok(
        store
            .apply(
                vec![Change::PlaceHold(hold(org.id, 3, Some("bob@acme.test")))],
                None,
            )
            .await,
        "place a hold",
    );
    ok(
        store
            .apply(vec![Change::PlaceHold(hold(other.id, 4, None))], None)
            .await,
        "place a hold",
    );
    let holds = ok(store.legal_holds(org.id).await, "legal_holds");
    assert_eq!(holds.len(), 3, "two lifted holds and a live one: {holds:?}");
    assert_eq!(
        holds.iter().filter(|h| h.lifted_at.is_none()).count(),
        1,
        "{holds:?}"
    );

    let erasure = ok(erase(store, org.id, &zoe, all_seqs).await, "erase");
    // As actor in i % 3 == 0 (10 events), as target in i % 5 == 0 (6), both in 2.
    assert_eq!(erasure.events, 14, "{erasure:?}");
    assert_eq!(erasure.unerasable, 0);
    let after = verified_chain(store, org.id).await;
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.hash, new.hash, "an erasure keeps every hash");
        assert_eq!(
            leaf_hash(old),
            leaf_hash(new),
            "an erasure keeps every leaf"
        );
        let named = |e: &auditlog_core::Event| {
            e.body.actor_email.as_deref() == Some("zoe@acme.test")
                || e.body.target_email.as_deref() == Some("zoe@acme.test")
        };
        assert!(!named(new), "seq {}: her email is still there", new.seq);
        if !named(old) {
            assert_eq!(old.body, new.body, "seq {}: not hers, unchanged", old.seq);
            continue;
        }
        let erased = entry::erased_fields(&new.entry);
        if old.body.actor_email.as_deref() == Some("zoe@acme.test") {
            assert!(new.body.actor_name.is_none() && new.body.ip_address.is_none());
            assert!(erased.contains(&"actor_email") && erased.contains(&"ip_address"));
            assert_eq!(new.body.actor_id.as_deref(), Some("user-zoe"), "ids stay");
        } else {
            assert_eq!(
                new.body.actor_email, old.body.actor_email,
                "the actor was not her"
            );
            assert_eq!(new.body.ip_address, old.body.ip_address);
        }
        if old.body.target_email.is_some() {
            assert!(new.body.target_name.is_none() && erased.contains(&"target_email"));
        }
        let got = ok(store.get_event(org.id, new.id).await, "get_event").expect("still there");
        assert_eq!(got.body, new.body, "get_event reads the erased event");
    }
    ok(store.wait_indexed().await, "wait_indexed");
    let by_email = Filter {
        conditions: vec![Condition::AnyOf {
            column: Column::Actor,
            values: vec!["zoe@acme.test".into()],
        }],
        ..Filter::default()
    };
    assert_eq!(
        count_all(store, org.id, &by_email).await.n,
        0,
        "found by her email"
    );
    let by_id = Filter {
        conditions: vec![Condition::AnyOf {
            column: Column::Actor,
            values: vec!["user-zoe".into()],
        }],
        ..Filter::default()
    };
    assert_eq!(
        count_all(store, org.id, &by_id).await.n,
        10,
        "her events, by id"
    );
    let facets = ok(store.facets(org.id, &Filter::default(), 10).await, "facets");
    assert!(
        facets
            .actors
            .iter()
            .all(|a| a.actor_email.as_deref() != Some("zoe@acme.test")),
        "facets still show her email: {:?}",
        facets.actors
    );
    let total: u64 = facets.actors.iter().map(|a| a.count).sum();
    assert_eq!(
        total, 30,
        "facets count every event once: {:?}",
        facets.actors
    );
    // The other organization's events are untouched, and a second erasure finds nothing.
    let theirs_after = verified_chain(store, other.id).await;
    for (old, new) in theirs.iter().zip(&theirs_after) {
        assert_eq!(old.body, new.body, "another organization's event changed");
    }
    let seqs = after.iter().map(|e| e.seq).collect();
    let again = ok(erase(store, org.id, &zoe, seqs).await, "erase again");
    assert_eq!(again, Erasure::default(), "nothing of hers is left");
}
