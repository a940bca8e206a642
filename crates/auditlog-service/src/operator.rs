//! What only the operator's commands do: tenancy (create and enroll organizations), looking
//! users up, and the platform-wide ingest keys. Each takes the [`Operator`] capability, which
//! only the binary's composition makes.

use auditlog_core::Timestamp;
use auditlog_store::{Credential, CredentialKind, NewOrg, Org, StoreError, User};
use uuid::Uuid;

use crate::grant::{Operator, ReadableOrg};
use crate::Service;

impl Service {
    /// Creates an organization.
    pub async fn create_org(&self, _operator: &Operator, org: NewOrg) -> Result<Org, StoreError> {
        self.store().create_org(org).await
    }

    /// Enrolls an organization in the audit-log feature.
    pub async fn enroll_org(
        &self,
        _operator: &Operator,
        org: &ReadableOrg,
    ) -> Result<(), StoreError> {
        self.store().set_org_enabled(org.id, true).await?;
        Ok(())
    }

    /// The user with this email or id, if there is one.
    pub async fn find_user(
        &self,
        _operator: &Operator,
        email_or_id: &str,
    ) -> Result<Option<User>, StoreError> {
        self.store().find_user(email_or_id).await
    }

    /// Every ingest key, platform-wide and per organization, revoked ones included.
    pub async fn ingest_keys(&self, _operator: &Operator) -> Result<Vec<Credential>, StoreError> {
        self.store()
            .credentials(CredentialKind::Ingest, None, None)
            .await
    }

    /// Revokes an ingest key; false when no ingest key has that id.
    pub async fn revoke_ingest_key(
        &self,
        operator: &Operator,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        if !self
            .ingest_keys(operator)
            .await?
            .iter()
            .any(|key| key.id == id)
        {
            return Ok(false);
        }
        self.store().revoke_credential(id, Timestamp::now()).await?;
        self.principals.forget();
        Ok(true)
    }

    /// Discards every piece of derived state (indexes, rollups, search postings) and has it
    /// rebuilt from the stored events; reads stay correct meanwhile, only slower.
    pub async fn rebuild_derived(&self, _operator: &Operator) -> Result<(), StoreError> {
        self.store().rebuild_derived().await
    }

    /// Waits until derived state covers every event stored before the call.
    pub async fn wait_indexed(&self, _operator: &Operator) -> Result<(), StoreError> {
        self.store().wait_indexed().await
    }
}
