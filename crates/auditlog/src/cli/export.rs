//! `auditlog export --org NAME … -o FILE`: writes an organization's events (all, or those the
//! filter flags select) to a JSON Lines or CSV file ending with a signed checkpoint, which
//! `auditlog verify FILE` checks offline. It runs in this process, without an export job, and
//! records `audit_log_export_requested` in the organization's log like the API does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use auditlog_service::access::Actor;
use auditlog_service::export::{record_export_request, write_export, ExportFormat, ExportRequest};
use clap::{Args, ValueEnum};

use super::events::FilterArgs;
use super::Context;
use crate::progress;
use auditlog_service::grant::Operator;

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// One JSON object per line with the API's field names, then the checkpoint.
    Jsonl,
    /// One column per field, `meta` as JSON, formula-like cells neutralized with `'`.
    Csv,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which organization and events.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// File format.
    #[arg(long, value_enum, default_value_t = FileFormat::Jsonl)]
    pub format: FileFormat,
    /// Compress the file with gzip.
    #[arg(long)]
    pub gzip: bool,
    /// The file to write; replaced only once the export is complete.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

/// The export request the flags describe: the same filter `events` prints.
pub fn request_from(args: &ExportArgs) -> anyhow::Result<ExportRequest> {
    let request = ExportRequest {
        filter: args.filter.form().filter(),
        format: match args.format {
            FileFormat::Jsonl => ExportFormat::Jsonl,
            FileFormat::Csv => ExportFormat::Csv,
        },
        gzip: args.gzip,
    };
    request.check().map_err(anyhow::Error::msg)?;
    Ok(request)
}

/// Runs `export`.
pub async fn run(context: &Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let request = request_from(&args)?;
    let service = context.service().await?;
    let org = super::find_org(&service, &Operator::at_the_command_line(), &args.filter.org).await?;
    // Written beside the target and renamed over it at the end, so FILE is never a partial
    // export; the temporary file is deleted if anything fails.
    let dir = match args.output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".auditlog-export-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    record_export_request(&service, &org, &Actor::operator(), &request, None)
        .await
        .context("cannot record the export in the organization's log")?;
    let bar = progress::bar(0, "exporting");
    let summary = write_export(
        &service,
        &org,
        &request,
        temp.as_file_mut(),
        |written, scanned, head_seq| {
            bar.set_length(head_seq);
            bar.set_position(scanned);
            bar.set_message(format!("{written} written"));
        },
    )
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    temp.persist(&args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "exported {} events of {} to {} ({} bytes), ending with a checkpoint signed at seq {}",
        summary.records,
        org.name,
        args.output.display(),
        summary.bytes,
        summary.head_seq
    );
    Ok(ExitCode::SUCCESS)
}
