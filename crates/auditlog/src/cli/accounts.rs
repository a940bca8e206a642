//! The operator's account commands: `user add`, `service-account create`, `ingest-key
//! create`, `token create|list|revoke`. Each prints a secret once; none can show it again.

use std::process::ExitCode;

use auditlog_core::Timestamp;
use auditlog_service::access::Actor;
use auditlog_service::grant::Operator;
use auditlog_store::Role;
use clap::Subcommand;

use super::Context;

/// `auditlog user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to an organization with a role (creating the user when new).
    Add {
        /// The user's email address.
        email: String,
        /// The organization (name or id).
        #[arg(long)]
        org: String,
        /// `admin` (may read and export the audit log) or `member`.
        #[arg(long, default_value = "member")]
        role: String,
        /// The name shown for the user.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a user from an organization.
    Remove {
        /// The user's email address.
        email: String,
        /// The organization (name or id).
        #[arg(long)]
        org: String,
    },
    /// List an organization's members.
    List {
        /// The organization (name or id).
        #[arg(long)]
        org: String,
    },
}

/// `auditlog service-account …`.
#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Create a service account and print its client id and secret (once).
    Create {
        /// The organization (name or id).
        #[arg(long)]
        org: String,
        /// A label for people.
        #[arg(long)]
        name: String,
    },
    /// List an organization's service accounts.
    List {
        /// The organization (name or id).
        #[arg(long)]
        org: String,
    },
    /// Delete a service account; its access tokens stop working.
    Delete {
        /// The organization (name or id).
        #[arg(long)]
        org: String,
        /// The service account's id.
        id: uuid::Uuid,
    },
}

/// `auditlog ingest-key …`.
#[derive(Debug, Subcommand)]
pub enum IngestKeyCommand {
    /// Create an ingest key and print it (once): for one organization, or platform-wide.
    Create {
        /// Limit the key to this organization; platform-wide when absent.
        #[arg(long)]
        org: Option<String>,
        /// A label for people.
        #[arg(long, default_value = "ingest")]
        name: String,
    },
    /// List ingest keys.
    List,
    /// Revoke an ingest key.
    Revoke {
        /// The key's id.
        id: uuid::Uuid,
    },
}

/// `auditlog token …`: personal API tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal API token of a user for an organization and print it (once).
    Create {
        /// The user's email.
        #[arg(long)]
        user: String,
        /// The organization (name or id).
        #[arg(long)]
        org: String,
        /// A label for people.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it expires (never when absent).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: Option<u32>,
    },
    /// List an organization's personal API tokens.
    List {
        /// The organization (name or id).
        #[arg(long)]
        org: String,
    },
    /// Revoke a personal API token.
    Revoke {
        /// The organization (name or id).
        #[arg(long)]
        org: String,
        /// The token's id.
        id: uuid::Uuid,
    },
}

fn check_label(label: &str) -> anyhow::Result<()> {
    if label.is_empty() || label.chars().count() > 128 || label.chars().any(char::is_control) {
        anyhow::bail!("a name must be 1 to 128 characters without control characters");
    }
    Ok(())
}

/// Runs `user …`.
pub async fn user(context: &Context, command: UserCommand) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let operator = Operator::at_the_command_line();
    let actor = Actor::operator();
    match command {
        UserCommand::Add {
            email,
            org,
            role,
            name,
        } => {
            let org = super::find_org(&service, &operator, &org).await?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be admin or member, not {role:?}"))?;
            // The service holds the rules for the email and the name (the same as an event's).
            let user = service
                .add_user(&org, &email, name.as_deref(), role, &actor)
                .await?;
            println!(
                "{} is {} of {} (user id {})",
                user.email,
                role.as_str(),
                org.name,
                user.id
            );
            // A user without a password (a new one, or one who only ever used sign-in
            // links) gets one, printed once; it can be changed on the page.
            if user.password_hash.is_none() {
                let password = auditlog_service::access::new_password();
                service.set_password(&user, &password).await?;
                println!("password (shown once): {password}");
            }
        }
        UserCommand::Remove { email, org } => {
            let org = super::find_org(&service, &operator, &org).await?;
            let user = service
                .find_user(&operator, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user has email {email:?}"))?;
            if service.remove_user(&org, &user, &actor).await? {
                println!("removed {} from {}", user.email, org.name);
            } else {
                anyhow::bail!("{} is not a member of {}", user.email, org.name);
            }
        }
        UserCommand::List { org } => {
            let org = super::find_org(&service, &operator, &org).await?;
            println!("{:<36}  {:<7}  EMAIL", "ID", "ROLE");
            for (user, role) in service.members(&org).await? {
                println!("{:<36}  {:<7}  {}", user.id, role.as_str(), user.email);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `service-account …`.
pub async fn service_account(
    context: &Context,
    command: ServiceAccountCommand,
) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let operator = Operator::at_the_command_line();
    let actor = Actor::operator();
    match command {
        ServiceAccountCommand::Create { org, name } => {
            check_label(&name)?;
            let org = super::find_org(&service, &operator, &org).await?;
            let (account, secret) = service.create_service_account(&org, &name, &actor).await?;
            println!(
                "service account {} ({}) of {}",
                account.name, account.id, org.name
            );
            println!("client_id:     {}", account.client_id);
            println!("client_secret: {secret}");
            println!(
                "(the secret is shown only now; trade both for a token at POST /api/iam/token)"
            );
        }
        ServiceAccountCommand::List { org } => {
            let org = super::find_org(&service, &operator, &org).await?;
            println!("{:<36}  {:<45}  NAME", "ID", "CLIENT ID");
            for account in service.service_accounts(&org).await? {
                println!(
                    "{:<36}  {:<45}  {}",
                    account.id, account.client_id, account.name
                );
            }
        }
        ServiceAccountCommand::Delete { org, id } => {
            let org = super::find_org(&service, &operator, &org).await?;
            match service.delete_service_account(&org, id, &actor).await? {
                Some(account) => {
                    println!("deleted service account {} of {}", account.name, org.name)
                }
                None => anyhow::bail!("{} has no service account {id}", org.name),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `ingest-key …`.
pub async fn ingest_key(context: &Context, command: IngestKeyCommand) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let operator = Operator::at_the_command_line();
    match command {
        IngestKeyCommand::Create { org, name } => {
            check_label(&name)?;
            let org = match org {
                Some(name) => Some(super::find_org(&service, &operator, &name).await?),
                None => None,
            };
            let (credential, token) = service.create_ingest_key(org.as_deref(), &name).await?;
            let scope = org.map_or_else(|| "every organization".to_string(), |o| o.name.clone());
            println!("ingest key {} for {scope}", credential.id);
            println!("{token}");
            println!("(shown only now; send it as `Authorization: Bearer <key>` to POST /api/audit-logs/events)");
        }
        IngestKeyCommand::List => {
            println!("{:<36}  {:<8}  {:<36}  NAME", "ID", "STATE", "ORGANIZATION");
            for key in service.ingest_keys(&operator).await? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let org = key
                    .org_id
                    .map_or_else(|| "(all)".to_string(), |id| id.to_string());
                println!("{:<36}  {state:<8}  {org:<36}  {}", key.id, key.name);
            }
        }
        IngestKeyCommand::Revoke { id } => {
            if !service.revoke_ingest_key(&operator, id).await? {
                anyhow::bail!("no ingest key has id {id}");
            }
            println!("revoked ingest key {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `token …`.
pub async fn token(context: &Context, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let operator = Operator::at_the_command_line();
    let actor = Actor::operator();
    match command {
        TokenCommand::Create {
            user,
            org,
            name,
            days,
        } => {
            check_label(&name)?;
            let org = super::find_org(&service, &operator, &org).await?;
            let member = match service.member(&org, &user).await? {
                Some(member) => member,
                None => match service.find_user(&operator, &user).await? {
                    Some(user) => anyhow::bail!("{} is not a member of {}", user.email, org.name),
                    None => anyhow::bail!(
                        "no user has email {user:?} (add one with `auditlog user add`)"
                    ),
                },
            };
            let expires = days.map(|d| {
                Timestamp::now().plus_millis(i64::from(d) * auditlog_core::timestamp::MS_PER_DAY)
            });
            let (credential, token) = service
                .create_own_token(&member, &name, expires, &actor)
                .await?;
            println!(
                "token {} of {} for {}",
                credential.id,
                member.user().email,
                org.name
            );
            println!("{token}");
            println!("(shown only now; send it as `Authorization: Bearer <token>`)");
        }
        TokenCommand::List { org } => {
            let org = super::find_org(&service, &operator, &org).await?;
            println!("{:<36}  {:<8}  {:<24}  NAME", "ID", "STATE", "EXPIRES");
            for token in service.api_tokens(&org).await? {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else if !token.is_live(Timestamp::now()) {
                    "expired"
                } else {
                    "active"
                };
                let expires = token
                    .expires_at
                    .map_or_else(|| "never".to_string(), |t| t.to_string());
                println!(
                    "{:<36}  {state:<8}  {expires:<24}  {}",
                    token.id, token.name
                );
            }
        }
        TokenCommand::Revoke { org, id } => {
            let org = super::find_org(&service, &operator, &org).await?;
            match service.revoke_api_token(&org, id, &actor).await? {
                Some(_) => println!("revoked token {id}"),
                None => anyhow::bail!("{} has no token {id}", org.name),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
