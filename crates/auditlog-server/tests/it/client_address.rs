//! The client address auditlog records in its own events and limits sign-ins by: the TCP
//! peer's, unless the peer is a configured trusted proxy, whose `Forwarded` or
//! `X-Forwarded-For` then names the client (the rightmost address that is not a trusted
//! proxy). The test client connects from 127.0.0.1, which plays the proxy.

use auditlog_server::forwarded::IpRange;
use auditlog_store::Org;
use serde_json::Value;

use crate::{query, Backend, Server};

on_each_backend! {
    forwarded_headers_from_an_untrusted_peer_are_ignored =>
        forwarded_headers_from_an_untrusted_peer_are_ignored_sqlite,
        forwarded_headers_from_an_untrusted_peer_are_ignored_postgres;
    a_trusted_proxy_names_the_client =>
        a_trusted_proxy_names_the_client_sqlite,
        a_trusted_proxy_names_the_client_postgres;
    a_chain_of_trusted_proxies_is_read_from_the_right =>
        a_chain_of_trusted_proxies_is_read_from_the_right_sqlite,
        a_chain_of_trusted_proxies_is_read_from_the_right_postgres;
    a_malformed_header_from_a_trusted_proxy_leaves_the_peer_address =>
        a_malformed_header_from_a_trusted_proxy_leaves_the_peer_address_sqlite,
        a_malformed_header_from_a_trusted_proxy_leaves_the_peer_address_postgres;
    sign_ins_are_limited_per_resolved_client_address =>
        sign_ins_are_limited_per_resolved_client_address_sqlite,
        sign_ins_are_limited_per_resolved_client_address_postgres;
}

fn trusting(values: &[&str]) -> Vec<IpRange> {
    values
        .iter()
        .map(|value| value.parse().expect("a valid range"))
        .collect()
}

/// An organization, its administrator's token, and a fresh service account per case.
struct Setup {
    server: Server,
    org: Org,
    admin: String,
}

impl Setup {
    async fn new(server: Server) -> Setup {
        let org = server.org("acme", true).await;
        let admin = server.admin(&org, "admin@acme.test").await;
        Setup { server, org, admin }
    }

    /// Signs a new service account named `name` in at `POST /api/iam/token` with `headers`,
    /// and answers the `ip_address` of the `authentication_success` event that recorded it.
    async fn recorded_address(&self, name: &str, headers: &[(&str, &str)]) -> Value {
        let (client_id, secret) = self.server.service_account(&self.org, name).await;
        let form = query(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ]);
        let mut call = self
            .server
            .post("/api/iam/token")
            .body("application/x-www-form-urlencoded", form);
        for (header, value) in headers {
            call = call.header(header, value);
        }
        call.send().await.expect(200);
        let listed = self
            .server
            .get("/api/audit-logs?q=action_key:authentication_success&limit=1000")
            .bearer(&self.admin)
            .org("acme")
            .send()
            .await
            .expect(200)
            .json();
        let events = listed["items"].as_array().expect("items");
        let mine: Vec<&Value> = events
            .iter()
            .filter(|event| event["actor_name"] == name)
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {listed}");
        mine[0]["ip_address"].clone()
    }
}

async fn forwarded_headers_from_an_untrusted_peer_are_ignored(backend: Backend) {
    // Trusting other proxies is not trusting the peer.
    let server = Server::start_with(backend, |config| {
        config.trusted_proxies = trusting(&["10.0.0.0/8", "2001:db8::/32"]);
    })
    .await;
    let setup = Setup::new(server).await;
    for (name, headers) in [
        ("xff", vec![("X-Forwarded-For", "203.0.113.9")]),
        ("forwarded", vec![("Forwarded", "for=203.0.113.9")]),
        (
            "both",
            vec![
                ("X-Forwarded-For", "203.0.113.9"),
                ("Forwarded", "for=\"[2001:db8::7]:4711\""),
            ],
        ),
    ] {
        assert_eq!(
            setup.recorded_address(name, &headers).await,
            "127.0.0.1",
            "{name}"
        );
    }
    // Nobody is trusted by default.
    let setup = Setup::new(Server::start(backend).await).await;
    assert_eq!(
        setup
            .recorded_address("default", &[("X-Forwarded-For", "203.0.113.9")])
            .await,
        "127.0.0.1"
    );
}

async fn a_trusted_proxy_names_the_client(backend: Backend) {
    let server = Server::start_with(backend, |config| {
        config.trusted_proxies = trusting(&["127.0.0.1"]);
    })
    .await;
    let setup = Setup::new(server).await;
    for (name, headers, client) in [
        (
            "xff",
            vec![("X-Forwarded-For", "203.0.113.9")],
            "203.0.113.9",
        ),
        (
            "forwarded",
            vec![("Forwarded", "for=198.51.100.7;proto=https")],
            "198.51.100.7",
        ),
        (
            "forwarded ipv6",
            vec![("Forwarded", "for=\"[2001:db8::7]:4711\"")],
            "2001:db8::7",
        ),
        ("no header", vec![], "127.0.0.1"),
    ] {
        assert_eq!(
            setup.recorded_address(name, &headers).await,
            client,
            "{name}"
        );
    }
}

async fn a_chain_of_trusted_proxies_is_read_from_the_right(backend: Backend) {
    let server = Server::start_with(backend, |config| {
        config.trusted_proxies = trusting(&["10.0.0.0/8", "127.0.0.1"]);
    })
    .await;
    let setup = Setup::new(server).await;
    for (name, headers) in [
        ("chain", vec![("X-Forwarded-For", "203.0.113.9, 10.0.0.2")]),
        // What the client wrote itself lies left of what its first proxy appended.
        (
            "spoofed chain",
            vec![("X-Forwarded-For", "192.0.2.66, 203.0.113.9, 10.0.0.2")],
        ),
        (
            "two header lines",
            vec![
                ("X-Forwarded-For", "192.0.2.66"),
                ("X-Forwarded-For", "203.0.113.9, 10.0.0.2"),
            ],
        ),
        (
            "forwarded chain",
            vec![(
                "Forwarded",
                "for=192.0.2.66, for=203.0.113.9;by=10.0.0.2, for=10.0.0.2",
            )],
        ),
    ] {
        assert_eq!(
            setup.recorded_address(name, &headers).await,
            "203.0.113.9",
            "{name}"
        );
    }
}

async fn a_malformed_header_from_a_trusted_proxy_leaves_the_peer_address(backend: Backend) {
    let server = Server::start_with(backend, |config| {
        config.trusted_proxies = trusting(&["127.0.0.1", "10.0.0.0/8"]);
    })
    .await;
    let setup = Setup::new(server).await;
    for (name, headers) in [
        (
            "not an address",
            vec![("X-Forwarded-For", "not-an-address")],
        ),
        (
            "empty hop",
            vec![("X-Forwarded-For", "203.0.113.9, , 10.0.0.2")],
        ),
        ("unknown", vec![("Forwarded", "for=unknown")]),
        ("unterminated", vec![("Forwarded", "for=\"203.0.113.9")]),
        (
            "disagreeing headers",
            vec![
                ("X-Forwarded-For", "203.0.113.9"),
                ("Forwarded", "for=198.51.100.7"),
            ],
        ),
    ] {
        // The request itself succeeds; only the address falls back.
        assert_eq!(
            setup.recorded_address(name, &headers).await,
            "127.0.0.1",
            "{name}"
        );
    }
}

/// One sign-in attempt with a wrong password from behind `forwarded_for`: the status.
async fn wrong_sign_in(server: &Server, forwarded_for: &str) -> u16 {
    let body = query(&[
        ("email", "nobody@acme.test"),
        ("password", "wrong"),
        ("csrf", "login-csrf"),
        ("next", "/orgs"),
    ]);
    server
        .post("/sign-in")
        .header("Cookie", "auditlog_login_csrf=login-csrf")
        .header("X-Forwarded-For", forwarded_for)
        .body("application/x-www-form-urlencoded", body)
        .send()
        .await
        .status
}

async fn sign_ins_are_limited_per_resolved_client_address(backend: Backend) {
    // Behind a trusted proxy, each client has its own budget of ten quick attempts.
    let server = Server::start_with(backend, |config| {
        config.trusted_proxies = trusting(&["127.0.0.1"]);
    })
    .await;
    for _ in 0..10 {
        assert_eq!(wrong_sign_in(&server, "203.0.113.9").await, 401);
    }
    assert_eq!(wrong_sign_in(&server, "203.0.113.9").await, 429);
    assert_eq!(wrong_sign_in(&server, "198.51.100.7").await, 401);

    // From an untrusted peer, a new forwarded address per attempt buys no new budget.
    let server = Server::start(backend).await;
    for n in 0..10 {
        let spoofed = format!("203.0.113.{n}");
        assert_eq!(wrong_sign_in(&server, &spoofed).await, 401);
    }
    assert_eq!(wrong_sign_in(&server, "198.51.100.7").await, 429);
}
