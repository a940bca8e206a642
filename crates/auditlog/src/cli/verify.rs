//! `auditlog verify`: walks every organization's chain and checks it against the newest
//! signed checkpoint; or, given FILE, checks an export file offline against the public key
//! (each event's inclusion proof too); or, with `--since`, checks that an organization's log
//! today extends a tree checkpoint saved earlier. `auditlog checkpoint` prints the checkpoint
//! to save. Exit code 0 when intact, 1 when anything does not match, 2 on usage errors.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use auditlog_core::export::{verify_export, ExportVerifyError, VerifyReport};
use auditlog_core::merkle::verify_consistency;
use auditlog_core::note::{Checkpoint as TreeCheckpoint, NoteVerifier};
use auditlog_service::keys;
use auditlog_service::log::LogError;
use clap::Args;
use indicatif::ProgressBar;
use uuid::Uuid;

use super::Context;
use crate::progress;
use auditlog_service::grant::Operator;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An export file (JSON Lines or CSV, gzipped or not) to verify offline instead of the
    /// store: every event against its hash and its neighbours, and the final checkpoint
    /// against the public key.
    #[arg(value_name = "FILE", conflicts_with = "org")]
    pub file: Option<PathBuf>,
    /// Only this organization (name or id); every organization when absent.
    #[arg(long)]
    pub org: Option<String>,
    /// With FILE: the server's public key, 64 hex digits as `auditlog public-key` prints it,
    /// or its signed-note verifier key (`GET /api/log/vkey`); the data directory's key when
    /// absent.
    #[arg(long, alias = "key", value_name = "HEX|VKEY", requires = "file")]
    pub public_key: Option<String>,
    /// A tree checkpoint saved earlier (`auditlog checkpoint`, or `GET
    /// /api/log/{org}/checkpoint`): checks, with a consistency proof from the store, that the
    /// organization's log today extends it, so nothing it covered was changed or removed.
    #[arg(long, value_name = "CHECKPOINT_FILE", conflicts_with_all = ["file", "org"])]
    pub since: Option<PathBuf>,
    /// With FILE: fail unless the file holds every event up to its checkpoint (an unfiltered
    /// export from which no line was removed).
    #[arg(long, requires = "file")]
    pub complete: bool,
}

/// Runs `verify`.
pub async fn run(context: &Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.file {
        return verify_file(context, file, args.public_key.as_deref(), args.complete).await;
    }
    if let Some(saved) = &args.since {
        return verify_since(context, saved).await;
    }
    let service = context.service_to_verify().await?;
    let operator = Operator::at_the_command_line();
    let orgs = match &args.org {
        Some(name) => vec![super::find_org(&service, &operator, name).await?],
        None => service.operator_orgs(&operator).await?,
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

/// Verifies an export file. Usage problems (no key, unreadable file) are errors (exit 2); a
/// file that does not verify is reported on stdout (exit 1).
async fn verify_file(
    context: &Context,
    path: &Path,
    public_key: Option<&str>,
    require_complete: bool,
) -> anyhow::Result<ExitCode> {
    let key = match public_key {
        Some(vkey) if vkey.contains('+') => *NoteVerifier::parse(vkey.trim())
            .context("--public-key is not a verifier key (expected <name>+<key id>+<key>)")?
            .key(),
        Some(hex) => keys::parse_public_key(hex).context(
            "--public-key is not a public key (expected 64 hex digits, or a verifier key)",
        )?,
        None => keys::load(&context.data_dir)
            .context("give the server's key with --public-key, or run where its data directory is")?
            .verifying_key(),
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress::bar(size, "verifying");
    let reader = Counted {
        inner: file,
        bar: bar.clone(),
    };
    // Reading and hashing a large file is blocking work; keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || verify_export(reader, &key)).await?;
    bar.finish_and_clear();
    let name = path.display();
    match result {
        Ok(report) => {
            println!("ok        {name}: {}", describe(&report));
            if !report.complete {
                let missing = report.first_missing_seq.unwrap_or(0);
                println!(
                    "          partial: seq {missing} (and maybe others) of 1..={} is not in the file. \
                     Each event matches its own hash, but only events in an unbroken run up to \
                     the checkpoint are proven by it",
                    report.checkpoint_seq
                );
                if require_complete {
                    println!(
                        "INCOMPLETE  {name}: {}",
                        report.ensure_complete().unwrap_err()
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ExportVerifyError::Io(error)) => {
            println!("TAMPERED  {name}: the file cannot be read to the end: {error}");
            Ok(ExitCode::from(1))
        }
        Err(error) => {
            println!("TAMPERED  {name}: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

/// One line about a verified export.
fn describe(report: &VerifyReport) -> String {
    let org = match &report.org_name {
        Some(name) => format!("{name} ({})", report.org_id),
        None => report.org_id.to_string(),
    };
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!(", seq {first}..={last}"),
        _ => String::new(),
    };
    let kind = if report.complete {
        "complete"
    } else {
        "partial"
    };
    let proofs = match report.tree {
        Some((size, _)) => format!(
            "; each event's inclusion proof leads to the signed tree checkpoint of {size} events"
        ),
        None => String::new(),
    };
    format!(
        "{} events of organization {org}{range}, {kind}; checkpoint at seq {} signed {} by key {} verifies{proofs}",
        report.records, report.checkpoint_seq, report.signed_at, report.key_id
    )
}

/// Arguments of `public-key`.
#[derive(Debug, Args)]
pub struct PublicKeyArgs {
    /// Print the signed-note verifier key of the tree checkpoints
    /// (`<log name>+<key id>+<base64 key>`, as `GET /api/log/vkey` serves it) instead of
    /// the hex public key.
    #[arg(long)]
    pub vkey: bool,
}

/// Runs `public-key`: the key that verifies this store's checkpoints.
pub async fn public_key(context: &Context, args: PublicKeyArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    if args.vkey {
        println!("{}", service.note_verifier().to_vkey());
    } else {
        println!(
            "{}",
            keys::public_key_hex(&service.signing_key().verifying_key())
        );
    }
    service.close();
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The organization (name or id).
    #[arg(long)]
    pub org: String,
}

/// Runs `checkpoint`: prints the organization's signed tree checkpoint.
pub async fn checkpoint(context: &Context, args: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let service = context.service().await?;
    let org = super::find_org(&service, &Operator::at_the_command_line(), &args.org).await?;
    let signed = service.tree_checkpoint(&org).await;
    service.close();
    print!("{}", signed?.note);
    Ok(ExitCode::SUCCESS)
}

/// Checks that the log of the organization a saved tree checkpoint names extends it.
async fn verify_since(context: &Context, saved: &Path) -> anyhow::Result<ExitCode> {
    let note = std::fs::read(saved).with_context(|| format!("cannot read {}", saved.display()))?;
    let service = context.service_to_verify().await?;
    let result = check_since(&service, &note).await;
    service.close();
    let name = saved.display();
    match result? {
        Ok(message) => {
            println!("ok        {name}: {message}");
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            println!("TAMPERED  {name}: {message}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The outcome of `--since`: `Ok(Ok(what was proven))`, `Ok(Err(what does not match))`, or
/// an error that is no verdict (an unreadable file, another deployment's checkpoint).
async fn check_since(
    service: &auditlog_service::Service,
    note: &[u8],
) -> anyhow::Result<Result<String, String>> {
    let verifier = service.note_verifier();
    let (saved, _) =
        TreeCheckpoint::open(note, std::slice::from_ref(&verifier)).with_context(|| {
            format!(
                "the file is not a checkpoint signed by this deployment's key ({})",
                verifier.to_vkey()
            )
        })?;
    let org_id = saved
        .origin()
        .rsplit_once('/')
        .and_then(|(_, id)| Uuid::parse_str(id).ok())
        .with_context(|| {
            format!(
                "the checkpoint's origin {:?} names no organization",
                saved.origin()
            )
        })?;
    let operator = Operator::at_the_command_line();
    let org = super::find_org(service, &operator, &org_id.to_string()).await?;
    if saved.origin() != service.log_origin(org.id) {
        anyhow::bail!(
            "the checkpoint is of the log {:?}; this deployment's is {:?} (see --log-name)",
            saved.origin(),
            service.log_origin(org.id)
        );
    }
    let now = match service.tree_checkpoint(&org).await {
        Ok(now) => now,
        Err(LogError::Inconsistent(reason)) => return Ok(Err(reason)),
        Err(e) => return Err(e.into()),
    };
    if saved.size() > now.size {
        return Ok(Err(format!(
            "the saved checkpoint covers {} events, but the log of {} now holds {}: events were removed",
            saved.size(),
            org.name,
            now.size
        )));
    }
    let proof = match service
        .consistency_proof(&org, saved.size(), Some(now.size))
        .await
    {
        Ok((proof, _)) => proof,
        Err(LogError::Inconsistent(reason)) => return Ok(Err(reason)),
        Err(e) => return Err(e.into()),
    };
    match verify_consistency(saved.size(), now.size, &saved.root(), &now.root, &proof) {
        Ok(()) => Ok(Ok(format!(
            "the log of {} ({} events now) extends the saved checkpoint of {} events: nothing it covered was changed or removed",
            org.name,
            now.size,
            saved.size()
        ))),
        Err(e) => Ok(Err(format!(
            "the log of {} ({} events now) does not extend the saved checkpoint of {} events ({e}): history was rewritten",
            org.name,
            now.size,
            saved.size()
        ))),
    }
}

/// Reports the bytes read to a progress bar.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}
