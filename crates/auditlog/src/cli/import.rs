//! `auditlog import FILE --org NAME`: JSON Lines in, validated as a whole before anything is
//! stored, then appended in durable batches and sealed with a signed checkpoint.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use auditlog_core::validate::validate;
use auditlog_core::{NewEvent, Timestamp};
use auditlog_service::{IngestError, MAX_BATCH};
use auditlog_store::Org;
use clap::Args;

use super::Context;
use crate::progress;
use auditlog_service::grant::Operator;

/// Longest line accepted: far above any valid event (whose meta is at most 16 KiB).
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// How many bad lines are printed before the rest are only counted.
const MAX_REPORTED: usize = 20;

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The JSON Lines file (`-` for standard input is not supported: the file is read twice).
    pub file: PathBuf,
    /// The organization (name or id) the events belong to.
    #[arg(long)]
    pub org: String,
    /// Import the valid lines and skip the invalid ones (reported) instead of importing nothing.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// One parsed line: its number and the event, or why it is not one.
type Line = (usize, Result<NewEvent, String>);

/// Reads the file line by line; blank lines are skipped.
fn lines(
    path: &PathBuf,
    org: &Org,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(Line, u64)>>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let org = org.clone();
    let mut number = 0usize;
    let mut buffer = Vec::new();
    Ok(std::iter::from_fn(move || loop {
        buffer.clear();
        number += 1;
        let read = match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer)
        {
            Ok(0) => return None,
            Ok(read) => read as u64,
            Err(e) => {
                return Some(Err(
                    anyhow::Error::new(e).context(format!("reading line {number}"))
                ))
            }
        };
        if buffer.len() > MAX_LINE_BYTES {
            return Some(Err(anyhow::anyhow!(
                "line {number} is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let text = match std::str::from_utf8(&buffer) {
            Ok(text) => text.trim(),
            Err(_) => return Some(Ok(((number, Err("is not UTF-8".to_string())), read))),
        };
        if text.is_empty() {
            continue;
        }
        let parsed = NewEvent::from_json_str(text)
            .map_err(|e| e.to_string())
            .and_then(|mut event| match event.org.take() {
                Some(named) if named != org.name && named != org.id.to_string() => Err(format!(
                    "org: names {named:?}, but this import is into {:?}",
                    org.name
                )),
                _ => Ok(event),
            });
        return Some(Ok(((number, parsed), read)));
    }))
}

/// Runs `import`.
pub async fn run(context: &Context, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let org = super::find_org(&service, &Operator::at_the_command_line(), &args.org).await?;
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);

    // Pass 1: check every line, store nothing.
    let now = Timestamp::now();
    let bar = progress::bar(size, "checking");
    let mut n_valid = 0u64;
    let mut bad = Vec::new();
    for item in lines(&args.file, &org)? {
        let ((number, parsed), read) = item?;
        bar.inc(read);
        let problem = match parsed {
            Err(message) => Some(message),
            Ok(event) => validate(event, service.catalog(), now).err().map(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        };
        match problem {
            Some(message) => bad.push((number, message)),
            None => n_valid += 1,
        }
    }
    bar.finish_and_clear();
    for (number, message) in bad.iter().take(MAX_REPORTED) {
        eprintln!("line {number}: {message}");
    }
    if bad.len() > MAX_REPORTED {
        eprintln!("… and {} more invalid lines", bad.len() - MAX_REPORTED);
    }
    if !bad.is_empty() && !args.skip_invalid {
        eprintln!("{} invalid line(s): nothing was imported (use --skip-invalid to import the {n_valid} valid ones)", bad.len());
        return Ok(ExitCode::from(1));
    }

    // Pass 2: append the valid lines in durable batches.
    let bar = progress::bar(n_valid, "importing");
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut imported = 0u64;
    let mut first_seq = None;
    let mut last_seq = 0;
    for item in lines(&args.file, &org)? {
        let ((_, parsed), _) = item?;
        let Ok(event) = parsed else { continue };
        if validate(event.clone(), service.catalog(), now).is_err() {
            continue;
        }
        batch.push(event);
        if batch.len() == MAX_BATCH {
            let events = append(&service, &org, std::mem::take(&mut batch), imported).await?;
            first_seq = first_seq.or(events.first().map(|e| e.seq));
            last_seq = events.last().map_or(last_seq, |e| e.seq);
            imported += events.len() as u64;
            bar.set_position(imported);
        }
    }
    if !batch.is_empty() {
        let events = append(&service, &org, batch, imported).await?;
        first_seq = first_seq.or(events.first().map(|e| e.seq));
        last_seq = events.last().map_or(last_seq, |e| e.seq);
        imported += events.len() as u64;
    }
    bar.finish_and_clear();
    let checkpoint = service.checkpoint(&org).await?;
    match first_seq {
        Some(first) => println!(
            "imported {imported} events into {} (seq {first}..={last_seq}); signed checkpoint at seq {}",
            org.name, checkpoint.checkpoint.seq
        ),
        None => println!("imported 0 events into {}", org.name),
    }
    if !bad.is_empty() {
        println!("skipped {} invalid line(s)", bad.len());
    }
    Ok(ExitCode::SUCCESS)
}

async fn append(
    service: &auditlog_service::Service,
    org: &Org,
    batch: Vec<NewEvent>,
    imported: u64,
) -> anyhow::Result<Vec<auditlog_core::Event>> {
    service.ingest(Some(org), batch).await.map_err(|e| match e {
        IngestError::Store(e) => {
            anyhow::anyhow!("store failed after {imported} events were imported durably: {e}")
        }
        other => anyhow::anyhow!("after {imported} events were imported durably: {other}"),
    })
}
