//! Cases: organizations.

use std::collections::HashSet;
use std::sync::Arc;

use auditlog_core::Timestamp;
use auditlog_store::{NewOrg, Org, Store, StoreError};
use uuid::Uuid;

use crate::support::*;

/// Organizations: create, find by name and by id, list by name, a taken name is a conflict,
/// enrolment can be switched, unknown names and ids are `None`.
pub async fn orgs_create_find_list_enable(store: Arc<dyn Store>) {
    let store = &*store;
    assert_eq!(
        ok(store.list_orgs().await, "list_orgs"),
        Vec::<Org>::new(),
        "a fresh store lists no organizations"
    );
    let before = Timestamp::now().plus_millis(-300_000);
    let specs = [
        ("zeta", "Zeta Corp", true),
        ("alpha", "Alpha — Ålesund ✓", false),
        ("mid-org", "Mid Org", true),
    ];
    let mut created = Vec::new();
    for (name, display_name, enabled) in specs {
        let new = NewOrg {
            name: name.to_string(),
            display_name: display_name.to_string(),
            audit_logs_enabled: enabled,
        };
        let org = ok(store.create_org(new).await, format!("create_org({name})"));
        assert_eq!(org.name, name, "create_org returned another name");
        assert_eq!(
            org.display_name, display_name,
            "create_org returned another display name"
        );
        assert_eq!(
            org.audit_logs_enabled, enabled,
            "create_org returned another enrolment"
        );
        assert!(!org.id.is_nil(), "create_org returned the nil id");
        let after = Timestamp::now().plus_millis(300_000);
        assert!(
            before <= org.created_at && org.created_at <= after,
            "org created_at {} is not the time of creation",
            org.created_at
        );
        created.push(org);
    }
    let ids: HashSet<Uuid> = created.iter().map(|o| o.id).collect();
    assert_eq!(
        ids.len(),
        created.len(),
        "organizations got the same id: {created:?}"
    );

    for org in &created {
        let by_name = ok(store.find_org(&org.name).await, "find_org(name)");
        assert_eq!(
            by_name.as_ref(),
            Some(org),
            "find_org by name {:?}",
            org.name
        );
        let by_id = ok(store.find_org(&org.id.to_string()).await, "find_org(id)");
        assert_eq!(by_id.as_ref(), Some(org), "find_org by id {}", org.id);
    }

    let mut by_name = created.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        ok(store.list_orgs().await, "list_orgs"),
        by_name,
        "list_orgs lists every organization, by name"
    );

    let duplicate = NewOrg {
        name: "alpha".to_string(),
        display_name: "Another Alpha".to_string(),
        audit_logs_enabled: true,
    };
    match store.create_org(duplicate).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("creating a second organization named \"alpha\" gave {other:?}, expected Err(StoreError::Conflict)")}
    assert_eq!(
        ok(store.list_orgs().await, "list_orgs"),
        by_name,
        "a refused duplicate changed the organizations"
    );

    let alpha = &created[1];
    let enabled = ok(
        store.set_org_enabled(alpha.id, true).await,
        "set_org_enabled",
    );
    let expected = Org {
        audit_logs_enabled: true,
        ..alpha.clone()
    };
    assert_eq!(
        enabled.as_ref(),
        Some(&expected),
        "set_org_enabled(true) returns the updated organization"
    );
    assert_eq!(
        ok(store.find_org("alpha").await, "find_org").as_ref(),
        Some(&expected),
        "set_org_enabled(true) is kept"
    );
    let disabled = ok(
        store.set_org_enabled(alpha.id, false).await,
        "set_org_enabled",
    );
    assert_eq!(
        disabled.as_ref(),
        Some(alpha),
        "set_org_enabled(false) returns the updated organization"
    );
    assert_eq!(
        ok(store.find_org(&alpha.id.to_string()).await, "find_org").as_ref(),
        Some(alpha),
        "set_org_enabled(false) is kept"
    );
    assert_eq!(
        ok(store.find_org("zeta").await, "find_org").as_ref(),
        Some(&created[0]),
        "set_org_enabled changed another organization"
    );

    let unknown = Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef);
    assert_eq!(
        ok(
            store.set_org_enabled(unknown, true).await,
            "set_org_enabled(unknown)"
        ),
        None,
        "set_org_enabled of an unknown organization is None"
    );
    for missing in ["nope", "alph", "", &unknown.to_string()] {
        assert_eq!(
            ok(
                store.find_org(missing).await,
                format!("find_org({missing:?})")
            ),
            None,
            "find_org({missing:?}) finds nothing"
        );
    }
}
