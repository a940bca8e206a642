//! `auditlog org create|enroll|list`: the operator's tenancy commands.

use std::process::ExitCode;

use auditlog_service::grant::Operator;
use auditlog_store::{NewOrg, StoreError};
use clap::Subcommand;

use super::Context;

/// Organization commands.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create {
        /// Unique name (letters, digits, `-`, `_`, `.`; 1 to 64 characters).
        name: String,
        /// Name shown to people (defaults to NAME).
        #[arg(long)]
        display_name: Option<String>,
        /// Enroll it in the audit-log feature at once.
        #[arg(long)]
        enroll: bool,
    },
    /// Enroll an organization in the audit-log feature.
    Enroll {
        /// Name or id.
        name: String,
    },
    /// List organizations.
    List,
}

/// Whether a name can be an organization name: short, and safe in a header and a URL.
pub fn valid_org_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && uuid::Uuid::parse_str(name).is_err()
}

/// Runs an organization command.
pub async fn run(context: &Context, command: OrgCommand) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let operator = Operator::at_the_command_line();
    match command {
        OrgCommand::Create {
            name,
            display_name,
            enroll,
        } => {
            if !valid_org_name(&name) {
                anyhow::bail!("organization name {name:?} must be 1 to 64 letters, digits, '-', '_' or '.', and not a UUID");
            }
            let display_name = display_name.unwrap_or_else(|| name.clone());
            if display_name.is_empty()
                || display_name.chars().count() > 128
                || display_name.chars().any(char::is_control)
            {
                anyhow::bail!(
                    "--display-name must be 1 to 128 characters without control characters"
                );
            }
            match service
                .create_org(
                    &operator,
                    NewOrg {
                        name,
                        display_name,
                        audit_logs_enabled: enroll,
                    },
                )
                .await
            {
                Ok(org) => {
                    println!(
                        "created organization {} ({}){}",
                        org.name,
                        org.id,
                        if enroll { ", enrolled" } else { "" }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::Conflict(message)) => anyhow::bail!(message),
                Err(e) => Err(e.into()),
            }
        }
        OrgCommand::Enroll { name } => {
            let org = super::find_org(&service, &operator, &name).await?;
            service.enroll_org(&operator, &org).await?;
            println!("enrolled {} in audit logs", org.name);
            Ok(ExitCode::SUCCESS)
        }
        OrgCommand::List => {
            println!(
                "{:<36}  {:<24}  {:<8}  DISPLAY NAME",
                "ID", "NAME", "ENROLLED"
            );
            for org in service.operator_orgs(&operator).await? {
                println!(
                    "{:<36}  {:<24}  {:<8}  {}",
                    org.id,
                    org.name,
                    if org.audit_logs_enabled { "yes" } else { "no" },
                    org.display_name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
