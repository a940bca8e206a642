//! Retention: how long each organization's events are kept, and the purge that removes the
//! older ones (docs/retention.md).
//!
//! - The deployment sets a default (`--retention-days`; none keeps events forever) and a
//!   maximum (`--max-retention-days`); an organization's administrators choose their own
//!   period within the maximum, recorded as `audit_log_retention_changed`.
//! - [`Service::purge_expired`] (run by `auditlog serve` every hour, and by `auditlog purge`)
//!   removes, per organization, the events recorded before `now - days`, oldest first, in
//!   batches of [`PURGE_BATCH`] with a pause between them so that ingest is never held up for
//!   long. Legal holds stop it (`Store::purge`). Each organization's purge is recorded as
//!   `audit_log_purged`. The Merkle tree's tiles stay, so signed checkpoints and every proof
//!   of the events that remain keep verifying.

use std::time::Duration;

use auditlog_core::{FieldChange, Timestamp};
use auditlog_store::{Change, Changed, Org, Purged, StoreError};
use serde_json::json;

use crate::access::{meta, Actor, OwnRecord, Target};
use crate::grant::{Operator, ReadableOrg};
use crate::Service;

/// Events purged per store call.
pub const PURGE_BATCH: u32 = 2_000;

/// The pause between two batches of a purge: the writer serves appends meanwhile.
const PURGE_PAUSE: Duration = Duration::from_millis(20);

/// The largest maximum a deployment may set: a hundred years.
pub const LONGEST_DAYS: u32 = 36_500;

/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The deployment's retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days an organization's events are kept unless it chose otherwise; `None`: forever.
    pub default_days: Option<u32>,
    /// The longest period an organization may choose.
    pub max_days: u32,
}

impl Default for RetentionPolicy {
    /// Events are kept forever unless an organization chooses a period; at most ten years.
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            default_days: None,
            max_days: 3_650,
        }
    }
}

impl RetentionPolicy {
    /// Checks the deployment's settings: a maximum of 1 to [`LONGEST_DAYS`] days, and a
    /// default within it.
    pub fn new(default_days: Option<u32>, max_days: u32) -> Result<RetentionPolicy, String> {
        if !(1..=LONGEST_DAYS).contains(&max_days) {
            return Err(format!(
                "the maximum retention must be 1 to {LONGEST_DAYS} days, not {max_days}"
            ));
        }
        match default_days {
            Some(0) => Err("a default retention of 0 days would purge every event".into()),
            Some(days) if days > max_days => Err(format!(
                "the default retention ({days} days) is longer than the maximum ({max_days})"
            )),
            _ => Ok(RetentionPolicy {
                default_days,
                max_days,
            }),
        }
    }

    /// The period in force for an organization that chose `own` (or nothing).
    pub fn effective(&self, own: Option<u32>) -> Option<u32> {
        own.or(self.default_days)
            .map(|days| days.min(self.max_days))
    }
}

/// An organization's retention as the API and the page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionView {
    /// The period in force, in days; `None`: events are kept forever.
    pub days: Option<u32>,
    /// What the organization chose; `None` follows the deployment's default.
    pub organization_days: Option<u32>,
    /// The deployment's default.
    pub default_days: Option<u32>,
    /// The longest period the organization may choose.
    pub max_days: u32,
    /// How far the history was purged, if it was.
    pub purged: Option<Purged>,
}

impl RetentionView {
    /// From when the history is complete: events recorded before this may have been purged.
    pub fn history_starts_at(&self) -> Option<Timestamp> {
        self.purged.map(|p| p.before)
    }
}

/// Why a retention setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Out of the deployment's range; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run of [`Service::purge_expired`] did, per organization that lost events.
#[derive(Debug, Clone, Default)]
pub struct PurgeReport {
    /// `(organization name, events purged)`.
    pub purged: Vec<(String, u64)>,
}

impl Service {
    /// The service with the deployment's retention settings.
    pub fn with_retention_policy(mut self, policy: RetentionPolicy) -> Service {
        self.retention = policy;
        self
    }

    /// The deployment's retention settings.
    pub fn retention_policy(&self) -> RetentionPolicy {
        self.retention
    }

    /// The organization's retention.
    pub async fn retention(&self, org: &ReadableOrg) -> Result<RetentionView, StoreError> {
        self.retention_of(org.org()).await
    }

    async fn retention_of(&self, org: &Org) -> Result<RetentionView, StoreError> {
        let stored = self.store().retention(org.id).await?;
        Ok(RetentionView {
            days: self.retention.effective(stored.days),
            organization_days: stored.days,
            default_days: self.retention.default_days,
            max_days: self.retention.max_days,
            purged: stored.purged,
        })
    }

    /// Sets the organization's retention (`None`: the deployment's default), recording
    /// `audit_log_retention_changed` with the period before and after; setting what is
    /// already set changes and records nothing.
    pub async fn set_retention(
        &self,
        org: &ReadableOrg,
        actor: &Actor,
        days: Option<u32>,
    ) -> Result<RetentionView, RetentionError> {
        let max = self.retention.max_days;
        if let Some(days) = days {
            if !(1..=max).contains(&days) {
                return Err(RetentionError::Invalid(format!(
                    "must be 1 to {max} days (this deployment's maximum), or null for its default"
                )));
            }
        }
        let current = self.retention(org).await?;
        if current.organization_days == days {
            return Ok(current);
        }
        let policy = self.retention;
        let (org_record, actor_record) = (org.org().clone(), actor.clone());
        let change = Change::SetRetention {
            org_id: org.id,
            days,
        };
        self.apply_recorded(vec![change], move |changed| {
            let Some(Changed::Retention(before)) = changed.first() else {
                return Vec::new();
            };
            let (before, after) = (policy.effective(*before), policy.effective(days));
            vec![OwnRecord::new(
                &org_record,
                &actor_record,
                "audit_log_retention_changed",
                Target {
                    id: None,
                    email: None,
                    name: Some("audit log".to_string()),
                },
                meta(json!({
                    "retention_period_in_days": after,
                    "follows_default": days.is_none(),
                })),
            )
            .with_changes(vec![FieldChange {
                field: "retention_period_in_days".to_string(),
                before: Some(json!(before)),
                after: Some(json!(after)),
            }])]
        })
        .await?;
        Ok(self.retention(org).await?)
    }

    /// Purges, in every organization with a retention period, the events recorded before
    /// `now` less that period (see the module doc).
    pub async fn purge_expired(
        &self,
        _operator: &Operator,
        now: Timestamp,
    ) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        for org in self.store().list_orgs().await? {
            let purged = self.purge_org(&org, now).await?;
            if purged > 0 {
                report.purged.push((org.name.clone(), purged));
            }
        }
        Ok(report)
    }

    /// Purges one organization's expired events; answers how many went.
    async fn purge_org(&self, org: &Org, now: Timestamp) -> Result<u64, StoreError> {
        let view = self.retention_of(org).await?;
        let Some(days) = view.days else {
            return Ok(0);
        };
        let cutoff = Timestamp::from_millis(now.as_millis() - i64::from(days) * DAY_MS)
            .unwrap_or(Timestamp::from_millis(0).expect("the epoch"));
        let mut total = 0;
        let mut last = None;
        // A batch that fails (a hold placed meanwhile, the database gone) ends the purge; what
        // the batches before it purged is recorded all the same.
        let mut failed = None;
        loop {
            match self.store().purge(org.id, cutoff, PURGE_BATCH).await {
                Ok(batch) if batch.events == 0 => break,
                Ok(batch) => {
                    total += batch.events;
                    last = batch.purged;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            tokio::time::sleep(PURGE_PAUSE).await;
        }
        if let Some(purged) = last {
            let record = OwnRecord::new(
                org,
                &Actor::auditlog(),
                "audit_log_purged",
                Target {
                    id: None,
                    email: None,
                    name: Some("audit log".to_string()),
                },
                meta(json!({
                    "events_purged": total,
                    "purged_through_seq": purged.through_seq,
                    "recorded_before": cutoff,
                    "retention_period_in_days": days,
                })),
            );
            self.apply_recorded(Vec::new(), move |_| vec![record])
                .await?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}
