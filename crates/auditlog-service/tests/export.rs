//! Exports and export jobs against a real SQLite store: every format verifies offline, every
//! kind of tampering with a file is caught and named, CSV cells never run as formulas, and
//! jobs complete, survive a dead runner and expire.

mod support;

use std::sync::Arc;
use std::time::Duration;

use auditlog_core::chain::{chain_hash, leaf_hash, Checkpoint, SignatureError};
use auditlog_core::export::{
    neutralize_cell, restore_cell, verify_export, ExportFormat, ExportVerifyError, VerifyReport,
    CSV_FIELDS,
};
use auditlog_core::merkle::{verify_inclusion, Hash};
use auditlog_core::query::{Column, Combine, Condition, Filter, FilterForm, Order, Start};
use auditlog_core::wire::EventRecord;
use auditlog_core::{Catalog, NewEvent, Timestamp};
use auditlog_service::access::Actor;
use auditlog_service::export::{write_export, ExportRequest, EXPORT_REQUESTED};
use auditlog_service::grant::ReadableOrg;
use auditlog_service::jobs::{ExportJobs, SubmitError};
use auditlog_service::Service;
use auditlog_sqlite::SqliteStore;
use auditlog_store::{ExportJob, JobStatus, Org, Store};
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use support::create_org;
use tempfile::TempDir;
use uuid::Uuid;

/// Events in the exported organization.
const N_EVENTS: u64 = 40;

/// Names a spreadsheet would run as formulas, or that start with the escape character.
const FORMULAS: [&str; 5] = ["=SUM(A1)", "+1", "-x", "@x", "'quoted"];

struct Env {
    dir: TempDir,
    service: Service,
    /// The store under `service`, which the service keeps to itself: the tests plant job
    /// rows in it directly.
    store: Arc<dyn Store>,
    org: ReadableOrg,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("data")).unwrap());
        let service = Service::new(
            store.clone(),
            Catalog::builtin(),
            SigningKey::from_bytes(&[7; 32]),
        );
        let org = create_org(&service, "acme").await;
        // A neighbour whose events must never appear in acme's export.
        let other = create_org(&service, "other").await;
        service.ingest(Some(&other), events(5)).await.unwrap();
        service.ingest(Some(&org), events(N_EVENTS)).await.unwrap();
        Env {
            dir,
            service,
            store,
            org,
        }
    }

    fn key(&self) -> VerifyingKey {
        self.service.signing_key().verifying_key()
    }

    async fn export(&self, request: &ExportRequest) -> Vec<u8> {
        let mut out = Vec::new();
        let summary = write_export(&self.service, &self.org, request, &mut out, |_, _, _| {})
            .await
            .unwrap();
        assert_eq!(summary.bytes, out.len() as u64);
        out
    }

    async fn export_text(&self, format: ExportFormat) -> String {
        let request = ExportRequest {
            format,
            ..ExportRequest::default()
        };
        String::from_utf8(self.export(&request).await).unwrap()
    }
}

/// Varied events: several actions and actors, optional fields present and absent, nested
/// `meta` with numbers, and actor and target names that look like spreadsheet formulas.
fn events(n: u64) -> Vec<NewEvent> {
    (0..n)
        .map(|idx| {
            let action = ["channel_created", "channel_deleted", "policy_created"][idx as usize % 3];
            NewEvent {
                action_key: action.into(),
                actor_email: Some(format!("user{}@example.com", idx % 4)),
                actor_name: Some(FORMULAS[idx as usize % FORMULAS.len()].into()),
                actor_id: (idx % 2 == 0).then(|| format!("u-{idx}")),
                target_name: Some(format!("{}-{idx}", FORMULAS[(idx as usize + 1) % 5])),
                target_id: Some(format!("t-{idx}")),
                ip_address: (idx % 3 == 0).then(|| "2001:db8::1".into()),
                user_agent: Some("Mozilla/5.0 \"quoted\", with comma".into()),
                request_id: (idx % 5 == 0).then(|| format!("req-{idx}")),
                service_name: Some("repo".into()),
                meta: Some(json!({"n": idx, "ratio": 0.5, "nested": {"list": [1, "two", null]}, "text": "line one, \"two\""})),
                occurred_at: Some(format!("2026-01-{:02}T10:00:00.{:03}Z", 1 + idx % 28, idx)),
                ..NewEvent::default()
            }
        })
        .collect()
}

fn verify(bytes: &[u8], key: &VerifyingKey) -> Result<VerifyReport, ExportVerifyError> {
    verify_export(bytes, key)
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

// ---- formats ----

#[tokio::test]
async fn full_exports_verify_in_every_format() {
    let env = Env::new().await;
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        for gzip in [false, true] {
            let request = ExportRequest {
                format,
                gzip,
                ..ExportRequest::default()
            };
            let bytes = env.export(&request).await;
            assert_eq!(bytes.starts_with(&[0x1f, 0x8b]), gzip);
            let report = verify(&bytes, &env.key()).unwrap();
            assert_eq!(report.format, format);
            assert_eq!(report.gzip, gzip);
            assert_eq!(report.records, N_EVENTS);
            assert_eq!(report.first_seq, Some(1));
            assert_eq!(report.last_seq, Some(N_EVENTS));
            assert_eq!(report.checkpoint_seq, N_EVENTS);
            assert!(report.complete, "{format:?} gzip={gzip}: {report:?}");
            assert_eq!(report.org_id, env.org.id);
            assert_eq!(report.org_name.as_deref(), Some("acme"));
            report.ensure_complete().unwrap();
        }
    }
}

#[tokio::test]
async fn jsonl_lines_are_the_api_records_with_prev_hash_then_the_checkpoint() {
    let env = Env::new().await;
    let text = env.export_text(ExportFormat::Jsonl).await;
    let lines = lines(&text);
    assert_eq!(lines.len() as u64, N_EVENTS + 2);
    let stored = env.store.events_by_seq(env.org.id, 0, 1000).await.unwrap();
    // The last line is the signed tree checkpoint every inclusion proof leads to.
    let tree: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(tree["type"], "tree_checkpoint");
    let (tree, _) = auditlog_core::note::Checkpoint::open(
        tree["note"].as_str().unwrap().as_bytes(),
        &[env.service.note_verifier()],
    )
    .unwrap();
    assert_eq!(tree.size(), N_EVENTS);
    let mut previous = [0u8; 32];
    for (line, event) in lines.iter().zip(&stored) {
        let mut expected = EventRecord::new(event, Some("acme"), env.service.catalog());
        expected.prev_hash = Some(hex::encode(previous));
        let mut record = serde_json::from_str::<EventRecord>(line).unwrap();
        let proof = record.inclusion_proof.take().expect("an inclusion proof");
        assert_eq!(proof.leaf_index, event.seq - 1);
        assert_eq!(proof.tree_size, N_EVENTS);
        let hashes: Vec<Hash> = proof
            .hashes
            .iter()
            .map(|h| {
                Hash::from_slice(&base64::engine::general_purpose::STANDARD.decode(h).unwrap())
                    .unwrap()
            })
            .collect();
        verify_inclusion(
            &Hash(leaf_hash(event)),
            proof.leaf_index,
            N_EVENTS,
            &hashes,
            &tree.root(),
        )
        .unwrap();
        assert_eq!(record, expected);
        assert!(
            !line.contains(": ") && !line.contains('\n'),
            "compact: {line}"
        );
        previous = event.hash;
    }
    let checkpoint: Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
    assert_eq!(checkpoint["type"], "checkpoint");
    assert_eq!(checkpoint["seq"], N_EVENTS);
    assert_eq!(checkpoint["hash"], hex::encode(stored.last().unwrap().hash));
}

#[tokio::test]
async fn csv_has_the_header_json_meta_empty_absent_cells_and_a_checkpoint_row() {
    let env = Env::new().await;
    let text = env.export_text(ExportFormat::Csv).await;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows[0].iter().eq(CSV_FIELDS));
    assert_eq!(rows.len() as u64, N_EVENTS + 3);
    let meta_idx = CSV_FIELDS.iter().position(|f| *f == "meta").unwrap();
    let meta: Value = serde_json::from_str(&rows[1][meta_idx]).unwrap();
    assert_eq!(meta["nested"]["list"], json!([1, "two", null]));
    let request_idx = CSV_FIELDS.iter().position(|f| *f == "request_id").unwrap();
    assert_eq!(
        &rows[2][request_idx], "",
        "absent request_id is an empty cell"
    );
    let proof_idx = CSV_FIELDS
        .iter()
        .position(|f| *f == "inclusion_proof")
        .unwrap();
    assert!(
        rows[1][proof_idx].starts_with(&format!("0 {N_EVENTS} ")),
        "leaf index, tree size, hashes: {}",
        &rows[1][proof_idx]
    );
    let checkpoint_row = &rows[rows.len() - 2];
    assert_eq!(checkpoint_row.len(), 2);
    assert_eq!(&checkpoint_row[0], "#checkpoint");
    let checkpoint: Value = serde_json::from_str(&checkpoint_row[1]).unwrap();
    assert_eq!(checkpoint["seq"], N_EVENTS);
    let last = rows.last().unwrap();
    assert_eq!(&last[0], "#tree_checkpoint");
    assert!(last[1].starts_with(&format!("auditlog/{}\n{N_EVENTS}\n", env.org.id)));
}

#[tokio::test]
async fn csv_cells_never_start_a_formula_and_restore_exactly() {
    let env = Env::new().await;
    let text = env.export_text(ExportFormat::Csv).await;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let name_idx = CSV_FIELDS.iter().position(|f| *f == "actor_name").unwrap();
    let mut n_neutralized = 0;
    for (row_idx, row) in reader.records().enumerate() {
        let row = row.unwrap();
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "row {row_idx}: a cell starts a formula: {cell:?}"
            );
        }
        if row.len() == CSV_FIELDS.len() {
            let expected = FORMULAS[row_idx % FORMULAS.len()];
            assert_eq!(restore_cell(&row[name_idx]), expected);
            assert_eq!(&row[name_idx], format!("'{expected}"));
            n_neutralized += 1;
        }
    }
    assert_eq!(n_neutralized, N_EVENTS);
    // The raw text too: no line, and no cell after a separator, opens a formula.
    for line in text.lines() {
        assert!(!line.starts_with(['=', '+', '-', '@']), "{line}");
        for formula in FORMULAS {
            assert!(!line.contains(&format!(",{formula}")), "{line}");
        }
    }
    for value in [
        "=SUM(A1)", "+1", "-x", "@x", "'quoted", "\tx", "\rx", "plain",
    ] {
        assert_eq!(restore_cell(&neutralize_cell(value)), value);
    }
    verify(text.as_bytes(), &env.key()).unwrap();
}

#[tokio::test]
async fn filtered_exports_verify_but_are_not_complete() {
    let env = Env::new().await;
    let request = ExportRequest {
        filter: FilterForm {
            actions: vec!["channel_created".into()],
            users: vec!["user1@example.com".into()],
            ..FilterForm::default()
        }
        .filter(),
        ..ExportRequest::default()
    };
    let filter = request.filter.clone();
    let expected: Vec<u64> = env
        .store
        .events_by_seq(env.org.id, 0, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| filter.matches(e))
        .map(|e| e.seq)
        .collect();
    assert!(!expected.is_empty() && (expected.len() as u64) < N_EVENTS);
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let bytes = env
            .export(&ExportRequest {
                format,
                ..request.clone()
            })
            .await;
        let report = verify(&bytes, &env.key()).unwrap();
        assert_eq!(report.records, expected.len() as u64);
        assert_eq!(report.first_seq, expected.first().copied());
        assert_eq!(report.last_seq, expected.last().copied());
        assert!(!report.complete);
        assert_eq!(report.checkpoint_seq, N_EVENTS);
        assert!(matches!(
            report.ensure_complete(),
            Err(ExportVerifyError::Incomplete {
                checkpoint_seq: N_EVENTS,
                ..
            })
        ));
    }
    // A date range is ANDed with the conditions.
    let ranged = ExportRequest {
        filter: Filter {
            from: Some(Timestamp::parse("2026-01-05T00:00:00Z").unwrap()),
            to: Some(Timestamp::parse("2026-01-06T23:59:59Z").unwrap()),
            ..Filter::default()
        },
        ..ExportRequest::default()
    };
    let report = verify(&env.export(&ranged).await, &env.key()).unwrap();
    assert!(report.records > 0 && report.records < N_EVENTS);
}

#[tokio::test]
async fn an_empty_organization_exports_just_its_checkpoint() {
    let env = Env::new().await;
    let empty = create_org(&env.service, "empty").await;
    let mut out = Vec::new();
    let summary = write_export(
        &env.service,
        &empty,
        &ExportRequest::default(),
        &mut out,
        |_, _, _| {},
    )
    .await
    .unwrap();
    assert_eq!((summary.records, summary.head_seq), (0, 0));
    let report = verify(&out, &env.key()).unwrap();
    assert_eq!(report.records, 0);
    assert!(report.complete);
}

#[tokio::test]
async fn an_invalid_filter_is_refused() {
    let env = Env::new().await;
    // Filters that `q` parsing would never make: no values, too many, too long.
    for conditions in [
        vec![Condition::AnyOf {
            column: Column::Actor,
            values: Vec::new(),
        }],
        vec![Condition::Text(" ".into())],
        vec![Condition::Text("x".repeat(10_000))],
        vec![Condition::Text("x".into()); 101],
    ] {
        let request = ExportRequest {
            filter: Filter {
                conditions,
                ..Filter::default()
            },
            ..ExportRequest::default()
        };
        let result = write_export(&env.service, &env.org, &request, Vec::new(), |_, _, _| {}).await;
        assert!(matches!(
            result,
            Err(auditlog_service::export::ExportError::Request(_))
        ));
    }
}

// ---- tampering ----

/// A different but well-formed value for each field of a JSON record.
fn altered(field: &str, value: &Value) -> Value {
    match field {
        "id" | "org_id" => json!(Uuid::new_v4().to_string()),
        "seq" => json!(value.as_u64().unwrap() + 1000),
        "hash" | "prev_hash" => json!("ab".repeat(32)),
        "actor_type" => json!(if value == "system" { "user" } else { "system" }),
        "ip_address" => json!("203.0.113.99"),
        "occurred_at" | "created_at" => json!("2020-02-02T02:02:02.002Z"),
        "meta" => json!({"n": 1_000_000}),
        _ => match value {
            Value::String(text) => json!(format!("{text}x")),
            _ => json!("added@example.com"),
        },
    }
}

/// Every field the chain covers, plus `hash` and `prev_hash`.
const COVERED: [&str; 22] = [
    "id",
    "org_id",
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
    "actor_name",
    "target_name",
    "ip_address",
    "user_agent",
    "request_id",
    "seq",
    "hash",
    "prev_hash",
];

/// Checks that an edit of `field` of the event `seq` on line `line` is reported there.
fn assert_edit_detected(field: &str, line: u64, seq: u64, error: ExportVerifyError) {
    match (field, &error) {
        ("org_id", ExportVerifyError::WrongOrganization { line: at, .. })
        | ("org_name", ExportVerifyError::OrgNameMismatch { line: at, .. }) => {
            assert_eq!(*at, line, "{field}: {error}")
        }
        (
            _,
            ExportVerifyError::HashMismatch {
                line: at,
                seq: found,
                ..
            },
        ) => {
            assert_eq!(*at, line, "{field}: {error}");
            let expected_seq = if field == "seq" { seq + 1000 } else { seq };
            assert_eq!(*found, expected_seq, "{field}: {error}");
        }
        _ => panic!("editing {field} gave an unexpected error: {error}"),
    }
    assert!(
        error.to_string().starts_with(&format!("line {line}:")),
        "{error}"
    );
}

#[tokio::test]
async fn editing_any_field_of_a_jsonl_line_is_detected() {
    let env = Env::new().await;
    let original = lines(&env.export_text(ExportFormat::Jsonl).await);
    let target = 7usize; // 0-based line index: seq 8, line 8
    for field in COVERED.iter().chain(&["org_name"]) {
        let mut edited = original.clone();
        let mut record: Value = serde_json::from_str(&edited[target]).unwrap();
        let new_value = altered(field, &record[field]);
        record[field] = new_value;
        edited[target] = serde_json::to_string(&record).unwrap();
        let error = verify(&join(&edited), &env.key()).unwrap_err();
        assert_edit_detected(field, target as u64 + 1, target as u64 + 1, error);
    }
}

#[tokio::test]
async fn editing_any_cell_of_a_csv_row_is_detected() {
    let env = Env::new().await;
    let text = env.export_text(ExportFormat::Csv).await;
    let rows: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    let target = 8usize; // row index: header is 0, so seq 8, on line 9
    for field in COVERED.iter().chain(&["org_name"]) {
        let idx = CSV_FIELDS.iter().position(|f| f == field).unwrap();
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        for (row_idx, row) in rows.iter().enumerate() {
            if row_idx != target {
                writer.write_record(row).unwrap();
                continue;
            }
            let mut cells: Vec<String> = row.iter().map(str::to_string).collect();
            let old = restore_cell(&cells[idx]).to_string();
            let old_value = match *field {
                _ if old.is_empty() => Value::Null,
                "seq" => json!(old.parse::<u64>().unwrap()),
                "meta" => serde_json::from_str(&old).unwrap(),
                _ => json!(old),
            };
            let new = match altered(field, &old_value) {
                Value::String(text) => text,
                other => other.to_string(),
            };
            cells[idx] = neutralize_cell(&new).into_owned();
            writer.write_record(&cells).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        let error = verify(&bytes, &env.key()).unwrap_err();
        assert_edit_detected(field, target as u64 + 1, target as u64, error);
    }
}

#[tokio::test]
async fn message_is_not_covered_by_the_chain() {
    // Documented limit (docs/chain-format.md §2): the sentence is derived, not hashed.
    let env = Env::new().await;
    let mut edited = lines(&env.export_text(ExportFormat::Jsonl).await);
    let mut record: Value = serde_json::from_str(&edited[3]).unwrap();
    record["message"] = json!("something else entirely");
    edited[3] = serde_json::to_string(&record).unwrap();
    verify(&join(&edited), &env.key()).unwrap();
}

#[tokio::test]
async fn deleting_a_line_leaves_the_export_incomplete_at_that_seq() {
    let env = Env::new().await;
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let original = lines(&env.export_text(format).await);
        // JSONL line 5 holds seq 5; CSV line 5 (after the header) holds seq 4.
        let (line_idx, seq) = match format {
            ExportFormat::Jsonl => (4, 5),
            ExportFormat::Csv => (4, 4),
        };
        let mut edited = original.clone();
        edited.remove(line_idx);
        let report = verify(&join(&edited), &env.key()).unwrap();
        assert!(!report.complete);
        assert_eq!(report.records, N_EVENTS - 1);
        assert_eq!(report.first_missing_seq, Some(seq));
        let error = report.ensure_complete().unwrap_err();
        assert!(
            matches!(error, ExportVerifyError::Incomplete { missing_seq, checkpoint_seq: N_EVENTS } if missing_seq == seq),
            "{error}"
        );
        // Removing the newest event: the checkpoint still names seq N.
        let mut edited = original.clone();
        let checkpoint_idx = edited
            .iter()
            .position(|l| l.starts_with("#checkpoint,") || l.contains(r#""type":"checkpoint""#))
            .unwrap();
        edited.remove(checkpoint_idx - 1);
        let report = verify(&join(&edited), &env.key()).unwrap();
        assert_eq!(report.first_missing_seq, Some(N_EVENTS));
    }
}

#[tokio::test]
async fn reordering_lines_is_detected() {
    let env = Env::new().await;
    let mut edited = lines(&env.export_text(ExportFormat::Jsonl).await);
    edited.swap(2, 3); // seq 4 on line 3, seq 3 on line 4
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(
            error,
            ExportVerifyError::OutOfOrder {
                line: 4,
                seq: 3,
                previous_seq: 4,
                ..
            }
        ),
        "{error}"
    );
    // Repeating a line is the same failure.
    let mut edited = lines(&env.export_text(ExportFormat::Jsonl).await);
    let copy = edited[5].clone();
    edited.insert(6, copy);
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(
            error,
            ExportVerifyError::OutOfOrder {
                line: 7,
                seq: 6,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn altering_or_removing_the_checkpoint_is_detected() {
    let env = Env::new().await;
    let original = lines(&env.export_text(ExportFormat::Jsonl).await);
    // The checkpoint, then the tree checkpoint.
    let last = original.len() - 2;
    let checkpoint_line = original.len() as u64 - 1;

    let mut removed = original.clone();
    removed.truncate(last);
    let error = verify(&join(&removed), &env.key()).unwrap_err();
    assert!(
        matches!(error, ExportVerifyError::MissingCheckpoint { lines } if lines == N_EVENTS),
        "{error}"
    );
    // Without its tree checkpoint, the events' proofs lead nowhere signed.
    let mut removed = original.clone();
    removed.pop();
    let error = verify(&join(&removed), &env.key()).unwrap_err();
    assert!(
        matches!(error, ExportVerifyError::MissingTreeCheckpoint),
        "{error}"
    );

    for (field, value) in [
        ("seq", json!(N_EVENTS - 1)),
        ("hash", json!("cd".repeat(32))),
        ("signed_at", json!("2030-01-01T00:00:00.000Z")),
        ("signature", json!("00".repeat(64))),
    ] {
        let mut edited = original.clone();
        let mut checkpoint: Value = serde_json::from_str(&edited[last]).unwrap();
        checkpoint[field] = value;
        edited[last] = serde_json::to_string(&checkpoint).unwrap();
        let error = verify(&join(&edited), &env.key()).unwrap_err();
        assert!(
            matches!(&error, ExportVerifyError::CheckpointSignature { line, error: SignatureError::BadSignature } if *line == checkpoint_line),
            "{field}: {error}"
        );
    }

    let mut edited = original.clone();
    edited[last] = edited[last].replace("\"seq\"", "\"sequence\"");
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(error, ExportVerifyError::CheckpointMalformed { .. }),
        "{error}"
    );

    let mut trailing = original.clone();
    trailing.push(original[0].clone());
    let error = verify(&join(&trailing), &env.key()).unwrap_err();
    assert!(
        matches!(error, ExportVerifyError::TrailingData { line } if line == checkpoint_line + 2),
        "{error}"
    );

    // A file cut short in the middle of the gzip stream.
    let gz = env
        .export(&ExportRequest {
            gzip: true,
            ..ExportRequest::default()
        })
        .await;
    let error = verify(&gz[..gz.len() / 2], &env.key()).unwrap_err();
    assert!(
        matches!(
            error,
            ExportVerifyError::Io(_)
                | ExportVerifyError::Malformed { .. }
                | ExportVerifyError::MissingCheckpoint { .. }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn another_key_is_refused() {
    let env = Env::new().await;
    let bytes = env.export(&ExportRequest::default()).await;
    let other = SigningKey::from_bytes(&[9; 32]).verifying_key();
    let error = verify(&bytes, &other).unwrap_err();
    assert!(
        matches!(error, ExportVerifyError::CheckpointSignature { line, error: SignatureError::OtherKey { .. } } if line == N_EVENTS + 1),
        "{error}"
    );
}

#[tokio::test]
async fn a_consistently_rewritten_chain_fails_at_the_signed_hash() {
    // An attacker edits one event and re-hashes everything after it, so every line is
    // self-consistent and links; only the checkpoint, which they cannot re-sign, disagrees.
    let env = Env::new().await;
    let mut edited = lines(&env.export_text(ExportFormat::Jsonl).await);
    let mut previous: Option<[u8; 32]> = None;
    for line in edited.iter_mut().take(N_EVENTS as usize) {
        let mut record: EventRecord = serde_json::from_str(line).unwrap();
        if record.seq == 10 {
            record.actor_email = Some("someone-else@example.com".into());
        }
        if let Some(previous) = previous {
            record.prev_hash = Some(hex::encode(previous));
        }
        let prev =
            auditlog_core::chain::decode_hex_array::<32>(record.prev_hash.as_deref().unwrap())
                .unwrap();
        let leaf = leaf_hash(&record.to_event().unwrap());
        let hash = chain_hash(&prev, &leaf);
        record.hash = hex::encode(hash);
        // The leaf hash the proof carries too, or the edit shows at once.
        record.inclusion_proof.as_mut().unwrap().leaf_hash =
            Some(base64::engine::general_purpose::STANDARD.encode(leaf));
        previous = Some(hash);
        *line = serde_json::to_string(&record).unwrap();
    }
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(error, ExportVerifyError::CheckpointHashMismatch { line, seq, .. } if line == N_EVENTS && seq == N_EVENTS),
        "{error}"
    );
    // Re-signing with their own key only moves the failure to the key.
    let forged_key = SigningKey::from_bytes(&[3; 32]);
    let forged = Checkpoint {
        org_id: env.org.id,
        seq: N_EVENTS,
        hash: previous.unwrap(),
        signed_at: Timestamp::now(),
    }
    .sign(&forged_key);
    // They drop the inclusion proofs and the tree checkpoint, which they cannot re-sign for
    // this organization's log either.
    edited.pop();
    for line in edited.iter_mut().take(N_EVENTS as usize) {
        let mut record: EventRecord = serde_json::from_str(line).unwrap();
        record.inclusion_proof = None;
        *line = serde_json::to_string(&record).unwrap();
    }
    let last = edited.len() - 1;
    edited[last] = serde_json::to_string(&forged.to_wire()).unwrap();
    verify(&join(&edited), &forged_key.verifying_key()).unwrap();
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(
            error,
            ExportVerifyError::CheckpointSignature {
                error: SignatureError::OtherKey { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn garbage_is_malformed_not_a_panic() {
    let env = Env::new().await;
    for (bytes, what) in [
        (&b""[..], "empty"),
        (b"{not json}\n", "bad json"),
        (b"id,org_id\n1,2\n", "foreign csv"),
        (&[0x1f, 0x8b, 0, 0][..], "broken gzip"),
    ] {
        assert!(verify(bytes, &env.key()).is_err(), "{what}");
    }
    let long = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(2 << 20));
    assert!(matches!(
        verify(long.as_bytes(), &env.key()),
        Err(ExportVerifyError::LineTooLong { line: 1 })
    ));
}

// ---- jobs ----

fn admin() -> Actor {
    Actor {
        id: Some("u-admin".into()),
        email: Some("admin@example.com".into()),
        name: Some("Admin".into()),
        ..Actor::operator()
    }
}

async fn wait_for(jobs: &ExportJobs, org: &ReadableOrg, id: Uuid, status: JobStatus) -> ExportJob {
    for _ in 0..400 {
        let job = jobs.status(org, id).await.unwrap().unwrap();
        if job.status == status {
            return job;
        }
        assert!(
            !matches!(job.status, JobStatus::Failed),
            "job failed: {:?}",
            job.error_message
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} did not reach {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_job_runs_completes_and_its_file_verifies() {
    let env = Env::new().await;
    let jobs = Arc::new(ExportJobs::new(
        env.service.clone(),
        env.dir.path().join("exports"),
    ));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let runner = jobs.clone().spawn(shutdown);
    let request = ExportRequest {
        filter: Filter {
            conditions: vec![Condition::AnyOf {
                column: Column::ActionKey,
                values: vec!["channel_created".into(), EXPORT_REQUESTED.into()],
            }],
            ..Filter::default()
        },
        format: ExportFormat::Csv,
        gzip: true,
    };
    let job = jobs
        .submit(&env.org, request.clone(), &admin())
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.requested_by, "admin@example.com");
    let done = wait_for(&jobs, &env.org, job.id, JobStatus::Completed).await;
    assert_eq!(done.progress, 100);
    assert!(done.completed_at.is_some() && done.expires_at > done.completed_at);
    assert_eq!(
        done.file_name.as_deref(),
        Some(format!("{}.csv.gz", job.id).as_str())
    );
    let path = jobs.file_path(&done).unwrap();
    let report = verify_export(std::fs::File::open(&path).unwrap(), &env.key()).unwrap();
    // 14 of the 40 are channel_created; the export includes its own request.
    assert_eq!(done.total_records, Some(report.records));
    assert_eq!(report.records, 14 + 1);
    assert_eq!(report.checkpoint_seq, N_EVENTS + 1);
    assert!(!std::fs::read_dir(jobs.dir()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".part")));

    // The request is in the organization's log, naming the job and the filter.
    let page = env
        .service
        .page(
            &env.org,
            Filter {
                conditions: vec![Condition::AnyOf {
                    column: Column::ActionKey,
                    values: vec![EXPORT_REQUESTED.into()],
                }],
                combine: Combine::And,
                from: None,
                to: None,
            },
            Order::NewestFirst,
            10,
            Start::Offset(0),
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    let body = &page.events[0].body;
    assert_eq!(body.target_id.as_deref(), Some(job.id.to_string().as_str()));
    assert_eq!(body.actor_email.as_deref(), Some("admin@example.com"));
    assert_eq!(body.meta["filter"], json!(request.filter));
    assert_eq!(body.meta["format"], "csv");
    // The job row stores the same encoding, and reads back as the request.
    let stored = env
        .store
        .get_job(env.org.id, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<ExportRequest>(&stored.request).unwrap(),
        request
    );
    assert_eq!(body.meta["gzip"], true);

    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn an_invalid_request_stores_and_records_nothing() {
    let env = Env::new().await;
    let jobs = ExportJobs::new(env.service.clone(), env.dir.path().join("exports"));
    let request = ExportRequest {
        filter: Filter {
            conditions: vec![Condition::Text(String::new())],
            ..Filter::default()
        },
        ..ExportRequest::default()
    };
    let error = jobs.submit(&env.org, request, &admin()).await.unwrap_err();
    assert!(matches!(error, SubmitError::Invalid(_)), "{error}");
    assert_eq!(
        env.store.chain_head(env.org.id).await.unwrap().seq,
        N_EVENTS
    );
    assert!(jobs.run_next().await.unwrap().is_none());
}

fn job_row(org: &Org, status: JobStatus, heartbeat_at: Option<Timestamp>) -> ExportJob {
    ExportJob {
        id: Uuid::now_v7(),
        org_id: org.id,
        status,
        request: serde_json::to_string(&ExportRequest::default()).unwrap(),
        requested_by: "admin@example.com".into(),
        created_at: Timestamp::now(),
        completed_at: None,
        progress: 37,
        total_records: None,
        error_message: None,
        file_name: None,
        expires_at: None,
        claimed_by: Some("dead-runner".into()),
        heartbeat_at,
    }
}

#[tokio::test]
async fn a_job_left_running_by_a_dead_runner_is_taken_over() {
    let env = Env::new().await;
    let store = &env.store;
    // A live runner's job (fresh heartbeat) is left alone.
    let live = store
        .create_job(job_row(
            &env.org,
            JobStatus::Running,
            Some(Timestamp::now()),
        ))
        .await
        .unwrap();
    let jobs = ExportJobs::new(env.service.clone(), env.dir.path().join("exports"));
    assert!(jobs.run_next().await.unwrap().is_none());
    assert_eq!(
        store
            .get_job(env.org.id, live.id)
            .await
            .unwrap()
            .unwrap()
            .claimed_by
            .as_deref(),
        Some("dead-runner")
    );

    // A dead one's (no heartbeat for a minute) is finished by the new runner, and a part file
    // it left behind is replaced.
    let stale = store
        .create_job(job_row(
            &env.org,
            JobStatus::Running,
            Some(Timestamp::now().plus_millis(-60_000)),
        ))
        .await
        .unwrap();
    std::fs::create_dir_all(jobs.dir()).unwrap();
    std::fs::write(
        jobs.dir().join(format!("{}.jsonl.part", stale.id)),
        b"half a file",
    )
    .unwrap();
    let done = jobs.run_next().await.unwrap().unwrap();
    assert_eq!(done.id, stale.id);
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.claimed_by.as_deref(), Some(jobs.runner_id()));
    assert_eq!(done.total_records, Some(N_EVENTS));
    let report = verify_export(
        std::fs::File::open(jobs.file_path(&done).unwrap()).unwrap(),
        &env.key(),
    )
    .unwrap();
    assert!(report.complete);
    assert!(!jobs.dir().join(format!("{}.jsonl.part", stale.id)).exists());
}

#[tokio::test]
async fn expired_files_are_deleted_and_their_jobs_marked() {
    let env = Env::new().await;
    let jobs = ExportJobs::new(env.service.clone(), env.dir.path().join("exports"))
        .with_ttl(Duration::ZERO);
    let job = jobs
        .submit(&env.org, ExportRequest::default(), &admin())
        .await
        .unwrap();
    let done = jobs.run_next().await.unwrap().unwrap();
    assert_eq!((done.id, done.status), (job.id, JobStatus::Completed));
    let path = jobs.dir().join(done.file_name.as_deref().unwrap());
    assert!(path.exists());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(jobs.file_path(&done), None, "an expired file is not served");
    assert_eq!(jobs.sweep_expired().await.unwrap(), 1);
    assert!(!path.exists());
    let expired = jobs.status(&env.org, job.id).await.unwrap().unwrap();
    assert_eq!(expired.status, JobStatus::Expired);
    assert_eq!(jobs.file_path(&expired), None);
    assert_eq!(jobs.sweep_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn file_paths_never_come_from_stored_names_that_are_not_the_jobs_own() {
    let env = Env::new().await;
    let jobs = ExportJobs::new(env.service.clone(), env.dir.path().join("exports"));
    let mut job = job_row(&env.org, JobStatus::Completed, None);
    job.expires_at = Some(Timestamp::now().plus_millis(60_000));
    for name in [
        "../../etc/passwd",
        "other.jsonl",
        &format!("{}.jsonl/../x", job.id),
    ] {
        job.file_name = Some(name.to_string());
        assert_eq!(jobs.file_path(&job), None, "{name}");
    }
    job.file_name = Some(format!("{}.jsonl", job.id));
    assert_eq!(
        jobs.file_path(&job),
        Some(jobs.dir().join(format!("{}.jsonl", job.id)))
    );
}

// ---- inclusion proofs ----

/// A filtered export: user1's channel creations.
fn filtered_request(format: ExportFormat) -> ExportRequest {
    ExportRequest {
        filter: FilterForm {
            actions: vec!["channel_created".into()],
            users: vec!["user1@example.com".into()],
            ..FilterForm::default()
        }
        .filter(),
        format,
        ..ExportRequest::default()
    }
}

#[tokio::test]
async fn every_event_of_a_filtered_export_is_proven_in_the_signed_tree() {
    let env = Env::new().await;
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let bytes = env.export(&filtered_request(format)).await;
        let report = verify(&bytes, &env.key()).unwrap();
        assert!(!report.complete, "a filtered export");
        let (size, root) = report.tree.expect("proven in a tree checkpoint");
        assert_eq!(size, N_EVENTS);
        let signed = env.service.tree_checkpoint(&env.org).await.unwrap();
        assert_eq!(root, signed.root, "{format:?}: the root the service signed");
    }
}

#[tokio::test]
async fn a_changed_proof_or_event_names_the_first_event_whose_proof_fails() {
    let env = Env::new().await;
    let text = String::from_utf8(env.export(&filtered_request(ExportFormat::Jsonl)).await).unwrap();
    let original = lines(&text);
    let n_records = original.len() - 2;
    assert!(n_records >= 3);
    // A changed hash in the second event's proof: that event fails, by line.
    let mut edited = original.clone();
    let mut record: EventRecord = serde_json::from_str(&edited[1]).unwrap();
    let proof = record.inclusion_proof.as_mut().unwrap();
    proof.hashes[0] = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    edited[1] = serde_json::to_string(&record).unwrap();
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(&error, ExportVerifyError::InclusionProof { line: 2, seq, .. } if *seq == record.seq),
        "{error}"
    );
    // The same in the first event's proof: the first event fails, though the others agree
    // with each other.
    let mut edited = original.clone();
    let mut record: EventRecord = serde_json::from_str(&edited[0]).unwrap();
    let proof = record.inclusion_proof.as_mut().unwrap();
    let last = proof.hashes.len() - 1;
    proof.hashes[last] = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    edited[0] = serde_json::to_string(&record).unwrap();
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(&error, ExportVerifyError::InclusionProof { line: 1, .. }),
        "{error}"
    );
    // A proof naming another leaf, another leaf hash, a malformed hash, a proof removed:
    // each named.
    let leaf_changes = [
        ("leaf_index", 3u64),
        ("leaf_hash", 3),
        ("hash", 3),
        ("removed", 3),
    ];
    for (change, expected_line) in leaf_changes {
        let mut edited = original.clone();
        let mut record: EventRecord = serde_json::from_str(&edited[2]).unwrap();
        match change {
            "leaf_index" => record.inclusion_proof.as_mut().unwrap().leaf_index += 1,
            "leaf_hash" => {
                let proof = record.inclusion_proof.as_mut().unwrap();
                assert!(proof.leaf_hash.is_some(), "JSON Lines carries leaf hashes");
                proof.leaf_hash = Some(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
            }
            "hash" => record.inclusion_proof.as_mut().unwrap().hashes[0] = "not base64!".into(),
            _ => record.inclusion_proof = None,
        }
        edited[2] = serde_json::to_string(&record).unwrap();
        let error = verify(&join(&edited), &env.key()).unwrap_err();
        assert!(
            matches!(&error,
                ExportVerifyError::InclusionProof { line, .. }
                | ExportVerifyError::InclusionProofMissing { line, .. } if *line == expected_line),
            "{change}: {error}"
        );
    }
    // Every proof stripped, the tree checkpoint kept: refused, not read as an old export.
    let mut edited = original.clone();
    for line in edited.iter_mut().take(n_records) {
        let mut record: EventRecord = serde_json::from_str(line).unwrap();
        record.inclusion_proof = None;
        *line = serde_json::to_string(&record).unwrap();
    }
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(&error, ExportVerifyError::Malformed { .. }),
        "{error}"
    );
    // A tree checkpoint signed by another key.
    let mut edited = original.clone();
    let forged =
        auditlog_core::note::NoteSigner::new("auditlog", SigningKey::from_bytes(&[3; 32])).unwrap();
    let (tree, _) = auditlog_core::note::Checkpoint::open(
        serde_json::from_str::<Value>(&original[n_records + 1]).unwrap()["note"]
            .as_str()
            .unwrap()
            .as_bytes(),
        &[env.service.note_verifier()],
    )
    .unwrap();
    let note = tree.sign(&[&forged]).unwrap();
    edited[n_records + 1] = json!({"type": "tree_checkpoint", "note": note}).to_string();
    let error = verify(&join(&edited), &env.key()).unwrap_err();
    assert!(
        matches!(&error, ExportVerifyError::TreeCheckpointInvalid { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn exports_without_proofs_still_verify() {
    // Files written before exports carried proofs: the same events, no proof on any of them
    // and no tree checkpoint. They verify by their chain alone, as they always did.
    let env = Env::new().await;
    let mut old = lines(&env.export_text(ExportFormat::Jsonl).await);
    old.pop();
    for line in old.iter_mut().take(N_EVENTS as usize) {
        let mut record: EventRecord = serde_json::from_str(line).unwrap();
        record.inclusion_proof = None;
        *line = serde_json::to_string(&record).unwrap();
    }
    let report = verify(&join(&old), &env.key()).unwrap();
    assert!(report.complete && report.tree.is_none(), "{report:?}");
    // CSV: every proof cell empty, and no tree checkpoint row.
    let text = env.export_text(ExportFormat::Csv).await;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let proof_idx = CSV_FIELDS
        .iter()
        .position(|f| *f == "inclusion_proof")
        .unwrap();
    for (row_idx, row) in reader.records().enumerate() {
        let row = row.unwrap();
        match row.get(0) {
            Some("#tree_checkpoint") => {}
            Some("#checkpoint") => writer.write_record(&row).unwrap(),
            _ if row_idx == 0 => writer.write_record(&row).unwrap(),
            _ => {
                let mut cells: Vec<&str> = row.iter().collect();
                cells[proof_idx] = "";
                writer.write_record(cells).unwrap();
            }
        }
    }
    let old_csv = writer.into_inner().unwrap();
    let report = verify(&old_csv, &env.key()).unwrap();
    assert!(report.complete && report.tree.is_none(), "{report:?}");
}

// ---- redaction ----

#[tokio::test]
async fn redacted_events_export_without_their_secrets_and_verify_in_every_format() {
    let secret = "tok-9c1e-never-stored";
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("data")).unwrap());
    let rules = auditlog_core::redact::RedactionRules::parse(&["*token*", "password"]).unwrap();
    let service = Service::new(store, Catalog::builtin(), SigningKey::from_bytes(&[7; 32]))
        .with_redaction(rules);
    let org = create_org(&service, "acme").await;
    let mut batch = events(3);
    batch[1].meta = Some(json!({"api_token": secret, "hooks": [{"Token": secret, "url": "u"}]}));
    batch[1].changes = Some(json!([{"field": "password", "before": secret, "after": secret}]));
    let stored = service.ingest(Some(&org), batch).await.unwrap();
    assert_eq!(
        stored[1].body.extensions.redacted,
        [
            "changes[0].after",
            "changes[0].before",
            "meta.api_token",
            "meta.hooks[0].Token"
        ]
    );
    assert!(stored[0].body.extensions.redacted.is_empty());

    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let request = ExportRequest {
            format,
            ..ExportRequest::default()
        };
        let mut bytes = Vec::new();
        write_export(&service, &org, &request, &mut bytes, |_, _, _| {})
            .await
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains(secret), "{format:?}: {text}");
        assert!(text.contains("meta.hooks[0].Token"), "{format:?}: {text}");
        let key = service.signing_key().verifying_key();
        let report = verify(text.as_bytes(), &key).unwrap();
        assert!(report.complete && report.records == 3, "{report:?}");
        if format == ExportFormat::Jsonl {
            let record: EventRecord = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
            assert_eq!(record.redacted, stored[1].body.extensions.redacted);
            assert_eq!(record.meta.unwrap()["api_token"], "[REDACTED]");
            // The list is hashed: dropping a path is caught.
            let mut edited = lines(&text);
            let mut value: Value = serde_json::from_str(&edited[1]).unwrap();
            value["redacted"].as_array_mut().unwrap().pop();
            edited[1] = value.to_string();
            assert!(verify(&join(&edited), &key).is_err());
        }
    }
}

#[tokio::test]
async fn csv_files_written_before_redaction_still_verify() {
    // Written before `redacted` existed: the header and every event row end at `backfilled`
    // (31 columns).
    let env = Env::new().await;
    let text = env.export_text(ExportFormat::Csv).await;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in reader.records() {
        let row = row.unwrap();
        let mut cells: Vec<&str> = row.iter().collect();
        if cells.len() == CSV_FIELDS.len() {
            assert_eq!(
                cells.pop(),
                Some(if cells[0] == "id" { "redacted" } else { "" })
            );
        }
        writer.write_record(cells).unwrap();
    }
    let old = writer.into_inner().unwrap();
    assert!(String::from_utf8_lossy(&old).starts_with(
        "id,org_id,org_name,action_key,action_verb,actor_id,actor_email,actor_type,target_id,target_email,target_type,service_name,meta,occurred_at,created_at,message,actor_name,target_name,ip_address,user_agent,request_id,seq,hash,prev_hash,inclusion_proof,entry,outcome,reason,impersonator,changes,backfilled\n"
    ));
    let report = verify(&old, &env.key()).unwrap();
    assert!(report.complete && report.records == N_EVENTS, "{report:?}");
}
