//! Exports of an organization's log (docs/export-jobs.md): what to export
//! ([`ExportRequest`]), writing one by walking the store into the file format of
//! [`auditlog_core::export`] ([`write_export`]), and the record every export leaves in the
//! log. The format and its offline verifier live in core, beside the chain they prove.

use std::io::Write;

use auditlog_core::chain::GENESIS;
pub use auditlog_core::export::ExportFormat;
use auditlog_core::export::ExportWriter;
use auditlog_core::query::{parse_q, Combine, Filter};
use auditlog_core::wire::{EventRecord, InclusionProofWire};
use auditlog_core::{Event, Timestamp};
use auditlog_store::{Org, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::access::{Actor, OwnRecord, Target};
use crate::grant::ReadableOrg;
use crate::{IngestError, Service};

/// The action recorded in an organization's log when its audit log is exported.
pub const EXPORT_REQUESTED: &str = "audit_log_export_requested";

/// Events read from the store per page: large enough that the per-query overhead vanishes,
/// small enough (a few MB) to keep memory flat.
const PAGE: u32 = 2000;

/// What to export: which events (a [`Filter`], however it was given: the API's `q`, the
/// page's filter form, the CLI's flags) and the file's format. Stored as the job's `request`
/// and recorded as the `meta` of [`EXPORT_REQUESTED`], in the JSON encoding
/// `docs/export-jobs.md` specifies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "StoredRequest")]
pub struct ExportRequest {
    /// Which events; everything by default.
    pub filter: Filter,
    /// File format.
    pub format: ExportFormat,
    /// Whether the file is gzip-compressed.
    pub gzip: bool,
}

impl ExportRequest {
    /// Checks the filter's limits (a filter from `q` already meets them; one from a form or
    /// a stored row is checked here); the error is a sentence for the requester.
    pub fn check(&self) -> Result<(), String> {
        self.filter.check_limits().map_err(|e| e.to_string())
    }

    /// The file name extension: `jsonl`, `csv`, `jsonl.gz` or `csv.gz`.
    pub fn extension(&self) -> &'static str {
        match (self.format, self.gzip) {
            (ExportFormat::Jsonl, false) => "jsonl",
            (ExportFormat::Csv, false) => "csv",
            (ExportFormat::Jsonl, true) => "jsonl.gz",
            (ExportFormat::Csv, true) => "csv.gz",
        }
    }

    /// The media type of the file, for a download.
    pub fn content_type(&self) -> &'static str {
        match (self.format, self.gzip) {
            (_, true) => "application/gzip",
            (ExportFormat::Jsonl, false) => "application/x-ndjson",
            (ExportFormat::Csv, false) => "text/csv; charset=utf-8",
        }
    }
}

/// An export request as stored: the current encoding, or the one before it (the reference
/// API's `q` entries with `search_operator` and the dates), which jobs submitted before an
/// upgrade may still hold.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredRequest {
    Current(CurrentRequest),
    Legacy(LegacyRequest),
}

/// The current encoding. Unknown fields are refused, so that a legacy row is never read as
/// an unfiltered request.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CurrentRequest {
    filter: Filter,
    format: ExportFormat,
    gzip: bool,
}

impl Default for CurrentRequest {
    fn default() -> CurrentRequest {
        CurrentRequest {
            filter: Filter::default(),
            format: ExportFormat::Jsonl,
            gzip: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyRequest {
    #[serde(default)]
    filter_q: Vec<String>,
    #[serde(default)]
    search_operator: String,
    #[serde(default)]
    from_date: Option<Timestamp>,
    #[serde(default)]
    to_date: Option<Timestamp>,
    #[serde(default)]
    format: ExportFormat,
    #[serde(default)]
    gzip: bool,
}

impl TryFrom<StoredRequest> for ExportRequest {
    type Error = String;

    fn try_from(stored: StoredRequest) -> Result<ExportRequest, String> {
        match stored {
            StoredRequest::Current(CurrentRequest {
                filter,
                format,
                gzip,
            }) => Ok(ExportRequest {
                filter,
                format,
                gzip,
            }),
            StoredRequest::Legacy(legacy) => {
                let combine = match legacy.search_operator.trim().to_ascii_lowercase().as_str() {
                    "" | "or" => Combine::Or,
                    "and" => Combine::And,
                    other => return Err(format!("search_operator {other:?} is not or, and")),
                };
                let conditions = legacy
                    .filter_q
                    .iter()
                    .map(|entry| parse_q(entry).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ExportRequest {
                    filter: Filter {
                        conditions,
                        combine,
                        from: legacy.from_date,
                        to: legacy.to_date,
                    },
                    format: legacy.format,
                    gzip: legacy.gzip,
                })
            }
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Events written.
    pub records: u64,
    /// The seq of the checkpoint the export was cut at (the events cover `1..=head_seq`).
    pub head_seq: u64,
    /// Bytes written to the output (after compression).
    pub bytes: u64,
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The request's filter is not valid.
    #[error("the export request is not valid: {0}")]
    Request(String),
    /// The store failed, or returned a chain with a gap.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    /// The organization's tree could not be signed or proven from (the store's tree does not
    /// extend the last signed one, or lacks tiles).
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

/// Writes an export of `org` to `out`.
///
/// It first signs the organization's current tree ([`Service::tree_checkpoint`]) and its
/// chain at the same size ([`Service::checkpoint_at`]); the export covers
/// `1..=checkpoint.seq`, so events appended meanwhile are left out consistently. It then walks
/// the chain in `seq` order one page at a time, writing each event the filter selects with the
/// hash of its predecessor (known from the walk even when the predecessor was filtered out)
/// and its inclusion proof in the signed tree, and ends with both checkpoints. `progress(written, scanned, head_seq)`
/// is called after every page. `out` is written sequentially and flushed at the end; a
/// caller writing a file syncs it.
pub async fn write_export<W, P>(
    service: &Service,
    org: &ReadableOrg,
    request: &ExportRequest,
    out: W,
    mut progress: P,
) -> Result<ExportSummary, ExportError>
where
    W: Write + Send,
    P: FnMut(u64, u64, u64) + Send,
{
    request.check().map_err(ExportError::Request)?;
    let filter = &request.filter;
    let tree = service.tree_checkpoint(org).await?;
    let checkpoint = service.checkpoint_at(org, tree.size).await?;
    let head_seq = checkpoint.checkpoint.seq;
    let mut writer = ExportWriter::new(out, request.format, request.gzip)?;
    let catalog = service.catalog();
    let mut previous_hash = GENESIS;
    let mut scanned = 0u64;
    let mut records = 0u64;
    progress(0, 0, head_seq);
    // The next page is read (on the store's threads) while this one is written out.
    let store = service.store().clone();
    let org_id = org.id;
    let fetch = |after: u64| {
        let store = store.clone();
        tokio::spawn(async move { store.events_by_seq(org_id, after, PAGE).await })
    };
    let mut next = (head_seq > 0).then(|| fetch(0));
    while let Some(pending) = next.take() {
        let page = pending
            .await
            .map_err(|e| StoreError::Backend(format!("export read failed: {e}")))??;
        let Some(last) = page.last() else {
            return Err(StoreError::Corrupt(format!(
                "the chain of organization {} ends at seq {scanned}, before its head at seq {head_seq}",
                org.id
            ))
            .into());
        };
        if last.seq < head_seq {
            next = Some(fetch(last.seq));
        }
        let page: Vec<Event> = page
            .into_iter()
            .take_while(|event| event.seq <= head_seq)
            .collect();
        let selected: Vec<u64> = page
            .iter()
            .filter(|event| filter.matches(event))
            .map(|event| event.seq - 1)
            .collect();
        let mut proofs = service
            .inclusion_proofs(org_id, head_seq, &selected)
            .await?
            .into_iter();
        for event in page {
            // `prev_hash` is only right if no seq is skipped; the store promises that, but a
            // wrong `prev_hash` would make the file fail verification for no visible reason.
            if event.seq != scanned + 1 {
                return Err(StoreError::Corrupt(format!(
                    "organization {} has seq {} after seq {scanned}",
                    org.id, event.seq
                ))
                .into());
            }
            let (seq, hash) = (event.seq, event.hash);
            if filter.matches(&event) {
                let mut record = EventRecord::from_event(event, Some(&org.name), catalog);
                record.prev_hash = Some(hex::encode(previous_hash));
                let (leaf, hashes) = proofs.next().unwrap_or_default();
                record.inclusion_proof = Some(InclusionProofWire {
                    leaf_index: seq - 1,
                    tree_size: head_seq,
                    // JSON Lines only (see `InclusionProofWire::leaf_hash`).
                    leaf_hash: (request.format == ExportFormat::Jsonl)
                        .then(|| crate::log::base64_hash(&leaf)),
                    hashes: hashes.iter().map(crate::log::base64_hash).collect(),
                });
                writer.write(&record)?;
                records += 1;
            }
            previous_hash = hash;
            scanned = seq;
        }
        progress(records, scanned, head_seq);
    }
    let bytes = writer.finish(&checkpoint.to_wire(), Some(&tree.note))?;
    Ok(ExportSummary {
        records,
        head_seq,
        bytes,
    })
}

/// Records `audit_log_export_requested` in `org`'s log: `target.id` is the job's id (when
/// there is a job), `meta` the request. Whatever the catalog: the service's own actions are
/// always accepted (`Catalog::with_own_actions`).
pub async fn record_export_request(
    service: &Service,
    org: &ReadableOrg,
    actor: &Actor,
    request: &ExportRequest,
    job_id: Option<Uuid>,
) -> Result<(), IngestError> {
    let record = export_request_record(org, actor, request, job_id);
    service
        .apply_recorded(Vec::new(), move |_| vec![record])
        .await?;
    Ok(())
}

/// The record of an export request: `target.id` is the job's id (when there is a job),
/// `meta` the request.
pub(crate) fn export_request_record(
    org: &Org,
    actor: &Actor,
    request: &ExportRequest,
    job_id: Option<Uuid>,
) -> OwnRecord {
    let meta = match serde_json::to_value(request) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let target = Target {
        id: job_id.map(|id| id.to_string()),
        email: None,
        name: Some("audit log export".to_string()),
    };
    OwnRecord::new(org, actor, EXPORT_REQUESTED, target, meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::query::Condition;

    #[test]
    fn the_stored_encoding_of_a_request() {
        let request = ExportRequest {
            filter: Filter {
                conditions: vec![Condition::Text("ml".into())],
                combine: Combine::And,
                from: None,
                to: None,
            },
            format: ExportFormat::Csv,
            gzip: true,
        };
        let json = serde_json::to_string(&request).unwrap();
        expect_test::expect![[r#"{"filter":{"conditions":[{"text":"ml"}],"combine":"and"},"format":"csv","gzip":true}"#]]
            .assert_eq(&json);
        assert_eq!(
            serde_json::from_str::<ExportRequest>(&json).unwrap(),
            request
        );
        assert_eq!(
            serde_json::to_string(&ExportRequest::default()).unwrap(),
            r#"{"filter":{"conditions":[],"combine":"or"},"format":"jsonl","gzip":false}"#
        );
        assert_eq!(
            serde_json::from_str::<ExportRequest>("{}").unwrap(),
            ExportRequest::default()
        );
    }

    #[test]
    fn a_request_stored_before_the_filter_encoding_still_reads() {
        let legacy = r#"{"filter_q":["action_key:a,b","text:ml"],"search_operator":"and","from_date":"2026-01-01T00:00:00.000Z","format":"csv","gzip":false}"#;
        let request: ExportRequest = serde_json::from_str(legacy).unwrap();
        assert_eq!(request.filter.combine, Combine::And);
        assert_eq!(
            request.filter.conditions,
            vec![
                Condition::AnyOf {
                    column: auditlog_core::query::Column::ActionKey,
                    values: vec!["a".into(), "b".into()],
                },
                Condition::Text("ml".into()),
            ]
        );
        assert!(request.filter.from.is_some());
        assert_eq!(request.format, ExportFormat::Csv);
        // A legacy row is never read as "everything", and a bad one is refused.
        assert!(serde_json::from_str::<ExportRequest>(r#"{"filter_q":["colour:red"]}"#).is_err());
        assert!(serde_json::from_str::<ExportRequest>(r#"{"search_operator":"xor"}"#).is_err());
    }
}
