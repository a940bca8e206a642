//! Changes to users, roles, service accounts, credentials, export jobs, legal holds and the
//! personal fields of stored events, each made in one
//! transaction together with the events that record it ([`Store::apply`](crate::Store::apply)):
//! an administrative change and its audit record are stored together or not at all.

use auditlog_core::Event;
use uuid::Uuid;

use crate::accounts::{Credential, Erasure, ExportJob, LegalHold, Role, ServiceAccount, User};
use crate::Append;
use auditlog_core::entry::Subject;
use auditlog_core::Timestamp;

/// One change. A list of them is applied in order, in one transaction.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates a user (email lowercased); a taken email is a conflict.
    CreateUser(User),
    /// Gives a user a role in an organization, or removes them with `None`.
    SetRole {
        /// The organization.
        org_id: Uuid,
        /// The user.
        user_id: Uuid,
        /// The new role; `None` removes the membership.
        role: Option<Role>,
    },
    /// Creates a service account; a taken client id is a conflict.
    CreateServiceAccount(ServiceAccount),
    /// Renames a service account of the organization.
    RenameServiceAccount {
        /// The organization.
        org_id: Uuid,
        /// The account.
        id: Uuid,
        /// Its new name.
        name: String,
    },
    /// Deletes a service account of the organization and revokes its credentials.
    DeleteServiceAccount {
        /// The organization.
        org_id: Uuid,
        /// The account.
        id: Uuid,
        /// When its credentials stop working.
        at: Timestamp,
    },
    /// Stores a credential.
    CreateCredential(Credential),
    /// Revokes a credential, keeping an earlier revocation time.
    RevokeCredential {
        /// The credential.
        id: Uuid,
        /// When it stops working.
        at: Timestamp,
    },
    /// Stores a new export job.
    CreateJob(ExportJob),
    /// Places a legal hold.
    PlaceHold(LegalHold),
    /// Lifts a live legal hold of the organization.
    LiftHold {
        /// The organization.
        org_id: Uuid,
        /// The hold.
        id: Uuid,
        /// When.
        at: Timestamp,
        /// Who lifted it.
        by: String,
    },
    /// Sets the organization's retention in days; `None` follows the deployment's default.
    SetRetention {
        /// The organization.
        org_id: Uuid,
        /// Days to keep events.
        days: Option<u32>,
    },
    /// Erases the personal fields that name `subject` (`auditlog_core::entry::subject_fields`)
    /// from the organization's events at `seqs`; events that do not name the subject are left
    /// as they are. A live legal hold covering the subject refuses it with
    /// [`StoreError::Conflict`](crate::StoreError::Conflict), checked in the transaction.
    EraseSubject {
        /// The organization.
        org_id: Uuid,
        /// Whom to erase.
        subject: Subject,
        /// The events to erase them from (found by a query beforehand).
        seqs: Vec<u64>,
    },
}

/// What one [`Change`] did, in the order of the changes.
#[derive(Debug, Clone)]
pub enum Changed {
    /// The user created.
    User(User),
    /// The role the user had before a [`Change::SetRole`].
    Role(Option<Role>),
    /// The service account created, renamed or deleted; `None` when the organization has no
    /// account with that id (nothing changed).
    ServiceAccount(Option<ServiceAccount>),
    /// The credential created, or the one revoked as it was before; `None` when there is no
    /// credential with that id.
    Credential(Option<Credential>),
    /// The job created.
    Job(ExportJob),
    /// The hold placed, or the hold lifted as it is now; `None` when the organization has no
    /// live hold with that id (nothing changed).
    Hold(Option<LegalHold>),
    /// What an erasure did.
    Erased(Erasure),
    /// The organization's retention setting before a [`Change::SetRetention`].
    Retention(Option<u32>),
}

/// Builds, from what the changes did, the events that record them, inside the transaction.
/// An error (the record could not be made) rolls every change back and is returned as
/// [`StoreError::Unrecorded`](crate::StoreError::Unrecorded).
pub type Recorder = Box<dyn FnOnce(&[Changed]) -> Result<Vec<Append>, String> + Send>;

/// What [`Store::apply`](crate::Store::apply) stored.
#[derive(Debug, Clone)]
pub struct Applied {
    /// What each change did.
    pub changed: Vec<Changed>,
    /// The events that record them, chained and durable.
    pub events: Vec<Event>,
}
