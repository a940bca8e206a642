//! `auditlog demo`: creates an enrolled demo organization filled with a generated year of
//! realistic history ending now, seals it with a checkpoint and prints its newest events —
//! the quickest way to see the store working.

use std::process::ExitCode;

use auditlog_core::query::{Filter, Order, Start};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::{message, Timestamp};
use auditlog_demo::{org_names, History, HistorySpec};
use auditlog_service::grant::{Operator, ReadableOrg};
use auditlog_store::NewOrg;
use clap::Args;

use super::Context;
use crate::progress;

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// About how many events the demo organization gets.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=5_000_000))]
    pub events: u64,
}

/// Runs `demo`.
pub async fn run(context: &Context, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let org = seed(&service, args.events).await?;
    let page = service
        .page(
            &org,
            Filter::default(),
            Order::NewestFirst,
            10,
            Start::Offset(0),
        )
        .await?;
    println!("\nnewest events:");
    for event in &page.events {
        println!(
            "  {}  {}",
            event.body.occurred_at,
            message::render(event, service.catalog())
        );
    }
    let dir = context.data_dir.display();
    println!("\ntry:");
    println!(
        "  auditlog --data-dir {dir} events --org {} --action channel_created --limit 5",
        org.name
    );
    println!(
        "  auditlog --data-dir {dir} events --org {} --search ml-prod --format jsonl --limit 1",
        org.name
    );
    println!("  auditlog --data-dir {dir} verify");
    println!("  auditlog --data-dir {dir} serve --demo");
    Ok(ExitCode::SUCCESS)
}

/// Name of the demo organization.
pub const DEMO_ORG: &str = "acme-analytics";

/// Creates the enrolled demo organization with about `n_events` events of generated history
/// ending now, unless it already has events; returns it.
pub async fn seed(
    service: &auditlog_service::Service,
    n_events: u64,
) -> anyhow::Result<ReadableOrg> {
    let mut spec = HistorySpec::new(n_events * 5, 7);
    spec.start = Timestamp::now().plus_millis(-(i64::from(spec.days) * MS_PER_DAY) - MS_PER_DAY);
    let name = org_names(&spec)[0].clone();
    debug_assert_eq!(name, DEMO_ORG);
    let operator = Operator::at_the_command_line();
    let org = match service.operator_org(&operator, &name).await? {
        Some(org) => org,
        None => {
            service
                .create_org(
                    &operator,
                    NewOrg {
                        name: name.clone(),
                        display_name: "Acme Analytics".into(),
                        audit_logs_enabled: true,
                    },
                )
                .await?;
            super::find_org(service, &operator, &name).await?
        }
    };
    if service.count(&org, &Filter::default(), 1).await?.n > 0 {
        return Ok(org);
    }
    // The generator spreads events over 200 organizations; the demo keeps the largest's.
    let bar = progress::bar(spec.n_events, "generating");
    let mut batch = Vec::with_capacity(1000);
    let mut stored = 0u64;
    for (idx, (org_idx, event)) in History::new(spec).enumerate() {
        if idx % 1000 == 0 {
            bar.set_position(idx as u64);
        }
        if org_idx != 0 {
            continue;
        }
        batch.push(event);
        if batch.len() == 1000 {
            stored += service
                .ingest(Some(&org), std::mem::take(&mut batch))
                .await?
                .len() as u64;
        }
    }
    if !batch.is_empty() {
        stored += service.ingest(Some(&org), batch).await?.len() as u64;
    }
    bar.finish_and_clear();
    let checkpoint = service.checkpoint(&org).await?;
    println!(
        "stored {stored} events in organization {} ({}); chain signed at seq {}",
        org.name, org.id, checkpoint.checkpoint.seq
    );
    Ok(org)
}
