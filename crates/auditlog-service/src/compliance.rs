//! Legal holds and the erasure of a data subject (GDPR Art. 17), each an administrative
//! change recorded in the organization's log in the same transaction.
//!
//! - A hold covers the whole organization or one person (an actor id or email). While a live
//!   hold covers a person, nothing of theirs is erased. Placing and lifting one are
//!   `legal_hold_placed` and `legal_hold_lifted`.
//! - An erasure finds every event that names the person as actor, target or impersonator
//!   (through the same filters as the list API), then deletes the personal fields of those
//!   events in one store transaction (`auditlog_core::entry::subject_fields`): values and
//!   salts go, commitments stay, so every proof still verifies. Its record,
//!   `data_subject_erased`, says how many events and fields were erased, and never whom: the
//!   request is recorded without re-recording what it erased.

use auditlog_core::entry::Subject;
use auditlog_core::query::{Column, Combine, Condition, Filter, Order, Position, Query, Start};
use auditlog_core::Timestamp;
use auditlog_store::{Change, Changed, Erasure, LegalHold, StoreError};
use serde_json::json;
use uuid::Uuid;

use auditlog_core::validate::check_email_address;

use crate::access::{meta, Actor, OwnRecord, Target};
use crate::grant::ReadableOrg;
use crate::Service;

/// Longest reason a hold may carry.
pub const MAX_REASON_CHARS: usize = 512;

/// Longest actor id a hold or erasure may name (the ingest limit of an id).
const MAX_ID_CHARS: usize = 256;

/// Events read per page while finding a subject's events.
const FIND_PAGE: u32 = 1000;

/// Why a hold or erasure was not made.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    /// The request is malformed; the message names the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No live hold of the organization has that id.
    #[error("no live legal hold {0} in this organization")]
    NoSuchHold(Uuid),
    /// A live hold protects the person.
    #[error("{0}")]
    Held(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ComplianceError {
    fn from(error: StoreError) -> ComplianceError {
        match error {
            StoreError::Conflict(message) => ComplianceError::Held(message),
            other => ComplianceError::Store(other),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ComplianceError {
    ComplianceError::Invalid {
        field,
        message: message.into(),
    }
}

/// Checks an actor id given to a hold or an erasure.
fn check_id(field: &'static str, id: &str) -> Result<(), ComplianceError> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Err(invalid(
            field,
            format!("must be 1 to {MAX_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid(field, "must not hold control characters"));
    }
    Ok(())
}

/// The person a request names: an email, an actor id, or both; at least one.
pub fn subject(email: Option<&str>, id: Option<&str>) -> Result<Subject, ComplianceError> {
    if let Some(email) = email {
        check_email_address("email", email).map_err(|e| invalid("email", e.to_string()))?;
    }
    if let Some(id) = id {
        check_id("actor_id", id)?;
    }
    if email.is_none() && id.is_none() {
        return Err(invalid(
            "email",
            "name the person by email, actor_id or both",
        ));
    }
    Ok(Subject {
        email: email.map(str::to_lowercase),
        id: id.map(String::from),
    })
}

impl Service {
    /// The organization's legal holds, live and lifted, newest first.
    pub async fn legal_holds(&self, org: &ReadableOrg) -> Result<Vec<LegalHold>, StoreError> {
        self.store().legal_holds(org.id).await
    }

    /// Places a hold on the whole organization (`subject` `None`) or on one person (an
    /// actor id or email), recording `legal_hold_placed`.
    pub async fn place_legal_hold(
        &self,
        org: &ReadableOrg,
        actor: &Actor,
        subject: Option<&str>,
        reason: &str,
    ) -> Result<LegalHold, ComplianceError> {
        if let Some(subject) = subject {
            check_id("subject", subject)?;
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(invalid(
                "reason",
                format!("give a reason of 1 to {MAX_REASON_CHARS} characters"),
            ));
        }
        if reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid("reason", "must not hold control characters"));
        }
        let hold = LegalHold {
            id: Uuid::now_v7(),
            org_id: org.id,
            subject: subject.map(|s| s.to_lowercase()),
            reason: reason.to_string(),
            placed_by: actor.label(),
            placed_at: Timestamp::now(),
            lifted_at: None,
            lifted_by: None,
        };
        let record = OwnRecord::new(
            org,
            actor,
            "legal_hold_placed",
            Target {
                id: Some(hold.id.to_string()),
                email: None,
                name: None,
            },
            meta(json!({
                "scope": if hold.subject.is_some() { "person" } else { "organization" },
                "reason": hold.reason,
            })),
        );
        let applied = self
            .apply_recorded(vec![Change::PlaceHold(hold)], move |_| vec![record])
            .await?;
        match applied.changed.into_iter().next() {
            Some(Changed::Hold(Some(hold))) => Ok(hold),
            _ => Err(ComplianceError::Store(StoreError::Backend(
                "the store did not report the hold".into(),
            ))),
        }
    }

    /// Lifts a live hold, recording `legal_hold_lifted`; nothing is recorded when the
    /// organization has no live hold with that id.
    pub async fn lift_legal_hold(
        &self,
        org: &ReadableOrg,
        actor: &Actor,
        id: Uuid,
    ) -> Result<LegalHold, ComplianceError> {
        let org_record = org.org().clone();
        let actor_record = actor.clone();
        let change = Change::LiftHold {
            org_id: org.id,
            id,
            at: Timestamp::now(),
            by: actor.label(),
        };
        let applied = self
            .apply_recorded(vec![change], move |changed| match changed {
                [Changed::Hold(Some(hold))] => vec![OwnRecord::new(
                    &org_record,
                    &actor_record,
                    "legal_hold_lifted",
                    Target {
                        id: Some(hold.id.to_string()),
                        email: None,
                        name: None,
                    },
                    meta(json!({"reason": hold.reason})),
                )],
                _ => Vec::new(),
            })
            .await?;
        match applied.changed.into_iter().next() {
            Some(Changed::Hold(Some(hold))) => Ok(hold),
            _ => Err(ComplianceError::NoSuchHold(id)),
        }
    }

    /// Erases a person's personal fields from every event of the organization that names
    /// them, recording `data_subject_erased` with the counts (and nothing of the person).
    /// Refused while a live hold covers them. Events stored after the search began are not
    /// erased: repeating the request erases them (it is idempotent).
    pub async fn erase_subject(
        &self,
        org: &ReadableOrg,
        actor: &Actor,
        subject: Subject,
    ) -> Result<Erasure, ComplianceError> {
        // Refused early, before the search; the store checks again in its transaction.
        if let Some(hold) = self
            .legal_holds(org)
            .await?
            .into_iter()
            .find(|hold| hold.covers(&subject))
        {
            return Err(hold.refusal().into());
        }
        let started = std::time::Instant::now();
        let seqs = self.events_naming(org, &subject).await?;
        let found_in = started.elapsed();
        let org_record = org.org().clone();
        let actor_record = actor.clone();
        let change = Change::EraseSubject {
            org_id: org.id,
            subject,
            seqs,
        };
        let applied = self
            .apply_recorded(vec![change], move |changed| {
                let Some(Changed::Erased(erasure)) = changed.first() else {
                    return Vec::new();
                };
                vec![OwnRecord::new(
                    &org_record,
                    &actor_record,
                    "data_subject_erased",
                    Target {
                        id: None,
                        email: None,
                        name: Some("data subject".to_string()),
                    },
                    meta(json!({
                        "events_erased": erasure.events,
                        "fields_erased": erasure.fields,
                        "events_unerasable": erasure.unerasable,
                    })),
                )]
            })
            .await?;
        tracing::info!(
            org = %org.name,
            found_ms = found_in.as_millis() as u64,
            erased_ms = (started.elapsed() - found_in).as_millis() as u64,
            "a data subject was erased"
        );
        match applied.changed.into_iter().next() {
            Some(Changed::Erased(erasure)) => Ok(erasure),
            _ => Err(ComplianceError::Store(StoreError::Backend(
                "the store did not report the erasure".into(),
            ))),
        }
    }

    /// The `seq` of every event of the organization that names `subject` as actor, target
    /// or impersonator, by id or email: the list API's filters, page after page.
    async fn events_naming(
        &self,
        org: &ReadableOrg,
        subject: &Subject,
    ) -> Result<Vec<u64>, StoreError> {
        let values: Vec<String> = subject
            .email
            .iter()
            .chain(subject.id.iter())
            .cloned()
            .collect();
        let conditions = [Column::Actor, Column::Target, Column::Impersonator]
            .into_iter()
            .map(|column| Condition::AnyOf {
                column,
                values: values.clone(),
            })
            .collect();
        let mut query = Query {
            filter: Filter {
                conditions,
                combine: Combine::Or,
                from: None,
                to: None,
            },
            order: Order::OldestFirst,
            limit: FIND_PAGE,
            start: Start::Offset(0),
        };
        let mut seqs = Vec::new();
        loop {
            let page = self.store().query(org.id, &query).await?;
            seqs.extend(page.iter().map(|event| event.seq));
            match page.last() {
                Some(last) if page.len() == FIND_PAGE as usize => {
                    query.start = Start::After(Position {
                        occurred_at: last.body.occurred_at,
                        seq: last.seq,
                    });
                }
                _ => break,
            }
        }
        Ok(seqs)
    }
}
