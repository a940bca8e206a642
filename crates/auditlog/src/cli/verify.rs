//! `auditlog verify`: walks every organization's chain and checks it against the newest
//! signed checkpoint. Exit code 0 when intact, 1 when anything does not match, 2 on usage
//! errors.

use std::process::ExitCode;

use clap::Args;

use super::Context;
use crate::progress;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this organization (name or id); every organization when absent.
    #[arg(long)]
    pub org: Option<String>,
}

/// Runs `verify`.
pub async fn run(context: &Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (service, _store) = context.service()?;
    let orgs = match &args.org {
        Some(name) => vec![super::find_org(service.store().as_ref(), name).await?],
        None => service.store().list_orgs().await?,
    };
    let mut n_events = 0u64;
    let mut failures = 0usize;
    for org in &orgs {
        let bar = progress::counter(&format!("verifying {}", org.name));
        let result = service.verify_org(org.id, &|n| bar.set_position(n)).await;
        bar.finish_and_clear();
        match result {
            Ok(verified) => {
                n_events += verified.events;
                let checkpoint = match verified.checkpoint_seq {
                    Some(seq) => format!("signed checkpoint at seq {seq} matches"),
                    None => "no signed checkpoint yet".to_string(),
                };
                println!(
                    "ok        {}: {} events, chain intact, {checkpoint}",
                    org.name, verified.events
                );
            }
            Err(error) => {
                failures += 1;
                println!("TAMPERED  {}: {error}", org.name);
            }
        }
    }
    if failures > 0 {
        println!(
            "verification FAILED for {failures} of {} organization(s)",
            orgs.len()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "verified {n_events} events in {} organization(s): intact",
        orgs.len()
    );
    Ok(ExitCode::SUCCESS)
}
