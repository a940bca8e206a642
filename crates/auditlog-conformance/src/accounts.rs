//! Cases: users, roles and service accounts.

use std::sync::Arc;

use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use auditlog_store::{
    Credential, CredentialKind, Org, Role, ServiceAccount, Store, StoreError, User,
};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

/// Users: the email is stored lowercase and is unique in any case; `find_user` finds by
/// email in any case and by id; `set_password` sets, changes and clears one user's hash.
pub async fn users_create_find_password(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let specs = [
        User {
            id: fixed_id(USER_IDS, 1),
            email: "Alice.Smith@Example.COM".to_string(),
            display_name: "Alice Smith".to_string(),
            password_hash: None,
            created_at: ts(t0),
        },
        User {
            id: fixed_id(USER_IDS, 2),
            email: "bob@example.org".to_string(),
            display_name: "Bob Jones — Ops".to_string(),
            password_hash: Some(PASSWORD_HASHES[0].to_string()),
            created_at: ts(t0 + 1),
        },
        User {
            id: fixed_id(USER_IDS, 3),
            email: "ÉLODIE@Example.fr".to_string(),
            display_name: "Élodie Été".to_string(),
            password_hash: None,
            created_at: ts(t0 + MS_PER_DAY + 999),
        },
    ];
    let mut users = Vec::new();
    for spec in specs {
        users.push(create_user_ok(store, spec).await);
    }
    assert_eq!(
        users[0].email, "alice.smith@example.com",
        "the email is stored lowercase"
    );
    assert_eq!(
        users[2].email, "élodie@example.fr",
        "a non-ASCII email is stored lowercase"
    );

    let check_all = |users: Vec<User>, context: &'static str| async move {
        for user in &users {
            let keys = [
                user.email.clone(),
                user.email.to_uppercase(),
                capitalized(&user.email),
                user.id.to_string(),
            ];
            for key in keys {
                assert_eq!(
                    find_user_ok(store, &key).await.as_ref(),
                    Some(user),
                    "{context}: find_user({key:?})"
                );
            }
        }
    };
    check_all(users.clone(), "after create_user").await;

    let duplicates = [
        (10, "alice.smith@example.com"),
        (11, "ALICE.SMITH@EXAMPLE.COM"),
        (12, "Bob@Example.org"),
        (13, "élodie@example.FR"),
        (14, "Élodie@example.fr"),
    ];
    for (n, email) in duplicates {
        let duplicate = User {
            id: fixed_id(USER_IDS, n),
            email: email.to_string(),
            display_name: "Impostor".to_string(),
            password_hash: Some(PASSWORD_HASHES[2].to_string()),
            created_at: ts(t0 + 100),
        };
        expect_conflict(
            store.create_user(duplicate).await,
            &format!("create_user with the taken email {email:?}"),
        );
        assert_eq!(
            find_user_ok(store, &fixed_id(USER_IDS, n).to_string()).await,
            None,
            "the refused duplicate {email:?} was stored anyway"
        );
    }
    check_all(users.clone(), "after refused duplicates").await;

    let unknown_id = fixed_id(USER_IDS, 99).to_string();
    for missing in [
        "carol@example.com",
        "alice.smith@example",
        "alice",
        "",
        unknown_id.as_str(),
    ] {
        assert_eq!(
            find_user_ok(store, missing).await,
            None,
            "find_user({missing:?}) finds nothing"
        );
    }

    // Set a password where there was none, change one, clear one.
    let steps: [(usize, Option<&str>); 4] = [
        (0, Some(PASSWORD_HASHES[1])),
        (0, Some(PASSWORD_HASHES[2])),
        (1, None),
        (0, None),
    ];
    for (step, (user_idx, hash)) in steps.into_iter().enumerate() {
        let user_id = users[user_idx].id;
        ok(
            store.set_password(user_id, hash.map(str::to_string)).await,
            format!("set_password step {step}"),
        );
        users[user_idx].password_hash = hash.map(str::to_string);
        assert_eq!(
            find_user_ok(store, &user_id.to_string()).await.as_ref(),
            Some(&users[user_idx]),
            "set_password step {step} ({hash:?}) is kept"
        );
        check_all(users.clone(), "after set_password (other users unchanged)").await;
    }
}

/// Roles: `set_role` adds, changes and removes a membership and returns the role before;
/// `role_of`, `memberships` (by organization name) and `members` (by email) agree with it;
/// an unknown organization is `UnknownOrg`; a role in one organization says nothing about
/// another.
pub async fn roles_set_list_and_isolate(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    // Created out of name order, so that `memberships` has to sort.
    let zulu = make_org(store, "zulu-roles").await;
    let alpha = make_org(store, "alpha-roles").await;
    let mike = make_org(store, "mike-roles").await;
    // Ids, emails and display names sort three different ways: `members` goes by email.
    let mut users = Vec::new();
    for (n, email, display_name) in [
        (1, "carol@example.com", "Aaron Carol"),
        (2, "Alice@Example.com", "Zed Alice"),
        (3, "bob@example.org", "Mid Bob"),
    ] {
        let user = User {
            id: fixed_id(USER_IDS, n),
            email: email.to_string(),
            display_name: display_name.to_string(),
            password_hash: None,
            created_at: ts(t0 + i64::from(n)),
        };
        users.push(create_user_ok(store, user).await);
    }
    let [carol, alice, bob] = [&users[0], &users[1], &users[2]];

    let set = |org: &Org, user: &User, role: Option<Role>| {
        let what = format!("set_role({}, {}, {role:?})", org.name, user.email);
        let (org_id, user_id) = (org.id, user.id);
        async move { ok(store.set_role(org_id, user_id, role).await, what) }
    };
    let role_of = |org: &Org, user: &User| {
        let what = format!("role_of({}, {})", org.name, user.email);
        let (org_id, user_id) = (org.id, user.id);
        async move { ok(store.role_of(org_id, user_id).await, what) }
    };
    let memberships = |user: &User| {
        let what = format!("memberships({})", user.email);
        let user_id = user.id;
        async move { ok(store.memberships(user_id).await, what) }
    };
    let members = |org: &Org| {
        let what = format!("members({})", org.name);
        let org_id = org.id;
        async move { ok(store.members(org_id).await, what) }
    };

    for org in [&zulu, &alpha, &mike] {
        assert!(
            members(org).await.is_empty(),
            "a new organization has members"
        );
        for user in &users {
            assert_eq!(role_of(org, user).await, None, "a new user has a role");
        }
    }
    for user in &users {
        assert!(
            memberships(user).await.is_empty(),
            "a new user has memberships"
        );
    }

    // Add.
    assert_eq!(
        set(&zulu, alice, Some(Role::Admin)).await,
        None,
        "adding a member returns no previous role"
    );
    assert_eq!(set(&mike, alice, Some(Role::Member)).await, None);
    assert_eq!(set(&alpha, alice, Some(Role::Member)).await, None);
    assert_eq!(set(&zulu, carol, Some(Role::Admin)).await, None);
    assert_eq!(set(&zulu, bob, Some(Role::Member)).await, None);
    assert_eq!(set(&alpha, carol, Some(Role::Member)).await, None);
    assert_eq!(role_of(&zulu, alice).await, Some(Role::Admin));
    assert_eq!(role_of(&alpha, alice).await, Some(Role::Member));

    // Change, and set the same role again.
    assert_eq!(
        set(&zulu, alice, Some(Role::Member)).await,
        Some(Role::Admin),
        "changing a role returns the one before"
    );
    assert_eq!(role_of(&zulu, alice).await, Some(Role::Member));
    assert_eq!(
        set(&zulu, alice, Some(Role::Member)).await,
        Some(Role::Member),
        "setting the same role again returns it"
    );
    assert_eq!(
        set(&alpha, alice, Some(Role::Admin)).await,
        Some(Role::Member),
        "changing a role returns the one before"
    );

    assert_eq!(
        memberships(alice).await,
        vec![
            (alpha.clone(), Role::Admin),
            (mike.clone(), Role::Member),
            (zulu.clone(), Role::Member),
        ],
        "memberships lists every organization of the user, by name, with its role"
    );
    assert_eq!(
        members(&zulu).await,
        vec![
            (alice.clone(), Role::Member),
            (bob.clone(), Role::Member),
            (carol.clone(), Role::Admin),
        ],
        "members lists every member of the organization, by email, with its role"
    );

    // Tenant isolation: a role in one organization says nothing about another.
    assert_eq!(
        role_of(&alpha, bob).await,
        None,
        "bob is a member of zulu only, yet has a role in alpha"
    );
    assert_eq!(role_of(&mike, bob).await, None);
    assert_eq!(
        memberships(bob).await,
        vec![(zulu.clone(), Role::Member)],
        "memberships of bob"
    );
    assert_eq!(
        role_of(&zulu, carol).await,
        Some(Role::Admin),
        "carol is admin of zulu and member of alpha"
    );
    assert_eq!(role_of(&alpha, carol).await, Some(Role::Member));
    assert_eq!(role_of(&mike, carol).await, None);
    assert_eq!(
        members(&alpha).await,
        vec![(alice.clone(), Role::Admin), (carol.clone(), Role::Member)],
        "members of alpha"
    );

    // Remove.
    assert_eq!(
        set(&mike, alice, None).await,
        Some(Role::Member),
        "removing a member returns the role before"
    );
    assert_eq!(
        role_of(&mike, alice).await,
        None,
        "a removed member keeps a role"
    );
    assert_eq!(
        set(&mike, alice, None).await,
        None,
        "removing a non-member returns no previous role"
    );
    assert!(members(&mike).await.is_empty(), "mike has no members left");
    assert_eq!(
        set(&alpha, carol, None).await,
        Some(Role::Member),
        "removing carol from alpha"
    );
    assert_eq!(
        role_of(&zulu, carol).await,
        Some(Role::Admin),
        "removing carol from alpha changed her role in zulu"
    );
    assert_eq!(
        memberships(carol).await,
        vec![(zulu.clone(), Role::Admin)],
        "memberships of carol after leaving alpha"
    );
    assert_eq!(
        memberships(alice).await,
        vec![(alpha.clone(), Role::Admin), (zulu.clone(), Role::Member)],
        "memberships of alice after leaving mike"
    );

    // An unknown organization.
    let unknown = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);
    for role in [Some(Role::Admin), None] {
        match store.set_role(unknown, alice.id, role).await {
            Err(StoreError::UnknownOrg(id)) => assert_eq!(
                id, unknown,
                "set_role: UnknownOrg names another organization"
            ),
            other => panic!(
                "set_role({unknown}, alice, {role:?}) for an unknown organization gave {other:?}, expected Err(StoreError::UnknownOrg)"
            )}
    }
    assert_eq!(
        ok(store.role_of(unknown, alice.id).await, "role_of(unknown)"),
        None,
        "role_of in an unknown organization"
    );
    assert!(
        ok(store.members(unknown).await, "members(unknown)").is_empty(),
        "members of an unknown organization"
    );
    assert_eq!(
        memberships(alice).await,
        vec![(alpha.clone(), Role::Admin), (zulu.clone(), Role::Member)],
        "a refused set_role changed alice's memberships"
    );
}

/// Service accounts: create (a taken client id is a conflict), find by client id, list per
/// organization by name, rename and delete only within their organization; deleting revokes
/// the account's credentials at the given time.
pub async fn service_accounts_lifecycle(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let a = make_org(store, "accounts-a").await;
    let b = make_org(store, "accounts-b").await;
    let account = |n: u32, org: &Org, name: &str, client_id: &str| ServiceAccount {
        id: fixed_id(ACCOUNT_IDS, n),
        org_id: org.id,
        name: name.to_string(),
        client_id: client_id.to_string(),
        secret_hash: fake_hash(n as u8),
        created_at: ts(t0 + i64::from(n) * 1000),
    };
    // Created out of name order.
    let specs = [
        account(1, &a, "deploy-bot", "sa_01HZX3DEPLOY"),
        account(2, &a, "audit-exporter", "sa_01HZX3EXPORT"),
        account(3, &b, "ci", "sa_01HZX3CI"),
        account(4, &a, "backup", "sa_01HZX3BACKUP"),
    ];
    let mut accounts = Vec::new();
    for spec in specs {
        let created = ok(
            store.create_service_account(spec.clone()).await,
            format!("create_service_account({})", spec.name),
        );
        assert_eq!(created, spec, "create_service_account returns the account");
        accounts.push(created);
    }
    let [deploy, exporter, ci, backup] = [
        accounts[0].clone(),
        accounts[1].clone(),
        accounts[2].clone(),
        accounts[3].clone(),
    ];

    let by_client_id = |client_id: String| async move {
        ok(
            store.service_account_by_client_id(&client_id).await,
            format!("service_account_by_client_id({client_id:?})"),
        )
    };
    let list = |org: &Org| {
        let what = format!("service_accounts({})", org.name);
        let org_id = org.id;
        async move { ok(store.service_accounts(org_id).await, what) }
    };

    for account in &accounts {
        assert_eq!(
            by_client_id(account.client_id.clone()).await.as_ref(),
            Some(account),
            "service_account_by_client_id finds {}",
            account.name
        );
    }
    for missing in ["sa_nope", "", "SA_01HZX3CI", "sa_01HZX3C"] {
        assert_eq!(
            by_client_id(missing.to_string()).await,
            None,
            "service_account_by_client_id({missing:?}) finds nothing"
        );
    }
    assert_eq!(
        list(&a).await,
        vec![exporter.clone(), backup.clone(), deploy.clone()],
        "service_accounts of A, by name"
    );
    assert_eq!(list(&b).await, vec![ci.clone()], "service_accounts of B");
    let unknown_org = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);
    assert!(
        ok(
            store.service_accounts(unknown_org).await,
            "service_accounts(unknown)"
        )
        .is_empty(),
        "service_accounts of an unknown organization"
    );

    // A taken client id, in the same or another organization.
    for (n, org) in [(5, &b), (6, &a)] {
        let duplicate = account(n, org, "impostor", &deploy.client_id);
        expect_conflict(
            store.create_service_account(duplicate).await,
            &format!(
                "create_service_account with the taken client id {:?} in {}",
                deploy.client_id, org.name
            ),
        );
    }
    assert_eq!(
        by_client_id(deploy.client_id.clone()).await.as_ref(),
        Some(&deploy),
        "a refused duplicate replaced the account with that client id"
    );
    assert_eq!(
        list(&b).await,
        vec![ci.clone()],
        "a refused duplicate was listed"
    );

    // Rename: within its organization only.
    let renamed = ok(
        store
            .rename_service_account(a.id, deploy.id, "aaa-release-bot")
            .await,
        "rename_service_account",
    );
    let deploy = ServiceAccount {
        name: "aaa-release-bot".to_string(),
        ..deploy
    };
    assert_eq!(
        renamed.as_ref(),
        Some(&deploy),
        "rename_service_account returns the renamed account"
    );
    assert_eq!(
        by_client_id(deploy.client_id.clone()).await.as_ref(),
        Some(&deploy),
        "the new name is kept"
    );
    assert_eq!(
        list(&a).await,
        vec![deploy.clone(), exporter.clone(), backup.clone()],
        "service_accounts of A, by their new names"
    );
    assert_eq!(
        ok(
            store
                .rename_service_account(b.id, backup.id, "stolen")
                .await,
            "rename_service_account(other org)"
        ),
        None,
        "renaming A's account with B's id returns None"
    );
    assert_eq!(
        ok(
            store
                .rename_service_account(a.id, fixed_id(ACCOUNT_IDS, 99), "ghost")
                .await,
            "rename_service_account(unknown)"
        ),
        None,
        "renaming an unknown account returns None"
    );
    assert_eq!(
        by_client_id(backup.client_id.clone()).await.as_ref(),
        Some(&backup),
        "renaming with another organization's id changed the account"
    );
    assert_eq!(list(&b).await, vec![ci.clone()], "B's accounts");

    // Credentials of the accounts, to see which ones deleting revokes.
    let credential = |n: u32, account: &ServiceAccount, revoked_at: Option<Timestamp>| Credential {
        id: fixed_id(CREDENTIAL_IDS, n),
        kind: CredentialKind::AccessToken,
        token_hash: fake_hash(100 + n as u8),
        org_id: Some(account.org_id),
        user_id: None,
        service_account_id: Some(account.id),
        name: format!("{} token {n}", account.name),
        created_at: ts(t0 + 10_000 + i64::from(n)),
        expires_at: Some(ts(t0 + 10_000 + 3_600_000)),
        revoked_at,
    };
    let earlier = ts(t0 + 20_000);
    let backup_live = credential(1, &backup, None);
    let backup_live_2 = credential(2, &backup, None);
    let backup_revoked = credential(3, &backup, Some(earlier));
    let deploy_live = credential(4, &deploy, None);
    let ci_live = credential(5, &ci, None);
    let all_credentials = [
        &backup_live,
        &backup_live_2,
        &backup_revoked,
        &deploy_live,
        &ci_live,
    ];
    for credential in all_credentials {
        ok(
            store.create_credential(credential.clone()).await,
            format!("create_credential({})", credential.name),
        );
    }
    let stored_credential = |credential: &Credential| {
        let hash = credential.token_hash;
        let what = format!("credential_by_hash({})", credential.name);
        async move { ok(store.credential_by_hash(hash).await, what) }
    };

    // Delete with another organization's id: nothing happens.
    let at = ts(t0 + 30_000);
    assert_eq!(
        ok(
            store.delete_service_account(b.id, backup.id, at).await,
            "delete_service_account(other org)"
        ),
        None,
        "deleting A's account with B's id returns None"
    );
    assert_eq!(
        by_client_id(backup.client_id.clone()).await.as_ref(),
        Some(&backup),
        "deleting with another organization's id removed the account"
    );
    assert_eq!(
        list(&a).await,
        vec![deploy.clone(), exporter.clone(), backup.clone()],
        "A's accounts after a refused delete"
    );
    for credential in all_credentials {
        assert_eq!(
            stored_credential(credential).await.as_ref(),
            Some(credential),
            "deleting with another organization's id changed a credential"
        );
    }
    assert_eq!(
        ok(
            store
                .delete_service_account(a.id, fixed_id(ACCOUNT_IDS, 99), at)
                .await,
            "delete_service_account(unknown)"
        ),
        None,
        "deleting an unknown account returns None"
    );

    // Delete for real.
    assert_eq!(
        ok(
            store.delete_service_account(a.id, backup.id, at).await,
            "delete_service_account"
        )
        .as_ref(),
        Some(&backup),
        "delete_service_account returns the deleted account"
    );
    assert_eq!(
        by_client_id(backup.client_id.clone()).await,
        None,
        "a deleted account is still found by client id"
    );
    assert_eq!(
        list(&a).await,
        vec![deploy.clone(), exporter.clone()],
        "a deleted account is still listed"
    );
    assert_eq!(
        ok(
            store.delete_service_account(a.id, backup.id, at).await,
            "delete_service_account(again)"
        ),
        None,
        "deleting an account twice returns None the second time"
    );
    assert_eq!(
        ok(
            store
                .rename_service_account(a.id, backup.id, "zombie")
                .await,
            "rename_service_account(deleted)"
        ),
        None,
        "renaming a deleted account returns None"
    );
    for credential in [&backup_live, &backup_live_2] {
        let expected = Credential {
            revoked_at: Some(at),
            ..credential.clone()
        };
        assert_eq!(
            stored_credential(credential).await,
            Some(expected),
            "deleting an account revokes its credential {} at the time given",
            credential.name
        );
    }
    assert_eq!(
        stored_credential(&backup_revoked).await.as_ref(),
        Some(&backup_revoked),
        "deleting an account changed the revocation time of a credential revoked before"
    );
    for credential in [&deploy_live, &ci_live] {
        assert_eq!(
            stored_credential(credential).await.as_ref(),
            Some(credential),
            "deleting an account changed another account's credential {}",
            credential.name
        );
    }
    assert_eq!(list(&b).await, vec![ci], "B's accounts after A's delete");
}
