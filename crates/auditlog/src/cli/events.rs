//! `auditlog events --org NAME …`: an organization's events, newest first, as a table or as
//! JSON Lines in the API's own shape.

use std::io::Write;
use std::process::ExitCode;

use auditlog_core::query::{FilterForm, Order, Start};
use auditlog_core::wire::EventRecord;
use auditlog_core::{message, Timestamp};
use clap::{Args, ValueEnum};

use super::Context;
use auditlog_service::grant::Operator;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    Table,
    /// One JSON object per line with every stored field, as the API returns it.
    Jsonl,
}

/// The organization and filter flags shared by `events` and `export`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// The organization (name or id).
    #[arg(long)]
    pub org: String,
    /// Only these actions (repeatable; any of them).
    #[arg(long = "action", value_name = "KEY")]
    pub actions: Vec<String>,
    /// Only events by these users: id or email (repeatable; any of them).
    #[arg(long = "user", value_name = "ID_OR_EMAIL")]
    pub users: Vec<String>,
    /// Only events that occurred at or after this time (RFC 3339, or a date).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// Only events that occurred at or before this time (RFC 3339, or a date).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
    /// Only events whose words start with every word of TEXT.
    #[arg(long)]
    pub search: Option<String>,
}

/// Arguments of `events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Which organization and events.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Most events to print.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub limit: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_lenient(text).map_err(|e| e.to_string())
}

impl FilterArgs {
    /// The filter form the flags fill in: every given flag must hold; several values of one
    /// flag are alternatives, each taken as it is (commas included).
    pub fn form(&self) -> FilterForm {
        FilterForm {
            actions: self.actions.clone(),
            users: self.users.clone(),
            text: self.search.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

/// Runs `events`.
pub async fn run(context: &Context, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let org = super::find_org(&service, &Operator::at_the_command_line(), &args.filter.org).await?;
    let filter = args.filter.form().filter();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.format == Format::Table {
        writeln!(
            out,
            "{:<24}  {:<28}  {:<30}  MESSAGE",
            "OCCURRED (UTC)", "ACTION", "ACTOR"
        )?;
    }
    let mut printed = 0u64;
    let mut start = Start::Offset(0);
    loop {
        let limit = (args.limit - printed).min(1000) as u32;
        let page = service
            .page(&org, filter.clone(), Order::NewestFirst, limit, start)
            .await?;
        for event in &page.events {
            match args.format {
                Format::Jsonl => {
                    let record = EventRecord::new(event, Some(&org.name), service.catalog());
                    serde_json::to_writer(&mut out, &record)?;
                    writeln!(out)?;
                }
                Format::Table => {
                    let body = &event.body;
                    let actor = body
                        .actor_email
                        .as_deref()
                        .or(body.actor_name.as_deref())
                        .or(body.actor_id.as_deref())
                        .unwrap_or("-");
                    writeln!(
                        out,
                        "{:<24}  {:<28}  {:<30}  {}",
                        body.occurred_at.to_string(),
                        clip(&body.action_key, 28),
                        clip(actor, 30),
                        message::render(event, service.catalog())
                    )?;
                }
            }
        }
        printed += page.events.len() as u64;
        match page.next_cursor {
            Some(cursor) if printed < args.limit => {
                let cursor =
                    auditlog_core::query::Cursor::decode(&cursor).map_err(anyhow::Error::msg)?;
                start = Start::After(cursor.position);
            }
            _ => break,
        }
    }
    out.flush()?;
    if args.format == Format::Table && printed == 0 {
        eprintln!("no events match");
    }
    Ok(ExitCode::SUCCESS)
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(width - 1).collect();
    clipped.push('…');
    clipped
}
