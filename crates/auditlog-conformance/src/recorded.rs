//! Cases: account changes made together with the events that record them (`Store::apply`).

use std::sync::Arc;

use auditlog_store::{Append, Change, Changed, Recorder, Role, Store, StoreError, User};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

/// A change and its record commit together or not at all: a recorder that refuses, and a
/// record the store cannot append (an unknown organization), each leave no user, no role and
/// no event behind; a recorder that succeeds stores the change and its events, chained, and
/// sees what the changes did (the role before, the user created).
pub async fn changes_commit_with_their_record(store: Arc<dyn Store>) {
    let store = &*store;
    let org = make_org(store, "acme").await;
    let user = |n: u32, email: &str| User {
        id: fixed_id(USER_IDS, n),
        email: email.to_string(),
        display_name: format!("user {n}"),
        password_hash: None,
        created_at: base_time(),
    };
    let add = |user: &User| {
        vec![
            Change::CreateUser(user.clone()),
            Change::SetRole {
                org_id: org.id,
                user_id: user.id,
                role: Some(Role::Admin),
            },
        ]
    };
    let record_for = |org_id: Uuid| -> Recorder {
        Box::new(move |_: &[Changed]| {
            Ok(vec![Append {
                org_id,
                body: body(
                    "organization_user_added",
                    "admin@acme.test",
                    base_time().as_millis(),
                ),
            }])
        })
    };

    // The recorder refuses: nothing happens.
    let mallory = user(1, "mallory@acme.test");
    let refused: Recorder = Box::new(|_: &[Changed]| Err("the event is invalid".to_string()));
    match store.apply(add(&mallory), Some(refused)).await {
        Err(StoreError::Unrecorded(message)) => assert!(
            message.contains("the event is invalid"),
            "Unrecorded carries the recorder's reason, got {message:?}"
        ),
        other => panic!("a refused record must fail the change with Unrecorded, got {other:?}"),
    }
    let found = ok(store.find_user("mallory@acme.test").await, "find_user");
    assert!(
        found.is_none(),
        "a change whose record was refused must not be stored: {found:?}"
    );

    // The record names an organization that does not exist: the append fails, and with it
    // the change.
    let missing = Uuid::from_u128(0xdead);
    let result = store.apply(add(&mallory), Some(record_for(missing))).await;
    assert!(
        matches!(result, Err(StoreError::UnknownOrg(id)) if id == missing),
        "a record that cannot be appended must fail the change, got {result:?}"
    );
    let found = ok(store.find_user("mallory@acme.test").await, "find_user");
    assert!(
        found.is_none(),
        "a change whose record failed to append must not be stored"
    );
    let members = ok(store.members(org.id).await, "members");
    assert!(
        members.is_empty(),
        "no role may survive a failed record: {members:?}"
    );
    let events = ok(store.events_by_seq(org.id, 0, 10).await, "events_by_seq");
    assert!(
        events.is_empty(),
        "no event may survive a failed change: {events:?}"
    );

    // A failing change (a taken email) stores no record either.
    let alice = user(2, "alice@acme.test");
    let applied = ok(
        store.apply(add(&alice), Some(record_for(org.id))).await,
        "apply(add alice)",
    );
    let taken = user(3, "ALICE@acme.test");
    let result = store
        .apply(vec![Change::CreateUser(taken)], Some(record_for(org.id)))
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "a taken email is a conflict, got {result:?}"
    );

    // The successful one: the change, what it did, and its event.
    assert!(
        matches!(&applied.changed[..], [Changed::User(u), Changed::Role(None)] if u.email == "alice@acme.test"),
        "apply answers what each change did, in order: {:?}",
        applied.changed
    );
    assert_eq!(applied.events.len(), 1, "one record, one event");
    assert_eq!(
        applied.events[0].seq, 1,
        "the record is the organization's first event"
    );
    let events = ok(store.events_by_seq(org.id, 0, 10).await, "events_by_seq");
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![applied.events[0].id],
        "exactly the record of the successful change is stored"
    );
    let role = ok(store.role_of(org.id, alice.id).await, "role_of");
    assert_eq!(
        role,
        Some(Role::Admin),
        "the change was stored with its record"
    );

    // The recorder sees the role before: a second SetRole reports Admin.
    let demote = vec![Change::SetRole {
        org_id: org.id,
        user_id: alice.id,
        role: Some(Role::Member),
    }];
    let seen: Recorder = Box::new(|changed: &[Changed]| match changed {
        [Changed::Role(Some(Role::Admin))] => Ok(Vec::new()),
        other => Err(format!("the recorder saw {other:?}")),
    });
    let applied = ok(store.apply(demote, Some(seen)).await, "apply(demote)");
    assert!(applied.events.is_empty(), "a recorder may record nothing");
    let role = ok(store.role_of(org.id, alice.id).await, "role_of");
    assert_eq!(role, Some(Role::Member));
}
