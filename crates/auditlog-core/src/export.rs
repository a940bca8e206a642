//! The export file format, beside the chain it proves: an organization's events as JSON
//! Lines or CSV, optionally gzipped, ending with a signed checkpoint ([`ExportWriter`]), and
//! the offline verifier that checks such a file against the server's public key
//! ([`verify_export`]). Both work on a caller's `Write` or `Read` one line at a time, so
//! memory stays bounded at any export size, and neither opens a file itself. The service
//! walks the store to feed the writer (`auditlog_service::export`).
//!
//! # The file
//!
//! Each exported event is an [`EventRecord`] (the API's field names) plus `prev_hash`: the
//! chain hash before it, so that every event can be checked on its own even when the filter
//! left its predecessor out, and `inclusion_proof`. After the events comes the checkpoint the
//! export was cut at, in its wire form (`docs/chain-format.md` §3), then the signed tree
//! checkpoint of the same size; the export holds the events of `1..=checkpoint.seq` that match
//! the filter, in `seq` order.
//!
//! - **JSON Lines**: one compact JSON object per line, then the checkpoint's JSON, then
//!   `{"type":"tree_checkpoint","note":…}`.
//! - **CSV**: a header row of [`CSV_FIELDS`]; `meta` as compact JSON; an absent value is an
//!   empty cell (stored strings are never empty, so this is unambiguous); then the row
//!   `#checkpoint,<checkpoint JSON>` and the row `#tree_checkpoint,<signed note>`.
//!
//! # Formula neutralization (CSV)
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and, in some, tab or CR)
//! as a formula, so an actor could plant one in a name. Every CSV cell whose text starts with
//! one of `=`, `+`, `-`, `@`, tab, CR or `'` gets a `'` prepended ([`neutralize_cell`]);
//! spreadsheets show the rest as text. Because `'` itself is on the list, every cell that
//! starts with `'` was neutralized, and removing exactly one leading `'`
//! ([`restore_cell`]) gives the stored value back byte for byte — which verification needs,
//! since the chain hashes the stored values.
//!
//! # What verification proves
//!
//! [`verify_export`] checks that each event matches its own hash given its `prev_hash`,
//! that consecutive events link, and that the checkpoint is validly signed and agrees with
//! the event at its `seq`. For a complete export (every seq `1..=checkpoint.seq`) that
//! proves every event against the signed head. Each event also carries its inclusion proof in
//! the organization's Merkle tree, and the file ends with the signed tree checkpoint they lead
//! to (`docs/log-format.md` §7): that proves every event of a filtered export on its own. The
//! verifier follows each proof to a root as it reads (keeping only the first root and the
//! first event that disagrees with it, so memory stays bounded) and names the first event
//! whose proof does not reach the signed root. Files written before proofs verify as before.
//! `message` and `org_name` are not covered by the chain (`docs/chain-format.md` §2); the
//! verifier only checks that every line names the same organization.

use std::borrow::Cow;

use base64::Engine;
use std::cell::Cell;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::rc::Rc;

use ed25519_dalek::VerifyingKey;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::chain::{
    chain_hash, decode_hex_array, leaf_hash, CheckpointWire, SignatureError, SignedCheckpoint,
    GENESIS,
};
use crate::merkle::{root_from_inclusion, Hash};
use crate::note::{Checkpoint as TreeCheckpoint, NoteVerifier};
use crate::wire::{EventRecord, InclusionProofWire};
use crate::{Outcome, Timestamp};

/// Longest line the verifier reads; an event is far smaller (`meta` is at most 16 KiB), so a
/// longer line is damage or an attempt to exhaust memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The CSV header: the [`EventRecord`] field names in their order, then `prev_hash`,
/// `inclusion_proof` (`<leaf index> <tree size> <hash> <hash> …`, hashes in base64),
/// `entry` (a version-2 entry's salts as compact JSON; empty for version 1), and the
/// extensions: `outcome`, `reason`, `impersonator` and `changes` (compact JSON; empty when
/// absent), `backfilled` (`true` or empty), `redacted` (a compact JSON list; empty when none).
pub const CSV_FIELDS: [&str; 32] = [
    "id",
    "org_id",
    "org_name",
    "action_key",
    "action_verb",
    "actor_id",
    "actor_email",
    "actor_type",
    "target_id",
    "target_email",
    "target_type",
    "service_name",
    "meta",
    "occurred_at",
    "created_at",
    "message",
    "actor_name",
    "target_name",
    "ip_address",
    "user_agent",
    "request_id",
    "seq",
    "hash",
    "prev_hash",
    "inclusion_proof",
    "entry",
    "outcome",
    "reason",
    "impersonator",
    "changes",
    "backfilled",
    "redacted",
];

/// The header lengths a CSV export may have: [`CSV_FIELDS`] cut after `prev_hash` (files
/// written before inclusion proofs), after `entry` (before the extensions), after
/// `backfilled` (before redaction), or whole. Older files still verify.
const CSV_HEADER_LENGTHS: [usize; 4] = [24, 26, 31, 32];

/// First cell of the CSV row that carries the signed tree checkpoint (a C2SP signed note).
pub const CSV_TREE_CHECKPOINT_CELL: &str = "#tree_checkpoint";

/// The `type` of the JSON line that carries the signed tree checkpoint.
pub const TREE_CHECKPOINT_TYPE: &str = "tree_checkpoint";

/// First cell of the CSV row that carries the checkpoint. No event row can start with it:
/// an event's first cell is its UUID.
pub const CSV_CHECKPOINT_CELL: &str = "#checkpoint";

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// JSON Lines: one event object per line.
    #[default]
    Jsonl,
    /// CSV: one column per field.
    Csv,
}

impl ExportFormat {
    /// `jsonl` or `csv`: the API's name and the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// Writes an export file to a caller's output: the header (CSV), one record per event, then
/// the checkpoint the export was cut at. Compresses when asked; counts the bytes written.
pub struct ExportWriter<W: Write> {
    records: RecordWriter<W>,
}

impl<W: Write> ExportWriter<W> {
    /// A writer of `format`, gzipped or not, into `out`.
    pub fn new(out: W, format: ExportFormat, gzip: bool) -> std::io::Result<ExportWriter<W>> {
        let sink = if gzip {
            Sink::Gzip(GzEncoder::new(Counting::new(out), Compression::default()))
        } else {
            Sink::Plain(Counting::new(out))
        };
        Ok(ExportWriter {
            records: RecordWriter::new(format, sink)?,
        })
    }

    /// Writes one event's record (with its `prev_hash`).
    pub fn write(&mut self, record: &EventRecord) -> std::io::Result<()> {
        self.records.write(record)
    }

    /// Writes the checkpoint, then the signed tree checkpoint the events' inclusion proofs
    /// lead to (when they carry proofs), and closes the output; returns the bytes written.
    pub fn finish(
        self,
        checkpoint: &CheckpointWire,
        tree_checkpoint: Option<&str>,
    ) -> std::io::Result<u64> {
        self.records.finish(checkpoint, tree_checkpoint)
    }
}

/// The CSV form of a value: with a `'` prepended when a spreadsheet could run it as a
/// formula, or when it starts with `'` itself (so that [`restore_cell`] can undo it).
pub fn neutralize_cell(text: &str) -> Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// The value a CSV cell stands for: the cell without the one leading `'` that
/// [`neutralize_cell`] added.
pub fn restore_cell(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// Counts the bytes that reach the output.
struct Counting<W> {
    inner: W,
    n_bytes: u64,
}

impl<W: Write> Counting<W> {
    fn new(inner: W) -> Counting<W> {
        Counting { inner, n_bytes: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The output, compressed or not.
enum Sink<W: Write> {
    Plain(Counting<W>),
    Gzip(GzEncoder<Counting<W>>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl<W: Write> Sink<W> {
    /// Ends the gzip stream, flushes, and returns the bytes written.
    fn finish(self) -> std::io::Result<u64> {
        let mut counting = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
        };
        counting.flush()?;
        Ok(counting.n_bytes)
    }
}

/// Serializes records in one format.
enum RecordWriter<W: Write> {
    Jsonl(BufWriter<Sink<W>>),
    // Boxed: the CSV writer carries its own state and buffers and is far larger.
    Csv(Box<csv::Writer<Sink<W>>>),
}

/// Output buffer: big enough that the compressor and the file see few, large writes.
const BUFFER_BYTES: usize = 256 * 1024;

impl<W: Write> RecordWriter<W> {
    fn new(format: ExportFormat, sink: Sink<W>) -> std::io::Result<RecordWriter<W>> {
        Ok(match format {
            ExportFormat::Jsonl => {
                RecordWriter::Jsonl(BufWriter::with_capacity(BUFFER_BYTES, sink))
            }
            ExportFormat::Csv => {
                let mut csv = csv::WriterBuilder::new()
                    .flexible(true)
                    .buffer_capacity(BUFFER_BYTES)
                    .from_writer(sink);
                csv.write_record(CSV_FIELDS).map_err(csv_io)?;
                RecordWriter::Csv(Box::new(csv))
            }
        })
    }

    fn write(&mut self, record: &EventRecord) -> std::io::Result<()> {
        match self {
            RecordWriter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")
            }
            RecordWriter::Csv(csv) => write_csv_record(csv, record).map_err(csv_io),
        }
    }

    /// Writes the checkpoints and closes the output; returns the bytes written.
    fn finish(
        self,
        checkpoint: &CheckpointWire,
        tree_checkpoint: Option<&str>,
    ) -> std::io::Result<u64> {
        let json = serde_json::to_string(checkpoint)?;
        let sink = match self {
            RecordWriter::Jsonl(mut out) => {
                out.write_all(json.as_bytes())?;
                out.write_all(b"\n")?;
                if let Some(note) = tree_checkpoint {
                    let line = serde_json::json!({"type": TREE_CHECKPOINT_TYPE, "note": note});
                    serde_json::to_writer(&mut out, &line)?;
                    out.write_all(b"\n")?;
                }
                out.into_inner().map_err(|e| e.into_error())?
            }
            RecordWriter::Csv(mut csv) => {
                csv.write_record([CSV_CHECKPOINT_CELL, &json])
                    .map_err(csv_io)?;
                if let Some(note) = tree_checkpoint {
                    csv.write_record([CSV_TREE_CHECKPOINT_CELL, note])
                        .map_err(csv_io)?;
                }
                csv.into_inner().map_err(|e| e.into_error())?
            }
        };
        sink.finish()
    }
}

/// A CSV writer's error as the I/O error under it when there is one, so that its kind (a full
/// disk) reaches whoever decides what to tell the user.
fn csv_io(error: csv::Error) -> std::io::Error {
    if !matches!(error.kind(), csv::ErrorKind::Io(_)) {
        return std::io::Error::other(error);
    }
    match error.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// One CSV row, in [`CSV_FIELDS`] order.
fn write_csv_record<W: Write>(csv: &mut csv::Writer<W>, record: &EventRecord) -> csv::Result<()> {
    fn opt(value: &Option<String>) -> &str {
        value.as_deref().unwrap_or("")
    }
    let id = record.id.to_string();
    let org_id = record.org_id.to_string();
    let meta = match &record.meta {
        Some(meta) => serde_json::to_string(meta).map_err(std::io::Error::from)?,
        None => String::new(),
    };
    let occurred_at = record
        .occurred_at
        .map(|t| t.to_string())
        .unwrap_or_default();
    let created_at = record.created_at.to_string();
    let seq = record.seq.to_string();
    let proof = record
        .inclusion_proof
        .as_ref()
        .map(proof_cell)
        .unwrap_or_default();
    let entry = match &record.entry {
        Some(entry) => serde_json::to_string(entry).map_err(std::io::Error::from)?,
        None => String::new(),
    };
    let impersonator = match &record.impersonator {
        Some(impersonator) => serde_json::to_string(impersonator).map_err(std::io::Error::from)?,
        None => String::new(),
    };
    let changes = match record.changes.is_empty() {
        true => String::new(),
        false => serde_json::to_string(&record.changes).map_err(std::io::Error::from)?,
    };
    let redacted = match record.redacted.is_empty() {
        true => String::new(),
        false => serde_json::to_string(&record.redacted).map_err(std::io::Error::from)?,
    };
    let cells: [&str; 32] = [
        &id,
        &org_id,
        opt(&record.org_name),
        &record.action_key,
        opt(&record.action_verb),
        opt(&record.actor_id),
        opt(&record.actor_email),
        opt(&record.actor_type),
        opt(&record.target_id),
        opt(&record.target_email),
        opt(&record.target_type),
        opt(&record.service_name),
        &meta,
        &occurred_at,
        &created_at,
        &record.message,
        opt(&record.actor_name),
        opt(&record.target_name),
        opt(&record.ip_address),
        opt(&record.user_agent),
        opt(&record.request_id),
        &seq,
        &record.hash,
        opt(&record.prev_hash),
        &proof,
        &entry,
        record.outcome.as_str(),
        opt(&record.reason),
        &impersonator,
        &changes,
        if record.backfilled { "true" } else { "" },
        &redacted,
    ];
    for cell in cells {
        csv.write_field(neutralize_cell(cell).as_bytes())?;
    }
    csv.write_record(None::<&[u8]>)
}

/// The CSV cell of an inclusion proof: `<leaf index> <tree size> <hash> <hash> …`.
fn proof_cell(proof: &InclusionProofWire) -> String {
    let mut cell = format!("{} {}", proof.leaf_index, proof.tree_size);
    for hash in &proof.hashes {
        cell.push(' ');
        cell.push_str(hash);
    }
    cell
}

/// An inclusion proof back from its CSV cell.
fn read_proof_cell(cell: &str) -> Result<InclusionProofWire, String> {
    let mut parts = cell.split(' ');
    let mut number = |what: &str| {
        parts
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("inclusion_proof does not start with the {what}"))
    };
    let leaf_index = number("leaf index")?;
    let tree_size = number("tree size")?;
    Ok(InclusionProofWire {
        leaf_index,
        tree_size,
        leaf_hash: None,
        hashes: parts.map(str::to_string).collect(),
    })
}

/// An event row of a CSV export, back as a record ([`restore_cell`] applied to each cell).
/// `columns` is the header's length: [`CSV_FIELDS`], or [`CSV_FIELDS_V1`] for files written
/// before inclusion proofs.
fn read_csv_record(row: &csv::StringRecord, columns: usize) -> Result<EventRecord, String> {
    if row.len() != columns {
        return Err(format!("the row has {} cells, not {columns}", row.len()));
    }
    let text = |idx: usize| restore_cell(&row[idx]);
    let opt = |idx: usize| {
        Some(text(idx))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let uuid = |idx: usize| {
        Uuid::parse_str(text(idx)).map_err(|_| format!("{} is not a UUID", CSV_FIELDS[idx]))
    };
    let time = |idx: usize| {
        Timestamp::parse(text(idx))
            .map_err(|e| format!("{} is not a timestamp: {e}", CSV_FIELDS[idx]))
    };
    let meta = match text(12) {
        "" => None,
        json => Some(
            serde_json::from_str::<Map<String, Value>>(json)
                .map_err(|e| format!("meta is not a JSON object: {e}"))?,
        ),
    };
    Ok(EventRecord {
        id: uuid(0)?,
        org_id: uuid(1)?,
        org_name: opt(2),
        action_key: text(3).to_string(),
        action_verb: opt(4),
        actor_id: opt(5),
        actor_email: opt(6),
        actor_type: opt(7),
        target_id: opt(8),
        target_email: opt(9),
        target_type: opt(10),
        service_name: opt(11),
        meta,
        occurred_at: match text(13) {
            "" => None,
            _ => Some(time(13)?),
        },
        created_at: time(14)?,
        message: text(15).to_string(),
        actor_name: opt(16),
        target_name: opt(17),
        ip_address: opt(18),
        user_agent: opt(19),
        request_id: opt(20),
        seq: text(21)
            .parse()
            .map_err(|_| "seq is not a whole number".to_string())?,
        hash: text(22).to_string(),
        prev_hash: opt(23),
        inclusion_proof: match columns > 24 && !text(24).is_empty() {
            true => Some(read_proof_cell(text(24))?),
            false => None,
        },
        entry: match columns > 25 && !text(25).is_empty() {
            true => Some(
                serde_json::from_str(text(25)).map_err(|e| format!("entry is malformed: {e}"))?,
            ),
            false => None,
        },
        outcome: match columns > 26 {
            true => Outcome::parse(text(26))
                .ok_or_else(|| format!("outcome {:?} is unknown", text(26)))?,
            false => Outcome::Success,
        },
        reason: if columns > 27 { opt(27) } else { None },
        impersonator: match columns > 28 && !text(28).is_empty() {
            true => Some(
                serde_json::from_str(text(28))
                    .map_err(|e| format!("impersonator is malformed: {e}"))?,
            ),
            false => None,
        },
        changes: match columns > 29 && !text(29).is_empty() {
            true => {
                serde_json::from_str(text(29)).map_err(|e| format!("changes is malformed: {e}"))?
            }
            false => Vec::new(),
        },
        backfilled: match columns > 30 {
            true => match text(30) {
                "" => false,
                "true" => true,
                other => return Err(format!("backfilled {other:?} is neither true nor empty")),
            },
            false => false,
        },
        redacted: match columns > 31 && !text(31).is_empty() {
            true => {
                serde_json::from_str(text(31)).map_err(|e| format!("redacted is malformed: {e}"))?
            }
            false => Vec::new(),
        },
    })
}

/// What a successful verification of an export file established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The file's format.
    pub format: ExportFormat,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// The organization exported (from the checkpoint).
    pub org_id: Uuid,
    /// The organization's name as the events give it (not covered by the chain).
    pub org_name: Option<String>,
    /// Events in the file.
    pub records: u64,
    /// The lowest seq in the file.
    pub first_seq: Option<u64>,
    /// The highest seq in the file.
    pub last_seq: Option<u64>,
    /// True when the file holds exactly the events `1..=checkpoint_seq`: then every event is
    /// proven against the signed checkpoint.
    pub complete: bool,
    /// The first seq in `1..=checkpoint_seq` the file does not hold (filtered out, or its
    /// line removed).
    pub first_missing_seq: Option<u64>,
    /// The checkpoint's seq.
    pub checkpoint_seq: u64,
    /// When the checkpoint was signed.
    pub signed_at: Timestamp,
    /// The id of the key that signed it.
    pub key_id: String,
    /// The signed tree checkpoint's size and root, when the file ends with one: then every
    /// event's inclusion proof was checked against it.
    pub tree: Option<(u64, Hash)>,
}

impl VerifyReport {
    /// Fails unless the export is complete: for a full export, where a missing seq means a
    /// removed line.
    pub fn ensure_complete(&self) -> Result<(), ExportVerifyError> {
        match self.first_missing_seq {
            None => Ok(()),
            Some(missing_seq) => Err(ExportVerifyError::Incomplete {
                missing_seq,
                checkpoint_seq: self.checkpoint_seq,
            }),
        }
    }
}

/// Why an export file does not verify. Line numbers count from 1 (for CSV, the line where the
/// row starts).
#[derive(Debug, thiserror::Error)]
pub enum ExportVerifyError {
    /// The file could not be read or decompressed.
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    /// The file holds nothing.
    #[error("the export is empty")]
    Empty,
    /// The CSV header is not the export header.
    #[error("line 1: the CSV header is not an auditlog export header")]
    BadHeader,
    /// A line longer than any event could be.
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// The line.
        line: u64,
    },
    /// A line that is neither an event nor the checkpoint, or an event with a malformed field.
    #[error("line {line}: not an exported event: {reason}")]
    Malformed {
        /// The line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// An event's content and `prev_hash` do not give its `hash`: the event was edited.
    #[error(
        "line {line}: event {id} (seq {seq}) does not match its hash: its content was changed"
    )]
    HashMismatch {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
    },
    /// An event's `prev_hash` is not the hash of the event before it (or not the genesis hash
    /// for seq 1): an event was edited and re-hashed, or replaced.
    #[error("line {line}: event {id} (seq {seq}) does not link to the event before it (seq {previous_seq})")]
    BrokenLink {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
        /// The seq it should link to (0: the start of the chain).
        previous_seq: u64,
    },
    /// Seqs do not strictly increase: lines were reordered or repeated.
    #[error("line {line}: event {id} has seq {seq} after seq {previous_seq}: lines were reordered or repeated")]
    OutOfOrder {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
        /// The seq of the line before.
        previous_seq: u64,
    },
    /// Events of more than one organization.
    #[error("line {line}: event {id} (seq {seq}) belongs to organization {found}, not {expected}")]
    WrongOrganization {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
        /// The organization of the events before.
        expected: Uuid,
        /// The organization it names.
        found: Uuid,
    },
    /// An event names the organization differently from the events before it.
    #[error("line {line}: event {id} (seq {seq}) gives the organization's name as {found:?}, not {expected:?}")]
    OrgNameMismatch {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
        /// The name the events before give.
        expected: Option<String>,
        /// The name it gives.
        found: Option<String>,
    },
    /// The file does not end with a checkpoint: it was cut short or the checkpoint removed.
    #[error("the export has no checkpoint line after line {lines}: it was truncated or the checkpoint removed")]
    MissingCheckpoint {
        /// Lines read.
        lines: u64,
    },
    /// The checkpoint line cannot be read.
    #[error("line {line}: the checkpoint is malformed: {reason}")]
    CheckpointMalformed {
        /// The line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint is not validly signed by the key given.
    #[error("line {line}: {error}")]
    CheckpointSignature {
        /// The line.
        line: u64,
        /// Why.
        error: SignatureError,
    },
    /// The checkpoint is for another organization than the events.
    #[error(
        "line {line}: the checkpoint is for organization {found}, but the events are of {expected}"
    )]
    CheckpointWrongOrganization {
        /// The checkpoint's line.
        line: u64,
        /// The events' organization.
        expected: Uuid,
        /// The checkpoint's.
        found: Uuid,
    },
    /// An event lies beyond the checkpoint's seq.
    #[error("line {line}: event {id} has seq {seq}, beyond the checkpoint's seq {checkpoint_seq}")]
    BeyondCheckpoint {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
        /// The checkpoint's seq.
        checkpoint_seq: u64,
    },
    /// The event at the checkpoint's seq has another hash than the signed one: the chain was
    /// rewritten.
    #[error("line {line}: event {id} (seq {seq}) does not have the hash the checkpoint signs: the chain was rewritten")]
    CheckpointHashMismatch {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
    },
    /// Something follows the checkpoint.
    #[error("line {line}: content after the checkpoint")]
    TrailingData {
        /// The line.
        line: u64,
    },
    /// An event's inclusion proof is malformed or does not lead to the root of the signed
    /// tree checkpoint: the event, or its proof, was changed.
    #[error("line {line}: event {id} (seq {seq}): its inclusion proof {reason}")]
    InclusionProof {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Some events carry inclusion proofs and this one does not, or the file ends with a tree
    /// checkpoint and its events carry none: proofs were removed.
    #[error("line {line}: event {id} (seq {seq}) carries no inclusion proof, unlike the file's other events or its tree checkpoint")]
    InclusionProofMissing {
        /// The line.
        line: u64,
        /// The event.
        id: Uuid,
        /// Its seq.
        seq: u64,
    },
    /// Events carry inclusion proofs but the file has no tree checkpoint for them to lead to.
    #[error("the events carry inclusion proofs but no tree checkpoint follows the checkpoint: it was removed")]
    MissingTreeCheckpoint,
    /// The tree checkpoint is malformed, not signed by the key, or not of this export.
    #[error("line {line}: the tree checkpoint {reason}")]
    TreeCheckpointInvalid {
        /// The line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The export lacks events of `1..=checkpoint_seq` ([`VerifyReport::ensure_complete`]).
    #[error("the export is incomplete: seq {missing_seq} of 1..={checkpoint_seq} is missing")]
    Incomplete {
        /// The first seq missing.
        missing_seq: u64,
        /// The checkpoint's seq.
        checkpoint_seq: u64,
    },
}

/// Verifies an export file against the public key of the server that wrote it. Detects gzip
/// by its magic bytes and JSON Lines (first byte `{`) versus CSV; reads the file once, in
/// bounded memory; reports the first line that does not verify.
pub fn verify_export(
    reader: impl Read,
    key: &VerifyingKey,
) -> Result<VerifyReport, ExportVerifyError> {
    let (magic, reader) = peek(reader, 2)?;
    let gzip = magic == [0x1f, 0x8b];
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let (first, reader) = peek(reader, 1)?;
    let Some(&first) = first.first() else {
        return Err(ExportVerifyError::Empty);
    };
    let format = if first == b'{' {
        ExportFormat::Jsonl
    } else {
        ExportFormat::Csv
    };
    let mut walk = Walk::default();
    match format {
        ExportFormat::Jsonl => read_jsonl(reader, &mut walk)?,
        ExportFormat::Csv => read_csv(reader, &mut walk)?,
    }
    walk.finish(key, format, gzip)
}

/// A reader that yields bytes already read, then the rest of the underlying reader.
type Replay<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// Reads up to `n` bytes and returns them with a reader that yields them again, then the rest.
fn peek<R: Read>(mut reader: R, n: usize) -> std::io::Result<(Vec<u8>, Replay<R>)> {
    let mut head = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok((head.clone(), std::io::Cursor::new(head).chain(reader)))
}

/// The JSON line that carries the signed tree checkpoint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeCheckpointLine {
    #[serde(rename = "type")]
    _kind: String,
    note: String,
}

/// Just the `type` member of a JSON line, to tell the checkpoint from events.
#[derive(Deserialize)]
struct LineKind {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn read_jsonl(reader: impl Read, walk: &mut Walk) -> Result<(), ExportVerifyError> {
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, reader);
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_LINE_BYTES {
            return Err(ExportVerifyError::LineTooLong { line });
        }
        walk.lines = line;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let kind =
            serde_json::from_slice::<LineKind>(&buf).map_err(|e| ExportVerifyError::Malformed {
                line,
                reason: e.to_string(),
            })?;
        if kind.kind.as_deref() == Some("checkpoint") {
            let wire = serde_json::from_slice::<CheckpointWire>(&buf).map_err(|e| e.to_string());
            walk.checkpoint(line, wire)?;
        } else if kind.kind.as_deref() == Some(TREE_CHECKPOINT_TYPE) {
            let note = serde_json::from_slice::<TreeCheckpointLine>(&buf)
                .map(|l| l.note)
                .map_err(|e| e.to_string());
            walk.tree_checkpoint(line, note)?;
        } else {
            let record = serde_json::from_slice::<EventRecord>(&buf).map_err(|e| {
                ExportVerifyError::Malformed {
                    line,
                    reason: e.to_string(),
                }
            })?;
            walk.event(line, &record)?;
        }
    }
    Ok(())
}

/// Most raw bytes a CSV row may take: a row of [`MAX_LINE_BYTES`] of cell text, with every
/// character a doubled quote, and its separators.
const MAX_RAW_ROW_BYTES: u64 = 2 * MAX_LINE_BYTES as u64 + 1024;

/// The csv reader holds a whole row in memory however long it is, so the verifier limits how
/// far it may read past the start of the row it is on: a quote never closed in a huge (or
/// decompressing) file is refused as a long line instead of filling memory.
struct RowLimit<R> {
    inner: R,
    n_read: u64,
    /// How many bytes of the input may be read in all; moved on before each row.
    limit: Rc<Cell<u64>>,
}

/// The error [`RowLimit`] stops the csv reader with.
#[derive(Debug, thiserror::Error)]
#[error("a CSV row longer than the verifier reads")]
struct RowTooLong;

impl<R: Read> Read for RowLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.limit.get().saturating_sub(self.n_read);
        if room == 0 {
            return Err(std::io::Error::other(RowTooLong));
        }
        let n_max = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..n_max])?;
        self.n_read += n as u64;
        Ok(n)
    }
}

fn read_csv(reader: impl Read, walk: &mut Walk) -> Result<(), ExportVerifyError> {
    let limit = Rc::new(Cell::new(0));
    let reader = RowLimit {
        inner: reader,
        n_read: 0,
        limit: Rc::clone(&limit),
    };
    // The reader reads ahead by at most its buffer, so a row of up to MAX_RAW_ROW_BYTES is
    // always read whole.
    let allow_row_from = |start: u64| limit.set(start + MAX_RAW_ROW_BYTES + BUFFER_BYTES as u64);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(BUFFER_BYTES)
        .from_reader(reader);
    let mut row = csv::StringRecord::new();
    let malformed = |line: u64, error: csv::Error| match error.into_kind() {
        csv::ErrorKind::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<RowTooLong>()) => {
            ExportVerifyError::LineTooLong { line }
        }
        csv::ErrorKind::Io(e) => ExportVerifyError::Io(e),
        kind => ExportVerifyError::Malformed {
            line,
            reason: format!("{kind:?}"),
        },
    };
    allow_row_from(0);
    if !csv.read_record(&mut row).map_err(|e| malformed(1, e))? {
        return Err(ExportVerifyError::Empty);
    }
    let columns = row.len();
    if !CSV_HEADER_LENGTHS.contains(&columns)
        || !row.iter().eq(CSV_FIELDS[..columns].iter().copied())
    {
        return Err(ExportVerifyError::BadHeader);
    }
    walk.lines = 1;
    loop {
        // Before a read, the reader's position is where the next row starts.
        let line = csv.position().line();
        allow_row_from(csv.position().byte());
        if !csv.read_record(&mut row).map_err(|e| malformed(line, e))? {
            break;
        }
        walk.lines = line;
        if row.iter().all(str::is_empty) {
            continue;
        }
        let row_len = row.iter().map(str::len).sum::<usize>();
        if row_len > MAX_LINE_BYTES {
            return Err(ExportVerifyError::LineTooLong { line });
        }
        if row.get(0) == Some(CSV_CHECKPOINT_CELL) {
            let wire = if row.len() == 2 {
                serde_json::from_str::<CheckpointWire>(&row[1]).map_err(|e| e.to_string())
            } else {
                Err(format!("the checkpoint row has {} cells, not 2", row.len()))
            };
            walk.checkpoint(line, wire)?;
        } else if row.get(0) == Some(CSV_TREE_CHECKPOINT_CELL) {
            let note = if row.len() == 2 {
                Ok(row[1].to_string())
            } else {
                Err(format!(
                    "the tree checkpoint row has {} cells, not 2",
                    row.len()
                ))
            };
            walk.tree_checkpoint(line, note)?;
        } else {
            let record = read_csv_record(&row, columns)
                .map_err(|reason| ExportVerifyError::Malformed { line, reason })?;
            walk.event(line, &record)?;
        }
    }
    Ok(())
}

/// The last event seen, for linking and for the checkpoint's hash.
struct Seen {
    line: u64,
    id: Uuid,
    seq: u64,
    hash: [u8; 32],
}

/// The verifier's state while it reads a file line by line.
#[derive(Default)]
struct Walk {
    /// Lines read so far.
    lines: u64,
    records: u64,
    first_seq: Option<u64>,
    last: Option<Seen>,
    /// The organization's id and name, from the first event.
    org: Option<(Uuid, Option<String>)>,
    first_missing_seq: Option<u64>,
    checkpoint: Option<(u64, SignedCheckpoint)>,
    proofs: Proofs,
    tree_checkpoint: Option<(u64, String)>,
}

/// The inclusion proofs seen so far. Each leads to a root on its own; all must lead to the
/// same one, and that one must be the signed tree checkpoint's, which comes last. So the
/// verifier keeps only the first proof's root and the first event whose proof disagrees with
/// it: at the end, whichever of the two is wrong is the first event that fails.
#[derive(Default)]
struct Proofs {
    /// Whether events carry proofs (decided by the first event).
    carried: Option<bool>,
    /// The first event with a proof (line, id, seq) and the tree size and root it leads to.
    first: Option<((u64, Uuid, u64), u64, Hash)>,
    /// The first event whose proof leads elsewhere.
    conflict: Option<(u64, Uuid, u64)>,
}

impl Walk {
    fn event(&mut self, line: u64, record: &EventRecord) -> Result<(), ExportVerifyError> {
        if self.checkpoint.is_some() {
            return Err(ExportVerifyError::TrailingData { line });
        }
        let malformed = |reason: String| ExportVerifyError::Malformed { line, reason };
        let event = record.to_event().map_err(malformed)?;
        let (id, seq) = (event.id, event.seq);
        let prev_hash = match &record.prev_hash {
            None => return Err(malformed("prev_hash is missing".to_string())),
            Some(text) => decode_hex_array::<32>(text)
                .ok_or_else(|| malformed("prev_hash is not 64 hex digits".to_string()))?,
        };
        match &self.org {
            None => self.org = Some((event.org_id, record.org_name.clone())),
            Some((org_id, _)) if *org_id != event.org_id => {
                return Err(ExportVerifyError::WrongOrganization {
                    line,
                    id,
                    seq,
                    expected: *org_id,
                    found: event.org_id,
                })
            }
            Some((_, name)) if *name != record.org_name => {
                return Err(ExportVerifyError::OrgNameMismatch {
                    line,
                    id,
                    seq,
                    expected: name.clone(),
                    found: record.org_name.clone(),
                })
            }
            Some(_) => {}
        }
        let previous_seq = self.last.as_ref().map_or(0, |last| last.seq);
        if seq <= previous_seq || seq == 0 {
            return Err(ExportVerifyError::OutOfOrder {
                line,
                id,
                seq,
                previous_seq,
            });
        }
        let leaf = leaf_hash(&event);
        if chain_hash(&prev_hash, &leaf) != event.hash {
            return Err(ExportVerifyError::HashMismatch { line, id, seq });
        }
        self.proof(
            line,
            (id, seq),
            &Hash(leaf),
            record.inclusion_proof.as_ref(),
        )?;
        let expected_prev = match &self.last {
            _ if seq == 1 => Some(GENESIS),
            Some(last) if last.seq + 1 == seq => Some(last.hash),
            _ => None,
        };
        if expected_prev.is_some_and(|expected| expected != prev_hash) {
            return Err(ExportVerifyError::BrokenLink {
                line,
                id,
                seq,
                previous_seq: seq - 1,
            });
        }
        if seq > previous_seq + 1 && self.first_missing_seq.is_none() {
            self.first_missing_seq = Some(previous_seq + 1);
        }
        self.first_seq.get_or_insert(seq);
        self.records += 1;
        self.last = Some(Seen {
            line,
            id,
            seq,
            hash: event.hash,
        });
        Ok(())
    }

    /// Follows an event's inclusion proof (or its absence) to the root it gives.
    fn proof(
        &mut self,
        line: u64,
        (id, seq): (Uuid, u64),
        leaf: &Hash,
        proof: Option<&InclusionProofWire>,
    ) -> Result<(), ExportVerifyError> {
        let carried = *self.proofs.carried.get_or_insert(proof.is_some());
        let Some(proof) = proof else {
            if carried {
                return Err(ExportVerifyError::InclusionProofMissing { line, id, seq });
            }
            return Ok(());
        };
        let invalid = |reason: String| ExportVerifyError::InclusionProof {
            line,
            id,
            seq,
            reason,
        };
        if !carried {
            return Err(invalid(
                "is there although the events before carry none".into(),
            ));
        }
        if proof.leaf_index != seq - 1 {
            return Err(invalid(format!(
                "names leaf {}, not {} (seq − 1)",
                proof.leaf_index,
                seq - 1
            )));
        }
        if let Some(carried_leaf) = &proof.leaf_hash {
            if *carried_leaf != base64::engine::general_purpose::STANDARD.encode(leaf.as_bytes()) {
                return Err(invalid(format!(
                    "gives the leaf hash {carried_leaf:?}, not the one the event's fields hash to"
                )));
            }
        }
        let hashes = proof
            .hashes
            .iter()
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| Hash::from_slice(&bytes))
                    .ok_or_else(|| invalid(format!("holds {text:?}, not a base64 hash")))
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        let root = root_from_inclusion(leaf, proof.leaf_index, proof.tree_size, &hashes)
            .map_err(|e| invalid(e.to_string()))?;
        match &self.proofs.first {
            None => self.proofs.first = Some(((line, id, seq), proof.tree_size, root)),
            Some((_, size, first_root)) => {
                if (*size, *first_root) != (proof.tree_size, root) && self.proofs.conflict.is_none()
                {
                    self.proofs.conflict = Some((line, id, seq));
                }
            }
        }
        Ok(())
    }

    fn tree_checkpoint(
        &mut self,
        line: u64,
        note: Result<String, String>,
    ) -> Result<(), ExportVerifyError> {
        if self.checkpoint.is_none() || self.tree_checkpoint.is_some() {
            return Err(ExportVerifyError::Malformed {
                line,
                reason: "a tree checkpoint comes once, right after the checkpoint".into(),
            });
        }
        let note = note.map_err(|reason| ExportVerifyError::TreeCheckpointInvalid {
            line,
            reason: format!("is malformed: {reason}"),
        })?;
        self.tree_checkpoint = Some((line, note));
        Ok(())
    }

    /// Checks the signed tree checkpoint with `key` (under the key name its signature line
    /// gives: the key ID binds the two) and every proof against it; answers its size and
    /// root.
    fn check_tree(
        &self,
        key: &VerifyingKey,
        checkpoint: &crate::chain::Checkpoint,
    ) -> Result<Option<(u64, Hash)>, ExportVerifyError> {
        let carried = self.proofs.carried == Some(true);
        let Some((line, note)) = &self.tree_checkpoint else {
            if carried {
                return Err(ExportVerifyError::MissingTreeCheckpoint);
            }
            return Ok(None);
        };
        let invalid = |reason: String| ExportVerifyError::TreeCheckpointInvalid {
            line: *line,
            reason,
        };
        let name = note
            .split_once("\n\n\u{2014} ")
            .and_then(|(_, signature)| signature.split(' ').next())
            .ok_or_else(|| invalid("has no signature line".into()))?;
        let verifier = NoteVerifier::new(name, *key)
            .map_err(|e| invalid(format!("names the key {name:?}: {e}")))?;
        let (tree, _) = TreeCheckpoint::open(note.as_bytes(), &[verifier])
            .map_err(|e| invalid(format!("does not verify with the key: {e}")))?;
        if !tree.origin().ends_with(&format!("/{}", checkpoint.org_id)) {
            return Err(invalid(format!(
                "is of the log {:?}, not of organization {}",
                tree.origin(),
                checkpoint.org_id
            )));
        }
        if tree.size() != checkpoint.seq {
            return Err(invalid(format!(
                "covers {} events, the checkpoint {}",
                tree.size(),
                checkpoint.seq
            )));
        }
        if let Some(((first_line, id, seq), size, root)) = &self.proofs.first {
            let failing = if (*size, *root) != (tree.size(), tree.root()) {
                Some((*first_line, *id, *seq))
            } else {
                self.proofs.conflict
            };
            if let Some((line, id, seq)) = failing {
                return Err(ExportVerifyError::InclusionProof {
                    line,
                    id,
                    seq,
                    reason: "does not lead to the signed tree checkpoint's root".into(),
                });
            }
        } else if self.records > 0 {
            // Events are there and carry no proofs, yet the file ends with a tree checkpoint.
            let first = self.first_seq.unwrap_or(0);
            return Err(ExportVerifyError::Malformed {
                line: *line,
                reason: format!(
                    "the file ends with a tree checkpoint, but its events (from seq {first}) carry no inclusion proofs"
                ),
            });
        }
        Ok(Some((tree.size(), tree.root())))
    }

    fn checkpoint(
        &mut self,
        line: u64,
        wire: Result<CheckpointWire, String>,
    ) -> Result<(), ExportVerifyError> {
        if self.checkpoint.is_some() {
            return Err(ExportVerifyError::TrailingData { line });
        }
        let signed = wire
            .and_then(CheckpointWire::into_signed)
            .map_err(|reason| ExportVerifyError::CheckpointMalformed { line, reason })?;
        self.checkpoint = Some((line, signed));
        Ok(())
    }

    fn finish(
        self,
        key: &VerifyingKey,
        format: ExportFormat,
        gzip: bool,
    ) -> Result<VerifyReport, ExportVerifyError> {
        let Some((line, signed)) = self.checkpoint.clone() else {
            return Err(ExportVerifyError::MissingCheckpoint { lines: self.lines });
        };
        signed
            .verify(key)
            .map_err(|error| ExportVerifyError::CheckpointSignature { line, error })?;
        let checkpoint = &signed.checkpoint;
        if let Some((org_id, _)) = &self.org {
            if *org_id != checkpoint.org_id {
                return Err(ExportVerifyError::CheckpointWrongOrganization {
                    line,
                    expected: *org_id,
                    found: checkpoint.org_id,
                });
            }
        }
        let mut first_missing_seq = self.first_missing_seq;
        if let Some(last) = &self.last {
            if last.seq > checkpoint.seq {
                return Err(ExportVerifyError::BeyondCheckpoint {
                    line: last.line,
                    id: last.id,
                    seq: last.seq,
                    checkpoint_seq: checkpoint.seq,
                });
            }
            if last.seq == checkpoint.seq && last.hash != checkpoint.hash {
                return Err(ExportVerifyError::CheckpointHashMismatch {
                    line: last.line,
                    id: last.id,
                    seq: last.seq,
                });
            }
        }
        let tree = self.check_tree(key, checkpoint)?;
        let last_seq = self.last.as_ref().map(|last| last.seq);
        if last_seq.unwrap_or(0) < checkpoint.seq && first_missing_seq.is_none() {
            first_missing_seq = Some(last_seq.unwrap_or(0) + 1);
        }
        Ok(VerifyReport {
            format,
            gzip,
            org_id: checkpoint.org_id,
            org_name: self.org.and_then(|(_, name)| name),
            records: self.records,
            first_seq: self.first_seq,
            last_seq,
            complete: first_missing_seq.is_none(),
            first_missing_seq,
            checkpoint_seq: checkpoint.seq,
            signed_at: checkpoint.signed_at,
            key_id: signed.key_id.clone(),
            tree,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralization_round_trips_and_leaves_plain_text_alone() {
        for value in [
            "=SUM(A1)", "+1", "-x", "@x", "'quoted", "''", "\tx", "\rx", "'", "=",
        ] {
            let cell = neutralize_cell(value);
            assert!(cell.starts_with('\''), "{value:?} -> {cell:?}");
            assert_eq!(restore_cell(&cell), value);
        }
        for value in ["plain", "", "a=b", " =x", "{\"a\":1}", "#checkpoint"] {
            assert_eq!(neutralize_cell(value), value);
            assert_eq!(restore_cell(value), value);
        }
    }

    /// An export header, then a row whose quote never closes, of `n_bytes` in all; counts
    /// what is read of it.
    struct EndlessRow {
        n_bytes: u64,
        n_read: Rc<Cell<u64>>,
    }

    impl Read for EndlessRow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let head = format!("{}\n\"", CSV_FIELDS.join(","));
            let at = self.n_read.get();
            let n = buf.len().min((self.n_bytes - at) as usize);
            for (idx, byte) in buf[..n].iter_mut().enumerate() {
                *byte = *head.as_bytes().get(at as usize + idx).unwrap_or(&b'a');
            }
            self.n_read.set(at + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_csv_row_that_never_ends_is_refused_before_it_fills_memory() {
        let n_read = Rc::new(Cell::new(0));
        let file = EndlessRow {
            n_bytes: 64 << 20,
            n_read: Rc::clone(&n_read),
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let error = verify_export(file, &key).unwrap_err();
        assert!(
            matches!(error, ExportVerifyError::LineTooLong { line: 2 }),
            "{error}"
        );
        assert!(
            n_read.get() <= MAX_RAW_ROW_BYTES + 2 * BUFFER_BYTES as u64,
            "read {} bytes of one row",
            n_read.get()
        );
    }

    #[test]
    fn csv_header_is_the_record_field_order() {
        let record = EventRecord {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            org_name: Some("acme".into()),
            action_key: "channel_created".into(),
            action_verb: Some("created".into()),
            actor_id: Some("u-1".into()),
            actor_email: Some("a@example.com".into()),
            actor_type: Some("user".into()),
            target_id: Some("t-1".into()),
            target_email: Some("t@example.com".into()),
            target_type: Some("channel".into()),
            service_name: Some("repo".into()),
            meta: Some(Map::new()),
            occurred_at: Some(Timestamp::from_millis(0).unwrap()),
            created_at: Timestamp::from_millis(1).unwrap(),
            message: "a message".into(),
            actor_name: Some("Alice".into()),
            target_name: Some("ml".into()),
            ip_address: Some("203.0.113.7".into()),
            user_agent: Some("curl".into()),
            request_id: Some("r-1".into()),
            seq: 1,
            hash: "00".repeat(32),
            prev_hash: Some("11".repeat(32)),
            inclusion_proof: Some(InclusionProofWire {
                leaf_index: 0,
                tree_size: 3,
                leaf_hash: None,
                hashes: vec!["A".repeat(43) + "=", "B".repeat(43) + "="],
            }),
            entry: Some(crate::wire::EntryWire {
                v: 2,
                seed: Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
                salts: None,
                personal_meta: vec!["email".into()],
            }),
            outcome: crate::Outcome::Denied,
            reason: Some("not an admin".into()),
            impersonator: Some(crate::Impersonator {
                id: Some("support-1".into()),
                email: Some("support@example.com".into()),
                kind: crate::ActorType::User,
            }),
            changes: vec![crate::FieldChange {
                field: "role".into(),
                before: Some(Value::Null),
                after: Some("admin".into()),
            }],
            backfilled: true,
            redacted: vec!["meta.api_token".into()],
        };
        let Value::Object(fields) = serde_json::to_value(&record).unwrap() else {
            panic!("a record serializes to an object")
        };
        assert!(fields.keys().map(String::as_str).eq(CSV_FIELDS));

        let mut csv = csv::WriterBuilder::new().from_writer(Vec::new());
        write_csv_record(&mut csv, &record).unwrap();
        let bytes = csv.into_inner().unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(read_csv_record(&row, CSV_FIELDS.len()).unwrap(), record);
    }
}
