//! Authentication remembers a credential for at most `PRINCIPAL_TTL`: a token revoked through
//! the service stops working at once, and one revoked by another process (another service
//! over the same store, as the command line or a replica is) within that time.

use std::sync::Arc;

use auditlog_core::Catalog;
use auditlog_service::access::{AccessError, Actor, PRINCIPAL_TTL};
use auditlog_service::grant::Operator;
use auditlog_service::Service;
use auditlog_sqlite::SqliteStore;
use auditlog_store::{NewOrg, Role, Store};
use ed25519_dalek::SigningKey;

fn service(store: &Arc<dyn Store>) -> Service {
    Service::new(
        store.clone(),
        Catalog::builtin(),
        SigningKey::from_bytes(&[7; 32]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_here_at_once_and_elsewhere_within_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let here = service(&store);
    let elsewhere = service(&store);
    let operator = Operator::at_the_command_line();
    let org = here
        .create_org(
            &operator,
            NewOrg {
                name: "acme".into(),
                display_name: "Acme".into(),
                audit_logs_enabled: true,
            },
        )
        .await
        .unwrap();
    let user = here
        .add_user(
            &org,
            "ada@example.com",
            None,
            Role::Admin,
            &Actor::operator(),
        )
        .await
        .unwrap();
    let readable = here.operator_org(&operator, "acme").await.unwrap().unwrap();
    let revoked =
        |result: Result<_, AccessError>| matches!(result, Err(AccessError::Unauthenticated(_)));

    // Revoked through the same service: refused on the next request, cache or not.
    let (credential, token) = here
        .create_api_token(&org, &user, "first", None, &Actor::operator())
        .await
        .unwrap();
    here.authenticate(&token).await.unwrap();
    here.authenticate(&token).await.unwrap();
    here.revoke_api_token(&readable, credential.id, &Actor::operator())
        .await
        .unwrap();
    assert!(revoked(here.authenticate(&token).await));

    // Revoked by another process: this one may go on trusting it, but not past the TTL.
    let (credential, token) = here
        .create_api_token(&org, &user, "second", None, &Actor::operator())
        .await
        .unwrap();
    here.authenticate(&token).await.unwrap();
    elsewhere
        .revoke_api_token(&readable, credential.id, &Actor::operator())
        .await
        .unwrap();
    assert!(revoked(elsewhere.authenticate(&token).await));
    tokio::time::sleep(PRINCIPAL_TTL + std::time::Duration::from_millis(50)).await;
    assert!(revoked(here.authenticate(&token).await));
}
