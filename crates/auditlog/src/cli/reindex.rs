//! `auditlog reindex`: discards the store's derived state (access paths, rollups, search
//! postings) and rebuilds it from the stored events, then waits until it is complete. Reads
//! stay correct meanwhile — they read what is not indexed yet from the log — only slower; a
//! running server may stay up. The PostgreSQL store keeps no separate derived state, so
//! there it has nothing to do.

use std::process::ExitCode;
use std::time::Duration;

use auditlog_service::grant::Operator;
use clap::Args;

use super::Context;

/// Arguments of `reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Start the rebuild and return at once instead of waiting for it to finish.
    #[arg(long)]
    pub no_wait: bool,
}

/// Runs `reindex`.
pub async fn run(context: &Context, args: ReindexArgs) -> anyhow::Result<ExitCode> {
    let operator = Operator::at_the_command_line();
    let service = context.service().await?;
    service.rebuild_derived(&operator).await?;
    if args.no_wait {
        println!("derived state reset; it is being rebuilt from the log");
        service.close();
        return Ok(ExitCode::SUCCESS);
    }
    // This process indexes too (beside a server, if one runs; they never index the same
    // rows), and says how far it has come.
    let wait = service.wait_indexed(&operator);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            done = &mut wait => {
                done?;
                break;
            }
            () = tokio::time::sleep(Duration::from_secs(2)) => {
                let lag = service.index_lag().await?;
                eprintln!("reindex: {} events left to index", lag.events);
            }
        }
    }
    println!("derived state rebuilt from the log");
    service.close();
    Ok(ExitCode::SUCCESS)
}
