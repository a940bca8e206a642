//! Per-credential rate limits: past its burst, a credential gets 429 with `Retry-After`,
//! while other credentials are unaffected.

use crate::{Backend, Server};

on_each_backend! {
    past_the_burst_a_credential_gets_429_with_retry_after =>
        past_the_burst_a_credential_gets_429_with_retry_after_sqlite,
        past_the_burst_a_credential_gets_429_with_retry_after_postgres;
}

async fn past_the_burst_a_credential_gets_429_with_retry_after(backend: Backend) {
    let server = Server::start_with(backend, |config| {
        config.rate_limit_per_second = 2;
        config.rate_limit_burst = 2;
    })
    .await;
    let org = server.org("acme", true).await;
    let admin = server.admin(&org, "admin@acme.test").await;
    let other = server.admin(&org, "other@acme.test").await;
    let list = |token: &str| {
        server
            .get("/api/audit-logs?limit=1")
            .bearer(token)
            .org("acme")
    };

    list(&admin).send().await.expect(200);
    list(&admin).send().await.expect(200);
    let limited = list(&admin).send().await.expect(429);
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert!(limited.json()["detail"].is_string());

    // Another credential has its own bucket.
    list(&other).send().await.expect(200);

    // After the wait it asked for, the credential may go on.
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    list(&admin).send().await.expect(200);
}
