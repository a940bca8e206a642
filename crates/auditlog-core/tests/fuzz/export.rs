//! Fuzz target `export`: the offline verifier of an export file, which reads untrusted bytes.
//! The seeds are real exports of a small signed chain, written in memory by `ExportWriter` in
//! every format (JSON Lines and CSV, plain and gzipped; complete, filtered and empty).
//!
//! The property that matters: a file that verifies holds the chain's events and nothing
//! else. Whatever bytes were changed, a verified file's events — read back by a reader of its
//! own here, not the verifier's — are each the chain's event at that seq, and the report
//! says truthfully whether they are all of them.

use std::io::{Read, Write};
use std::sync::OnceLock;

use auditlog_core::chain::leaf_hash;
use auditlog_core::chain::{ChainTip, Checkpoint, CheckpointWire, SignedCheckpoint, GENESIS};
use auditlog_core::export::{
    restore_cell, verify_export, ExportFormat, ExportVerifyError, ExportWriter, VerifyReport,
    CSV_CHECKPOINT_CELL, CSV_FIELDS,
};
use auditlog_core::merkle::{inclusion_proof, tree_root, Hash};
use auditlog_core::note::{Checkpoint as TreeCheckpoint, NoteSigner};
use auditlog_core::tiles::Tile;
use auditlog_core::tree;
use auditlog_core::validate::validate;
use auditlog_core::wire::{EventRecord, InclusionProofWire};
use auditlog_core::{Catalog, Event, NewEvent, Timestamp};
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::driver::{self, Target};

/// Longest file tried. Also what keeps a gzip bomb small: deflate expands at most about
/// 1000-fold, so a mutant decompresses to at most some tens of MiB, read in bounded memory.
const MAX_INPUT: usize = 48 * 1024;

/// Most bytes this file's own reader decompresses.
const MAX_PLAIN: u64 = 64 << 20;

/// Parts of export lines and CSV rows.
const DICTIONARY: &[&[u8]] = &[
    b"\"type\":\"checkpoint\"",
    b"#checkpoint,",
    b"\"prev_hash\":",
    b"\"seq\":",
    b"\"hash\":\"",
    b"\"meta\":null",
    b"\"meta\":{}",
    b"\"org_name\":",
    b"\"actor_type\":null",
    b"\"occurred_at\":null",
    b"0000000000000000000000000000000000000000000000000000000000000000",
    b"\"\"",
    b",\"\",",
    b",,",
    b"'",
    b"\x1f\x8b",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
    b"\xef\xbb\xbf",
];

const TARGET: Target = Target {
    name: "export",
    dictionary: DICTIONARY,
    max_len: MAX_INPUT,
    check,
};

#[test]
fn fuzz() {
    let seeds = fixture().exports.iter().map(|e| e.bytes.clone()).collect();
    driver::run(&TARGET, seeds);
}

/// Each export the fixture writes verifies, with the report its content calls for.
#[test]
fn the_unmodified_exports_verify() {
    let fixture = fixture();
    for export in &fixture.exports {
        let report = verify_export(export.bytes.as_slice(), &fixture.key)
            .unwrap_or_else(|e| panic!("{}: {e}", export.name));
        assert_eq!(report.records, export.seqs.len() as u64, "{}", export.name);
        assert_eq!(
            report.complete,
            export.seqs.len() == fixture.chain.len(),
            "{}",
            export.name
        );
        check_verified(&export.bytes, &report);
    }
}

fn check(input: &[u8]) -> String {
    let fixture = fixture();
    let verdict = verify_export(input, &fixture.key);
    if fixture.exports.iter().any(|e| e.bytes == input) {
        assert!(verdict.is_ok(), "an unmodified export fails: {verdict:?}");
    }
    match &verdict {
        Ok(report) => check_verified(input, report),
        Err(error) => assert!(
            error.to_string().len() > 10,
            "an error without a useful message: {error:?}"
        ),
    }
    // The same bytes gzipped, in one member or split into two, verify the same way.
    if !input.starts_with(&[0x1f, 0x8b]) {
        let half = input.len() / 2;
        for compressed in [
            gzip(&[input]),
            gzip(&[&input[..half]])
                .into_iter()
                .chain(gzip(&[&input[half..]]))
                .collect(),
        ] {
            let again = verify_export(compressed.as_slice(), &fixture.key);
            assert_eq!(
                summary(&again, false),
                summary(&verdict, false),
                "the file verifies differently once gzipped"
            );
        }
    }
    summary(&verdict, true)
}

/// A verified file's events, read by [`read_export`], are each the chain's event at its seq,
/// in seq order, and the report counts them and says whether they are the whole chain up to
/// the signed checkpoint.
fn check_verified(input: &[u8], report: &VerifyReport) {
    let fixture = fixture();
    let (records, checkpoints, notes) = read_export(input)
        .unwrap_or_else(|e| panic!("a verified export cannot be read back: {e}\n{report:?}"));
    // A tree checkpoint the report vouches for is the one signed, and its root the tree's.
    match report.tree {
        Some((size, root)) => {
            assert_eq!(
                notes,
                vec![fixture.note.clone()],
                "a verified tree checkpoint"
            );
            assert_eq!((size, root), fixture.tree, "the verified tree");
        }
        None => assert!(notes.is_empty(), "an unchecked tree checkpoint: {notes:?}"),
    }
    assert_eq!(
        checkpoints.len(),
        1,
        "a verified export has {} checkpoints",
        checkpoints.len()
    );
    let signed = checkpoints[0]
        .clone()
        .into_signed()
        .expect("the checkpoint parses");
    assert!(
        fixture.checkpoints.contains(&signed),
        "a verified export carries a checkpoint that was never signed: {signed:?}"
    );
    assert_eq!(report.checkpoint_seq, signed.checkpoint.seq);
    assert_eq!(report.org_id, fixture.org_id);
    assert_eq!(
        report.records,
        records.len() as u64,
        "the report miscounts the events"
    );
    let mut seqs = Vec::new();
    for record in &records {
        let event = record
            .to_event()
            .unwrap_or_else(|e| panic!("a verified record is not an event: {e}"));
        let original = usize::try_from(event.seq)
            .ok()
            .and_then(|seq| fixture.chain.get(seq.wrapping_sub(1)))
            .unwrap_or_else(|| panic!("a verified export holds seq {}", event.seq));
        // An entry's salts count only through the commitments they make: a seed or a
        // personal meta key that commits nothing (the event has no such value) may differ
        // without changing what the leaf proves.
        let mut comparable = event.clone();
        comparable.entry = original.entry.clone();
        comparable.body.personal_meta = original.body.personal_meta.clone();
        assert_eq!(
            &comparable, original,
            "a verified export holds an event that differs from the chain's"
        );
        assert_eq!(
            leaf_hash(&event),
            leaf_hash(original),
            "a verified export holds an entry that commits to other values"
        );
        assert_eq!(
            record.org_name, report.org_name,
            "org_name differs between lines"
        );
        seqs.push(event.seq);
    }
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "a verified export's seqs do not increase: {seqs:?}"
    );
    assert_eq!(report.first_seq, seqs.first().copied());
    assert_eq!(report.last_seq, seqs.last().copied());
    let whole = (1..=signed.checkpoint.seq).collect::<Vec<_>>();
    assert_eq!(
        report.complete,
        seqs == whole,
        "the report says complete={} for seqs {seqs:?} of 1..={}",
        report.complete,
        signed.checkpoint.seq
    );
    assert_eq!(report.complete, report.ensure_complete().is_ok());
}

/// What a verdict says, without the compression (which the gzipped twin differs in) and, when
/// steering the pool, without the parts as varied as the input (line numbers, ids, reasons).
fn summary(verdict: &Result<VerifyReport, ExportVerifyError>, coarse: bool) -> String {
    match verdict {
        Ok(report) => {
            let report = VerifyReport {
                gzip: false,
                ..report.clone()
            };
            format!("{report:?}")
        }
        Err(error) if coarse => {
            let debug = format!("{error:?}");
            let variant = debug.split([' ', '(', '{']).next().unwrap_or_default();
            match error {
                // The reason's first words, without the positions and values it quotes.
                ExportVerifyError::Malformed { reason, .. }
                | ExportVerifyError::CheckpointMalformed { reason, .. } => {
                    let words: String = reason
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic() || *c == ' ' || *c == '_')
                        .take(40)
                        .collect();
                    format!("{variant} {words}")
                }
                _ => variant.to_string(),
            }
        }
        Err(error) => error.to_string(),
    }
}

/// Reads an export without the verifier: its event records and checkpoints, in file order.
/// What an export file holds, read independently of the verifier: its records, its
/// checkpoints and its tree checkpoints (signed notes).
type ReadBack = (Vec<EventRecord>, Vec<CheckpointWire>, Vec<String>);

fn read_export(file: &[u8]) -> Result<ReadBack, String> {
    let plain = if file.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        MultiGzDecoder::new(file)
            .take(MAX_PLAIN)
            .read_to_end(&mut plain)
            .map_err(|e| e.to_string())?;
        plain
    } else {
        file.to_vec()
    };
    let (mut records, mut checkpoints, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    if plain.first() == Some(&b'{') {
        for line in plain.split(|b| *b == b'\n') {
            if line.trim_ascii().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            match value.get("type").and_then(Value::as_str) {
                Some("checkpoint") => {
                    checkpoints.push(serde_json::from_value(value).map_err(|e| e.to_string())?)
                }
                Some("tree_checkpoint") => notes.push(
                    value["note"]
                        .as_str()
                        .ok_or("a tree checkpoint without a note")?
                        .to_string(),
                ),
                _ => records.push(serde_json::from_value(value).map_err(|e| e.to_string())?),
            }
        }
        return Ok((records, checkpoints, notes));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(plain.as_slice());
    let mut rows = reader.records();
    let header = rows.next().ok_or("no header")?.map_err(|e| e.to_string())?;
    // The whole header, or a file written before inclusion proofs (24 columns), before the
    // extensions (26) or before redaction (31).
    let whole_prefix =
        |n: usize| header.len() == n && header.iter().eq(CSV_FIELDS.iter().take(n).copied());
    if ![24, 26, 31, CSV_FIELDS.len()].into_iter().any(whole_prefix) {
        return Err(format!("header {header:?}"));
    }
    for row in rows {
        let row = row.map_err(|e| e.to_string())?;
        if row.iter().all(str::is_empty) {
            continue;
        }
        if row.get(0) == Some(CSV_CHECKPOINT_CELL) {
            checkpoints.push(serde_json::from_str(&row[1]).map_err(|e| e.to_string())?);
            continue;
        }
        if row.get(0) == Some("#tree_checkpoint") {
            notes.push(row[1].to_string());
            continue;
        }
        // The row as the JSON record it stands for: an empty cell is an absent value, `meta`
        // and `seq` are JSON, every other cell a string.
        let mut object = Map::new();
        for (name, cell) in CSV_FIELDS.iter().zip(row.iter()) {
            let cell = restore_cell(cell);
            let value = match *name {
                "action_key" | "message" | "hash" => Value::String(cell.to_string()),
                _ if cell.is_empty() => continue,
                "meta" | "seq" | "entry" | "impersonator" | "changes" | "redacted" => {
                    serde_json::from_str(cell).map_err(|e| e.to_string())?
                }
                "backfilled" => Value::Bool(cell == "true"),
                "inclusion_proof" => {
                    let mut parts = cell.split(' ');
                    let mut number = || -> Result<u64, String> {
                        parts
                            .next()
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(|| format!("inclusion_proof {cell:?}"))
                    };
                    let (leaf_index, tree_size) = (number()?, number()?);
                    serde_json::json!({
                        "leaf_index": leaf_index,
                        "tree_size": tree_size,
                        "hashes": parts.collect::<Vec<_>>(),
                    })
                }
                _ => Value::String(cell.to_string()),
            };
            object.insert(name.to_string(), value);
        }
        records.push(serde_json::from_value(Value::Object(object)).map_err(|e| e.to_string())?);
    }
    Ok((records, checkpoints, notes))
}

/// `parts` gzipped as one member.
fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for part in parts {
        encoder.write_all(part).unwrap();
    }
    encoder.finish().unwrap()
}

/// One export file the fixture wrote.
struct Export {
    name: String,
    /// The seqs of the events it holds.
    seqs: Vec<u64>,
    bytes: Vec<u8>,
}

/// A signed chain of a few events and the exports of it.
struct Fixture {
    key: VerifyingKey,
    org_id: Uuid,
    /// The events, `chain[i]` having seq `i + 1`.
    chain: Vec<Event>,
    /// Every checkpoint signed: the one the exports end with.
    checkpoints: Vec<SignedCheckpoint>,
    /// The signed tree checkpoint of the whole chain, and its size and root.
    note: String,
    tree: (u64, Hash),
    exports: Vec<Export>,
}

/// Events that exercise the export format: CSV quoting and formula neutralization, absent
/// values, Unicode, numbers, IPv6.
const EVENTS: [&str; 5] = [
    r#"{"action_key":"channel_created","actor_id":"u-1","actor_email":"alice@example.com","actor_name":"Alice","target_name":"ml-prod","ip_address":"203.0.113.7","meta":{"visibility":"private"},"occurred_at":"2026-03-01T12:00:00Z"}"#,
    r#"{"action_key":"token_created","actor_name":"=HYPERLINK(\"x\")","target_name":"'quoted","user_agent":"-x","ip_address":"2001:db8::7","meta":{"n":[1,1.5,-0,1e21,null,true],"é":"line\nbreak, \"quoted\"","":{}}}"#,
    r#"{"action_key":"channel_deleted","actor_type":"system","service_name":"@svc","target_id":"c-7","occurred_at":"2026-03-01T12:00:00.5+02:00"}"#,
    r#"{"action_key":"organization_user_added","actor_type":"service_account","actor_id":"sa-1","target_email":"bob@example.com","target_name":"Bob, Jr.","request_id":"req-\u00e9"}"#,
    r#"{"action_key":"policy_created"}"#,
];

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let catalog = Catalog::builtin();
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let org_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ac);
        let start = Timestamp::parse("2026-03-02T00:00:00Z").unwrap();
        let mut tip = ChainTip {
            org_id,
            seq: 0,
            hash: GENESIS,
            last_id: None,
        };
        let mut chain = Vec::new();
        let mut records = Vec::new();
        for (idx, text) in EVENTS.iter().enumerate() {
            let event = NewEvent::from_json_str(text).unwrap();
            let body = validate(event, &catalog, start).unwrap();
            let previous = tip.hash;
            // The first event's `visibility` counts as personal, as a deployment may say.
            let mut body = body;
            if idx == 0 {
                body.personal_meta = vec!["visibility".to_string()];
            }
            let event = tip.append(
                body,
                start.plus_millis(idx as i64),
                idx as u64,
                [idx as u8; 16],
            );
            let mut record = EventRecord::new(&event, Some("acme"), &catalog);
            record.prev_hash = Some(hex::encode(previous));
            chain.push(event);
            records.push(record);
        }
        let checkpoint = Checkpoint {
            org_id,
            seq: tip.seq,
            hash: tip.hash,
            signed_at: start.plus_millis(1_000),
        }
        .sign(&signing);
        let wire = checkpoint.to_wire();
        // The organization's Merkle tree, each event's inclusion proof in it, and its signed
        // checkpoint: exports carry them, and older exports did not.
        let leaves: Vec<Hash> = chain.iter().map(|e| Hash(leaf_hash(e))).collect();
        let size = leaves.len() as u64;
        let tiles: Vec<(Tile, Vec<u8>)> = tree::append(0, &[], &leaves).unwrap();
        let (tile_list, stored): (Vec<Tile>, Vec<Option<Vec<u8>>>) =
            tiles.into_iter().map(|(t, b)| (t, Some(b))).unzip();
        let reader = tree::reader_for(size, &tile_list, &stored).unwrap();
        let signer = NoteSigner::new("auditlog", signing.clone()).unwrap();
        let root = tree_root(&reader, size).unwrap();
        let note = TreeCheckpoint::new(&format!("auditlog/{org_id}"), size, root, &[])
            .unwrap()
            .sign(&[&signer])
            .unwrap();
        let proven: Vec<EventRecord> = records
            .iter()
            .map(|record| {
                let mut record = record.clone();
                let index = record.seq - 1;
                let hashes = inclusion_proof(&reader, size, index).unwrap();
                record.inclusion_proof = Some(InclusionProofWire {
                    leaf_index: index,
                    tree_size: size,
                    leaf_hash: Some(
                        base64::engine::general_purpose::STANDARD
                            .encode(leaves[index as usize].as_bytes()),
                    ),
                    hashes: hashes
                        .iter()
                        .map(|h| base64::engine::general_purpose::STANDARD.encode(h.as_bytes()))
                        .collect(),
                });
                record
            })
            .collect();
        let mut exports = Vec::new();
        for (what, seqs) in [
            ("complete", vec![1, 2, 3, 4, 5]),
            ("filtered", vec![2, 3, 5]),
            ("empty", vec![]),
        ] {
            for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
                for gzip in [false, true] {
                    for with_proofs in [true, false] {
                        let mut bytes = Vec::new();
                        let mut writer = ExportWriter::new(&mut bytes, format, gzip).unwrap();
                        let (records, tree_note) = match with_proofs {
                            true => (&proven, Some(note.as_str())),
                            false => (&records, None),
                        };
                        for seq in &seqs {
                            writer.write(&records[*seq as usize - 1]).unwrap();
                        }
                        writer.finish(&wire, tree_note).unwrap();
                        exports.push(Export {
                            name: format!(
                                "{what} {} gzip={gzip} proofs={with_proofs}",
                                format.as_str()
                            ),
                            seqs: seqs.clone(),
                            bytes,
                        });
                    }
                }
            }
        }
        Fixture {
            key: signing.verifying_key(),
            org_id,
            chain,
            checkpoints: vec![checkpoint],
            note,
            tree: (size, root),
            exports,
        }
    })
}
