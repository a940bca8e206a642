//! `auditlog serve`: the HTTP service on the embedded store. With `--demo` it first makes a
//! ready-to-try organization and prints credentials and a curl line that works.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use auditlog_server::forwarded::IpRange;
use auditlog_server::{AppState, ServerConfig};
use auditlog_service::access::Actor;
use auditlog_service::log::LogError;
use auditlog_service::Service;
use auditlog_store::Role;
use clap::Args;

use super::Context;
use auditlog_service::grant::{Operator, ReadableOrg};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AUDITLOG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL clients reach this server at, for links in responses; derived from --listen
    /// when absent.
    #[arg(long, env = "AUDITLOG_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Hours an export file is kept before it is deleted.
    #[arg(long, env = "AUDITLOG_EXPORT_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub export_ttl_hours: u64,
    /// Requests per second per credential (0: unlimited).
    #[arg(long, env = "AUDITLOG_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// Largest request body in bytes.
    #[arg(long, env = "AUDITLOG_BODY_LIMIT", default_value_t = 8 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=268_435_456))]
    pub body_limit: u64,
    /// A reverse proxy (an address or a CIDR range, IPv4 or IPv6) whose `Forwarded` and
    /// `X-Forwarded-For` headers name the client, repeatable or comma-separated. The client's
    /// address recorded in events and used to limit sign-ins is the rightmost forwarded
    /// address that is not a trusted proxy; requests from any other peer keep their
    /// connection's address, whatever headers they send. None by default.
    #[arg(
        long = "trusted-proxy",
        env = "AUDITLOG_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<IpRange>,
    /// Minutes between two purges of the events older than each organization's retention
    /// (docs/retention.md); the first runs a minute after start.
    #[arg(long, env = "AUDITLOG_PURGE_INTERVAL_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub purge_interval_minutes: u64,
    /// Create a demo organization with history, an admin and credentials, and print how to
    /// use them.
    #[arg(long)]
    pub demo: bool,
}

/// Runs `serve` until SIGINT or SIGTERM.
pub async fn run(context: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let mut config = ServerConfig::new(context.data_dir.join("exports"), public_url.clone());
    config.export_ttl = Duration::from_secs(args.export_ttl_hours * 3600);
    config.rate_limit_per_second = args.rate_limit;
    config.rate_limit_burst = args.rate_limit.saturating_mul(2);
    config.body_limit = args.body_limit as usize;
    if !args.trusted_proxies.is_empty() {
        let ranges: Vec<String> = args
            .trusted_proxies
            .iter()
            .map(IpRange::to_string)
            .collect();
        tracing::info!(trusted_proxies = %ranges.join(", "), "client addresses forwarded by these proxies are believed");
    }
    config.trusted_proxies = args.trusted_proxies;
    if !service.redaction().is_empty() {
        let rules: Vec<&str> = service
            .redaction()
            .rules()
            .iter()
            .map(|rule| rule.as_str())
            .collect();
        tracing::info!(rules = %rules.join(", "), "values these rules match are redacted at ingest");
    }
    let simulator = if args.demo {
        let org = demo_credentials(&service, &public_url).await?;
        Some(tokio::spawn(simulate_platform(
            service.clone(),
            org.org().clone(),
        )))
    } else {
        None
    };
    let state = AppState::new(service.clone(), config);
    let checkpoints = tokio::spawn(sign_checkpoints(service.clone()));
    let purges = tokio::spawn(purge_expired(
        service.clone(),
        Duration::from_secs(args.purge_interval_minutes * 60),
    ));
    eprintln!(
        "auditlog listening on {public_url} (data in {})",
        context.data_dir.display()
    );
    auditlog_server::serve(state, listener, shutdown_signal()).await?;
    checkpoints.abort();
    purges.abort();
    if let Some(simulator) = simulator {
        simulator.abort();
    }
    service.close();
    eprintln!("auditlog stopped");
    Ok(ExitCode::SUCCESS)
}

/// Purges the events older than each organization's retention every `interval`, starting a
/// minute after start.
async fn purge_expired(service: Service, interval: Duration) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match service
            .purge_expired(
                &Operator::at_the_command_line(),
                auditlog_core::Timestamp::now(),
            )
            .await
        {
            Ok(report) => {
                for (org, events) in report.purged {
                    tracing::info!(%org, events, "purged events older than the retention");
                }
            }
            Err(e) => tracing::warn!(error = %e, "the purge failed; the next one tries again"),
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Signs a checkpoint of every organization whose chain moved, and a tree checkpoint of its
/// transparency log, once a minute, so that removing recent events is caught within a minute
/// of their arrival (and a tree that no longer extends the last signed one is reported).
async fn sign_checkpoints(service: Service) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let orgs = match service
            .operator_orgs(&Operator::at_the_command_line())
            .await
        {
            Ok(orgs) => orgs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list organizations for checkpoints");
                continue;
            }
        };
        for org in orgs {
            if let Err(e) = service.checkpoint(&org).await {
                tracing::warn!(org = %org.name, error = %e, "cannot sign a checkpoint");
            }
            match service.tree_checkpoint(&org).await {
                Ok(_) => {}
                Err(e @ LogError::Inconsistent(_)) => {
                    tracing::error!(org = %org.name, error = %e, "refused to sign a tree checkpoint")
                }
                Err(e) => {
                    tracing::warn!(org = %org.name, error = %e, "cannot sign a tree checkpoint")
                }
            }
        }
    }
}

/// Makes the demo organization ready to try and prints how.
async fn demo_credentials(service: &Service, public_url: &str) -> anyhow::Result<ReadableOrg> {
    let org = super::demo::seed(service, 20_000).await?;
    if !org.audit_logs_enabled {
        service
            .enroll_org(&Operator::at_the_command_line(), &org)
            .await?;
    }
    let operator = Actor::operator();
    let admin = service
        .add_user(
            &org,
            "admin@acme-analytics.example",
            Some("Demo Admin"),
            Role::Admin,
            &operator,
        )
        .await?;
    let password = auditlog_service::access::new_password();
    service.set_password(&admin, &password).await?;
    let (_, api_token) = service
        .create_api_token(&org, &admin, "demo", None, &operator)
        .await?;
    let (_, ingest_key) = service.create_ingest_key(Some(&org), "demo").await?;
    let (account, secret) = service
        .create_service_account(&org, "demo-exporter", &operator)
        .await?;
    println!(
        "open {public_url}/ and sign in as {} with password {password}",
        admin.email
    );
    println!();
    println!("demo organization: {} (enrolled)", org.name);
    println!("admin API token:   {api_token}");
    println!("ingest key:        {ingest_key}");
    println!(
        "service account:   client_id={} client_secret={secret}",
        account.client_id
    );
    println!();
    println!("list the newest events:");
    println!("  curl -s -H 'Authorization: Bearer {api_token}' -H 'X-Org-Name: {}' '{public_url}/api/audit-logs?limit=5'", org.name);
    println!("send an event:");
    println!(
        "  curl -s -X POST -H 'Authorization: Bearer {ingest_key}' -H 'X-Org-Name: {}' -H 'Content-Type: application/json' \\\n    -d '{{\"action_key\":\"channel_created\",\"actor_email\":\"you@example.com\",\"target_name\":\"my-channel\"}}' '{public_url}/api/audit-logs/events'",
        org.name
    );
    println!("trade the service account's credentials for a token:");
    println!(
        "  curl -s -d grant_type=client_credentials -d client_id={} -d client_secret={secret} '{public_url}/api/iam/token'",
        account.client_id
    );
    println!();
    Ok(org)
}

/// Plays a platform that keeps sending realistic events of every action to the demo
/// organization, a few a second, so a newcomer sees a live log.
async fn simulate_platform(service: Service, org: auditlog_store::Org) {
    use auditlog_demo::{History, HistorySpec};
    let seed = auditlog_core::Timestamp::now().as_millis() as u64;
    let events = History::new(HistorySpec::new(u64::MAX / 2, seed))
        .filter(|(org_idx, _)| *org_idx == 0)
        .map(|(_, e)| e);
    let mut tick = tokio::time::interval(Duration::from_millis(700));
    for mut event in events {
        tick.tick().await;
        // The history is a year long; the simulation happens now.
        event.occurred_at = None;
        if let Err(e) = service.ingest(Some(&org), vec![event]).await {
            tracing::warn!(error = %e, "demo simulator could not ingest");
        }
    }
}
