//! `auditlog purge`: purges now, in every organization with a retention period, the events
//! recorded before it (`Service::purge_expired`), and says how many went where. `auditlog
//! serve` does the same every `--purge-interval-minutes`.

use std::process::ExitCode;

use auditlog_core::Timestamp;
use auditlog_service::grant::Operator;
use clap::Args;

use super::Context;

/// Arguments of `purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {}

/// Runs `purge`.
pub async fn purge(context: &Context, _args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let report = service
        .purge_expired(&Operator::at_the_command_line(), Timestamp::now())
        .await?;
    if report.purged.is_empty() {
        println!("nothing to purge");
    }
    for (org, events) in &report.purged {
        println!("{org}: {events} events purged");
    }
    service.close();
    Ok(ExitCode::SUCCESS)
}
