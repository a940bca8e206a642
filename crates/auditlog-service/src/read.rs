//! Every read of an organization's data that the API, the page and the command line make.
//! Each takes a [`ReadableOrg`] (a member's own tokens take a
//! [`MemberOf`](crate::grant::MemberOf)), so no read happens without the decision of
//! [`crate::grant`] first.

use auditlog_core::chain::{expected_hash, GENESIS};
use auditlog_core::query::{Cursor, Filter, Order, Position, Query, Start};
use auditlog_core::Event;
use auditlog_store::{Count, Facets, Role, ServiceAccount, StoreError, User};
use uuid::Uuid;

use crate::grant::ReadableOrg;
use crate::{Page, Service};

/// What the page shows about one event's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integrity {
    /// The event's hash is the one its content and its predecessor's hash give.
    pub hash_ok: bool,
    /// The seq of the newest signed checkpoint, when it covers this event.
    pub checkpoint_seq: Option<u64>,
}

impl Service {
    /// One page of an organization's events. `cursor`, when given, must come from a page of
    /// the same order; it takes precedence over `offset`.
    pub async fn page(
        &self,
        org: &ReadableOrg,
        filter: Filter,
        order: Order,
        limit: u32,
        start: Start,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, auditlog_core::query::MAX_LIMIT);
        let events = self
            .store()
            .query(
                org.id,
                &Query {
                    filter,
                    order,
                    limit,
                    start,
                },
            )
            .await?;
        let next_cursor = (events.len() == limit as usize).then(|| {
            let last = events.last().expect("a full page is not empty");
            Cursor {
                order,
                position: Position::of(last),
            }
            .encode()
        });
        Ok(Page {
            events,
            next_cursor,
        })
    }

    /// How many events match, counted up to `cap` when the rollups cannot answer exactly.
    pub async fn count(
        &self,
        org: &ReadableOrg,
        filter: &Filter,
        cap: u64,
    ) -> Result<Count, StoreError> {
        self.store().count(org.id, filter, cap).await
    }

    /// Actions and users with counts among the events that match, at most `max_each` of
    /// each.
    pub async fn facets(
        &self,
        org: &ReadableOrg,
        filter: &Filter,
        max_each: usize,
    ) -> Result<Facets, StoreError> {
        self.store().facets(org.id, filter, max_each).await
    }

    /// Events per UTC day (days since the epoch, ascending) among the events that match.
    pub async fn daily_counts(
        &self,
        org: &ReadableOrg,
        filter: &Filter,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        self.store().daily_counts(org.id, filter).await
    }

    /// One event of the organization; `None` when it has no event with that id.
    pub async fn get_event(
        &self,
        org: &ReadableOrg,
        id: Uuid,
    ) -> Result<Option<Event>, StoreError> {
        self.store().get_event(org.id, id).await
    }

    /// Checks one event against its predecessor's hash, and says whether the newest signed
    /// checkpoint covers it. A full proof is `auditlog verify`; this is the page's quick look.
    pub async fn event_integrity(
        &self,
        org: &ReadableOrg,
        event: &Event,
    ) -> Result<Integrity, StoreError> {
        let previous = match event.seq {
            1 => Some(GENESIS),
            seq => self
                .store()
                .events_by_seq(org.id, seq - 2, 1)
                .await?
                .first()
                .filter(|e| e.seq == seq - 1)
                .map(|e| e.hash),
        };
        let checkpoint = self.store().latest_checkpoint(org.id).await?;
        Ok(Integrity {
            hash_ok: previous.is_some_and(|prev| expected_hash(&prev, event) == event.hash),
            checkpoint_seq: checkpoint
                .map(|c| c.checkpoint.seq)
                .filter(|seq| *seq >= event.seq),
        })
    }

    /// The organization's service accounts.
    pub async fn service_accounts(
        &self,
        org: &ReadableOrg,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        self.store().service_accounts(org.id).await
    }

    /// The organization's members with their roles.
    pub async fn members(&self, org: &ReadableOrg) -> Result<Vec<(User, Role)>, StoreError> {
        self.store().members(org.id).await
    }
}
