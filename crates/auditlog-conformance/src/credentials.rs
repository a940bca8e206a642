//! Cases: credentials (API tokens, ingest keys, service-account tokens) round-trip, filter,
//! are revoked, expire and are purged.

use std::sync::Arc;

use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use auditlog_store::{Credential, CredentialKind, ServiceAccount, Store, User};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

/// Credentials round-trip field by field (every optional field absent and present), and
/// `credentials` filters by kind, user and organization, newest first, revoked ones too.
pub async fn credentials_round_trip_and_filter(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let a = make_org(store, "credentials-a").await;
    let b = make_org(store, "credentials-b").await;
    let mut users = Vec::new();
    for (n, email) in [(1, "alice@example.com"), (2, "bob@example.org")] {
        let user = User {
            id: fixed_id(USER_IDS, n),
            email: email.to_string(),
            display_name: email.to_string(),
            password_hash: None,
            created_at: ts(t0),
        };
        users.push(create_user_ok(store, user).await);
    }
    let (u1, u2) = (users[0].id, users[1].id);
    let account = ServiceAccount {
        id: fixed_id(ACCOUNT_IDS, 1),
        org_id: a.id,
        name: "exporter".to_string(),
        client_id: "sa_credentials_exporter".to_string(),
        secret_hash: fake_hash(1),
        created_at: ts(t0),
    };
    ok(
        store.create_service_account(account.clone()).await,
        "create_service_account",
    );

    let credential = |n: u32,
                      kind: CredentialKind,
                      org_id: Option<Uuid>,
                      user_id: Option<Uuid>,
                      created_ms: i64,
                      expires_at: Option<Timestamp>,
                      revoked_at: Option<Timestamp>| Credential {
        id: fixed_id(CREDENTIAL_IDS, n),
        kind,
        token_hash: fake_hash(n as u8),
        org_id,
        user_id,
        service_account_id: None,
        name: format!("credential {n} — “{}”", kind.as_str()),
        created_at: ts(created_ms),
        expires_at,
        revoked_at,
    };
    use CredentialKind::{AccessToken, ApiToken, Ingest, Session};
    let ingest_a = credential(1, Ingest, Some(a.id), None, t0, None, None);
    let ingest_platform = credential(
        2,
        Ingest,
        None,
        None,
        t0 + 10,
        Some(ts(t0 + 365 * MS_PER_DAY)),
        None,
    );
    let api_u1_a = credential(
        3,
        ApiToken,
        Some(a.id),
        Some(u1),
        t0 + 20,
        Some(ts(t0 + MS_PER_DAY)),
        None,
    );
    let api_u1_b = credential(4, ApiToken, Some(b.id), Some(u1), t0 + 30, None, None);
    let api_u2_a = credential(
        5,
        ApiToken,
        Some(a.id),
        Some(u2),
        t0 + 40,
        Some(ts(t0 + 2 * MS_PER_DAY)),
        Some(ts(t0 + 50)),
    );
    let access = Credential {
        service_account_id: Some(account.id),
        ..credential(
            6,
            AccessToken,
            Some(a.id),
            None,
            t0 + 5,
            Some(ts(t0 + 5 + 3_600_000)),
            None,
        )
    };
    let session_u1 = credential(
        7,
        Session,
        None,
        Some(u1),
        t0 + 15,
        Some(ts(t0 + 15 + 12 * 3_600_000)),
        None,
    );
    let api_u1_a_newer = credential(
        8,
        ApiToken,
        Some(a.id),
        Some(u1),
        t0 + 25,
        None,
        Some(ts(t0 + 26)),
    );
    let all = [
        &ingest_a,
        &ingest_platform,
        &api_u1_a,
        &api_u1_b,
        &api_u2_a,
        &access,
        &session_u1,
        &api_u1_a_newer,
    ];
    for credential in all {
        let created = ok(
            store.create_credential(credential.clone()).await,
            format!("create_credential({})", credential.name),
        );
        assert_eq!(
            &created, credential,
            "create_credential returns the credential"
        );
    }
    for credential in all {
        assert_eq!(
            ok(
                store.credential_by_hash(credential.token_hash).await,
                "credential_by_hash"
            )
            .as_ref(),
            Some(credential),
            "credential_by_hash round-trips {}",
            credential.name
        );
    }
    assert_eq!(
        ok(
            store.credential_by_hash(fake_hash(200)).await,
            "credential_by_hash(unknown)"
        ),
        None,
        "credential_by_hash of a hash never stored"
    );

    // (kind, user, organization, expected newest first)
    type ListCase<'a> = (
        CredentialKind,
        Option<Uuid>,
        Option<Uuid>,
        Vec<&'a Credential>,
    );
    let cases: [ListCase; 13] = [
        (
            ApiToken,
            None,
            None,
            vec![&api_u2_a, &api_u1_b, &api_u1_a_newer, &api_u1_a],
        ),
        (
            ApiToken,
            Some(u1),
            None,
            vec![&api_u1_b, &api_u1_a_newer, &api_u1_a],
        ),
        (
            ApiToken,
            Some(u1),
            Some(a.id),
            vec![&api_u1_a_newer, &api_u1_a],
        ),
        (ApiToken, Some(u1), Some(b.id), vec![&api_u1_b]),
        (
            ApiToken,
            None,
            Some(a.id),
            vec![&api_u2_a, &api_u1_a_newer, &api_u1_a],
        ),
        (ApiToken, Some(u2), Some(b.id), vec![]),
        (Ingest, None, None, vec![&ingest_platform, &ingest_a]),
        (Ingest, None, Some(a.id), vec![&ingest_a]),
        (Ingest, None, Some(b.id), vec![]),
        (Session, Some(u1), None, vec![&session_u1]),
        (Session, Some(u2), None, vec![]),
        (AccessToken, None, Some(a.id), vec![&access]),
        (AccessToken, Some(u1), None, vec![]),
    ];
    for (kind, user_id, org_id, expected) in cases {
        let got = ok(
            store.credentials(kind, user_id, org_id).await,
            "credentials",
        );
        let expected: Vec<Credential> = expected.into_iter().cloned().collect();
        let names =
            |list: &[Credential]| -> Vec<String> { list.iter().map(|c| c.name.clone()).collect() };
        assert_eq!(
            names(&got),
            names(&expected),
            "credentials({kind:?}, user {user_id:?}, org {org_id:?}): the credentials of that kind, user and organization, newest first"
        );
        assert_eq!(
            got, expected,
            "credentials({kind:?}, user {user_id:?}, org {org_id:?}) returns the stored fields"
        );
    }
}

/// `revoke_credential` returns the credential as it was and keeps the first revocation
/// time; `is_live` is "not revoked and not yet expired"; `purge_expired_credentials` deletes
/// exactly the credentials that expired before the given time and says how many.
pub async fn credentials_revoke_liveness_purge(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let org = make_org(store, "revoke").await;
    let credential =
        |n: u32, expires_at: Option<Timestamp>, revoked_at: Option<Timestamp>| Credential {
            id: fixed_id(CREDENTIAL_IDS, n),
            kind: CredentialKind::Ingest,
            token_hash: fake_hash(n as u8),
            org_id: Some(org.id),
            user_id: None,
            service_account_id: None,
            name: format!("ingest key {n}"),
            created_at: ts(t0 + i64::from(n)),
            expires_at,
            revoked_at,
        };

    // `is_live`, on values alone.
    let at = ts(t0 + 1000);
    let forever = credential(1, None, None);
    let expiring = credential(2, Some(at), None);
    let revoked = credential(3, Some(at), Some(ts(t0 + 500)));
    let revoked_forever = credential(4, None, Some(ts(t0 + 500)));
    let liveness = [
        (&forever, ts(t0), true),
        (&forever, ts(t0 + 100 * MS_PER_DAY), true),
        (&expiring, at.plus_millis(-1), true),
        (&expiring, at, false),
        (&expiring, at.plus_millis(1), false),
        (&revoked, ts(t0), false),
        (&revoked, at.plus_millis(-1), false),
        (&revoked_forever, ts(t0), false),
    ];
    for (credential, now, live) in liveness {
        assert_eq!(
            credential.is_live(now),
            live,
            "is_live at {now} of {credential:?}"
        );
    }

    // Revocation.
    // Expires after the purge bound below, so that it survives the purge.
    let first = credential(10, Some(ts(t0 + 20 * MS_PER_DAY)), None);
    let second = credential(11, None, None);
    for credential in [&first, &second] {
        ok(
            store.create_credential(credential.clone()).await,
            "create_credential",
        );
    }
    let stored = |credential: &Credential| {
        let hash = credential.token_hash;
        async move { ok(store.credential_by_hash(hash).await, "credential_by_hash") }
    };
    let revoked_at = ts(t0 + 2000);
    assert_eq!(
        ok(
            store.revoke_credential(first.id, revoked_at).await,
            "revoke_credential"
        )
        .as_ref(),
        Some(&first),
        "revoke_credential returns the credential as it was before (not revoked)"
    );
    let first_revoked = Credential {
        revoked_at: Some(revoked_at),
        ..first.clone()
    };
    assert_eq!(
        stored(&first).await.as_ref(),
        Some(&first_revoked),
        "a revoked credential has revoked_at set to the time given"
    );
    assert!(
        !first_revoked.is_live(ts(t0 + 3000)),
        "a revoked credential is live"
    );
    assert_eq!(
        stored(&second).await.as_ref(),
        Some(&second),
        "revoking one credential changed another"
    );
    assert_eq!(
        ok(
            store.revoke_credential(first.id, ts(t0 + 9000)).await,
            "revoke_credential(again)"
        )
        .as_ref(),
        Some(&first_revoked),
        "revoking again returns the credential with its first revocation time"
    );
    assert_eq!(
        stored(&first).await.as_ref(),
        Some(&first_revoked),
        "revoking again changed the first revocation time"
    );
    assert_eq!(
        ok(
            store
                .revoke_credential(fixed_id(CREDENTIAL_IDS, 99), revoked_at)
                .await,
            "revoke_credential(unknown)"
        ),
        None,
        "revoking an unknown credential returns None"
    );

    // Purging.
    let before = ts(t0 + 10 * MS_PER_DAY);
    let purge_specs: [(u32, Option<Timestamp>, Option<Timestamp>, bool); 8] = [
        (20, Some(before.plus_millis(-MS_PER_DAY)), None, true),
        (21, Some(before.plus_millis(-1)), None, true),
        (22, Some(before), None, false),
        (23, Some(before.plus_millis(1)), None, false),
        (24, None, None, false),
        (25, None, Some(ts(t0)), false),
        (26, Some(before.plus_millis(-5)), Some(ts(t0)), true),
        (
            27,
            Some(before.plus_millis(MS_PER_DAY)),
            Some(ts(t0)),
            false,
        ),
    ];
    let mut kept = vec![first_revoked.clone(), second.clone()];
    let mut purged = Vec::new();
    for (n, expires_at, revoked_at, expect_purged) in purge_specs {
        let credential = credential(n, expires_at, revoked_at);
        ok(
            store.create_credential(credential.clone()).await,
            "create_credential",
        );
        if expect_purged {
            purged.push(credential);
        } else {
            kept.push(credential);
        }
    }
    assert_eq!(
        ok(
            store.purge_expired_credentials(before).await,
            "purge_expired_credentials"
        ),
        purged.len() as u64,
        "purge_expired_credentials({before}) returns how many credentials expired before then"
    );
    for credential in &purged {
        assert_eq!(
            stored(credential).await,
            None,
            "{} (expires {:?}) expired before {before} but was not purged",
            credential.name,
            credential.expires_at
        );
    }
    for credential in &kept {
        assert_eq!(
            stored(credential).await.as_ref(),
            Some(credential),
            "{} (expires {:?}, revoked {:?}) was purged or changed by purge_expired_credentials({before})",
            credential.name,
            credential.expires_at,
            credential.revoked_at
        );
    }
    assert_eq!(
        ok(
            store.purge_expired_credentials(before).await,
            "purge_expired_credentials(again)"
        ),
        0,
        "purging twice deletes nothing the second time"
    );
    let mut listed = ok(
        store
            .credentials(CredentialKind::Ingest, None, Some(org.id))
            .await,
        "credentials",
    );
    listed.sort_by_key(|c| c.id);
    kept.sort_by_key(|c| c.id);
    assert_eq!(listed, kept, "the credentials left after purging");
}
