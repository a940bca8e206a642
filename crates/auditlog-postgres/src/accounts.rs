//! Organizations, checkpoints, users, roles, service accounts, credentials and export jobs:
//! plain rows, each operation one statement or one short transaction, so that any replica
//! may serve any of them.
//!
//! A taken unique value (an organization name, an email, a client id) is found with
//! `ON CONFLICT DO NOTHING` rather than by looking first, so two replicas racing for the
//! same name cannot both succeed. Lists sort with `COLLATE "C"`, byte order, as the SQLite
//! backend does, whatever the database's collation.

use auditlog_core::chain::{Checkpoint, SignedCheckpoint, GENESIS};
use auditlog_core::Timestamp;
use auditlog_store::{
    Change, Changed, Credential, CredentialKind, ExportJob, JobStatus, NewOrg, Org, Role,
    ServiceAccount, StoreError, User,
};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::{backend, from_opt_sql_time, from_sql_time, hash32, is_unique_violation, sql_time};

const ORG_COLUMNS: &str = "id, name, display_name, audit_logs_enabled, created_at";

fn org_from_row(row: &Row) -> Result<Org, StoreError> {
    Ok(Org {
        id: row.get(0),
        name: row.get(1),
        display_name: row.get(2),
        audit_logs_enabled: row.get(3),
        created_at: from_sql_time(row.get(4))?,
    })
}

/// Creates an organization and its empty chain head.
pub async fn create_org(client: &mut Client, new: &NewOrg) -> Result<Org, StoreError> {
    let org = Org {
        id: Uuid::now_v7(),
        name: new.name.clone(),
        display_name: new.display_name.clone(),
        audit_logs_enabled: new.audit_logs_enabled,
        created_at: Timestamp::now(),
    };
    insert_org(client, org).await
}

/// Creates an organization exactly as given (a migration's), and its empty chain head.
pub async fn restore_org(client: &mut Client, org: Org) -> Result<Org, StoreError> {
    insert_org(client, org).await
}

/// Inserts an organization and its empty chain head; a taken name or id is a conflict.
async fn insert_org(client: &mut Client, org: Org) -> Result<Org, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    // Without a conflict target, DO NOTHING covers both the id and the name.
    let created = tx
        .query_opt(
            "INSERT INTO orgs (id, name, display_name, audit_logs_enabled, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING org_key",
            &[
                &org.id,
                &org.name,
                &org.display_name,
                &org.audit_logs_enabled,
                &sql_time(org.created_at),
            ],
        )
        .await
        .map_err(backend)?;
    let Some(created) = created else {
        // This statement's fresh snapshot sees the committed row that conflicted.
        let id_taken = tx
            .query_opt("SELECT 1 FROM orgs WHERE id = $1", &[&org.id])
            .await
            .map_err(backend)?
            .is_some();
        return Err(StoreError::Conflict(if id_taken {
            format!("an organization with id {} already exists", org.id)
        } else {
            format!("an organization named {:?} already exists", org.name)
        }));
    };
    let org_key: i64 = created.get(0);
    tx.execute(
        "INSERT INTO org_heads (org_id, org_key, seq, hash) VALUES ($1, $2, 0, $3)",
        &[&org.id, &org_key, &GENESIS.as_slice()],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(org)
}

/// Enrolls or unenrolls an organization.
pub async fn set_org_enabled(
    client: &Client,
    org_id: Uuid,
    enabled: bool,
) -> Result<Option<Org>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE orgs SET audit_logs_enabled = $2 WHERE id = $1 RETURNING {ORG_COLUMNS}"
            ),
            &[&org_id, &enabled],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(org_from_row).transpose()
}

/// Finds an organization by name, or by id.
pub async fn find_org(client: &Client, name_or_id: &str) -> Result<Option<Org>, StoreError> {
    if name_or_id.contains('\0') {
        // PostgreSQL text cannot hold a NUL, so nothing stored has one.
        return Ok(None);
    }
    let by_id = Uuid::parse_str(name_or_id).ok();
    let row = client
        .query_opt(
            &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE name = $1 OR id = $2 LIMIT 1"),
            &[&name_or_id, &by_id],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(org_from_row).transpose()
}

/// Every organization, by name.
pub async fn list_orgs(client: &Client) -> Result<Vec<Org>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY name COLLATE \"C\""),
            &[],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(org_from_row).collect()
}

/// Keeps a signed checkpoint (again: the same `(seq, signed_at)` overwrites).
pub async fn save_checkpoint(
    client: &Client,
    checkpoint: &SignedCheckpoint,
) -> Result<(), StoreError> {
    let signed = &checkpoint.checkpoint;
    let stored = client
        .execute(
            "INSERT INTO checkpoints (org_id, seq, signed_at, hash, key_id, signature)
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = $1)
             ON CONFLICT (org_id, seq, signed_at) DO UPDATE
                 SET hash = excluded.hash, key_id = excluded.key_id, signature = excluded.signature",
            &[
                &signed.org_id,
                &(signed.seq as i64),
                &sql_time(signed.signed_at),
                &signed.hash.as_slice(),
                &checkpoint.key_id,
                &checkpoint.signature.as_slice(),
            ],
        )
        .await
        .map_err(backend)?;
    if stored == 0 {
        return Err(StoreError::UnknownOrg(signed.org_id));
    }
    Ok(())
}

/// The newest checkpoint of an organization: highest `seq`, then latest `signed_at`.
pub async fn latest_checkpoint(
    client: &Client,
    org_id: Uuid,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let row = client
        .query_opt(
            "SELECT seq, hash, signed_at, key_id, signature FROM checkpoints
             WHERE org_id = $1 ORDER BY seq DESC, signed_at DESC LIMIT 1",
            &[&org_id],
        )
        .await
        .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let seq: i64 = row.get(0);
    let signature: Vec<u8> = row.get(4);
    Ok(Some(SignedCheckpoint {
        checkpoint: Checkpoint {
            org_id,
            seq: seq as u64,
            hash: hash32(row.get(1), "a checkpoint's hash")?,
            signed_at: from_sql_time(row.get(2))?,
        },
        key_id: row.get(3),
        signature: signature.try_into().map_err(|_| {
            StoreError::Corrupt(format!(
                "the checkpoint at seq {seq} has a malformed signature"
            ))
        })?,
    }))
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, created_at";

fn user_from_row(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: row.get(0),
        email: row.get(1),
        display_name: row.get(2),
        password_hash: row.get(3),
        created_at: from_sql_time(row.get(4))?,
    })
}

/// Makes one change of [`Store::apply`](auditlog_store::Store::apply), inside its
/// transaction.
pub async fn apply_change(tx: &Transaction<'_>, change: Change) -> Result<Changed, StoreError> {
    Ok(match change {
        Change::CreateUser(user) => Changed::User(create_user(tx, user).await?),
        Change::SetRole {
            org_id,
            user_id,
            role,
        } => Changed::Role(set_role(tx, org_id, user_id, role).await?),
        Change::CreateServiceAccount(account) => {
            Changed::ServiceAccount(Some(create_service_account(tx, account).await?))
        }
        Change::RenameServiceAccount { org_id, id, name } => {
            Changed::ServiceAccount(rename_service_account(tx, org_id, id, &name).await?)
        }
        Change::DeleteServiceAccount { org_id, id, at } => {
            Changed::ServiceAccount(delete_service_account(tx, org_id, id, at).await?)
        }
        Change::CreateCredential(credential) => {
            Changed::Credential(Some(create_credential(tx, credential).await?))
        }
        Change::RevokeCredential { id, at } => {
            Changed::Credential(revoke_credential(tx, id, at).await?)
        }
        Change::CreateJob(job) => {
            put_job(tx, &job).await?;
            Changed::Job(job)
        }
        Change::PlaceHold(hold) => Changed::Hold(Some(crate::erasure::place_hold(tx, hold).await?)),
        Change::LiftHold { org_id, id, at, by } => {
            Changed::Hold(crate::erasure::lift_hold(tx, org_id, id, at, &by).await?)
        }
        Change::SetRetention { org_id, days } => {
            Changed::Retention(crate::retention::set_retention(tx, org_id, days).await?)
        }
        Change::EraseSubject {
            org_id,
            subject,
            seqs,
        } => Changed::Erased(crate::erasure::erase_subject(tx, org_id, &subject, &seqs).await?),
    })
}

/// Creates a user, with the email lowercased.
async fn create_user(client: &Transaction<'_>, user: User) -> Result<User, StoreError> {
    let user = User {
        email: user.email.to_lowercase(),
        ..user
    };
    let created = client
        .execute(
            &format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &user.id,
                &user.email,
                &user.display_name,
                &user.password_hash,
                &sql_time(user.created_at),
            ],
        )
        .await
        .map_err(backend)?;
    if created == 0 {
        return Err(StoreError::Conflict(format!(
            "a user with email {:?} already exists",
            user.email
        )));
    }
    Ok(user)
}

/// Finds a user by email (any case) or id.
pub async fn find_user(client: &Client, email_or_id: &str) -> Result<Option<User>, StoreError> {
    if email_or_id.contains('\0') {
        // PostgreSQL text cannot hold a NUL, so nothing stored has one.
        return Ok(None);
    }
    let by_id = Uuid::parse_str(email_or_id).ok();
    let row = client
        .query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1 OR id = $2 LIMIT 1"),
            &[&email_or_id.to_lowercase(), &by_id],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(user_from_row).transpose()
}

/// Sets or clears a password hash.
pub async fn set_password(
    client: &Client,
    user_id: Uuid,
    password_hash: Option<String>,
) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &[&user_id, &password_hash],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

fn role_from_text(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown role {text:?}")))
}

/// The role of a user in an organization.
pub async fn role_of(
    client: &Client,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Role>, StoreError> {
    let row = client
        .query_opt(
            "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2",
            &[&org_id, &user_id],
        )
        .await
        .map_err(backend)?;
    row.map(|row| role_from_text(row.get(0))).transpose()
}

/// Sets or removes a role; returns the one before.
async fn set_role(
    tx: &Transaction<'_>,
    org_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
) -> Result<Option<Role>, StoreError> {
    let found = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM orgs WHERE id = $1),
                    EXISTS (SELECT 1 FROM users WHERE id = $2)",
            &[&org_id, &user_id],
        )
        .await
        .map_err(backend)?;
    if !found.get::<_, bool>(0) {
        return Err(StoreError::UnknownOrg(org_id));
    }
    if !found.get::<_, bool>(1) {
        return Err(StoreError::Conflict(format!(
            "user {user_id} does not exist"
        )));
    }
    let before = tx
        .query_opt(
            "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE",
            &[&org_id, &user_id],
        )
        .await
        .map_err(backend)?
        .map(|row| role_from_text(row.get(0)))
        .transpose()?;
    match role {
        Some(role) => {
            tx.execute(
                "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
                &[&org_id, &user_id, &role.as_str()],
            )
            .await
        }
        None => {
            tx.execute(
                "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2",
                &[&org_id, &user_id],
            )
            .await
        }
    }
    .map_err(backend)?;
    Ok(before)
}

/// A user's organizations, by name.
pub async fn memberships(client: &Client, user_id: Uuid) -> Result<Vec<(Org, Role)>, StoreError> {
    let rows = client
        .query(
            "SELECT o.id, o.name, o.display_name, o.audit_logs_enabled, o.created_at, m.role
             FROM memberships m JOIN orgs o ON o.id = m.org_id
             WHERE m.user_id = $1 ORDER BY o.name COLLATE \"C\"",
            &[&user_id],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| Ok((org_from_row(row)?, role_from_text(row.get(5))?)))
        .collect()
}

/// An organization's members, by email.
pub async fn members(client: &Client, org_id: Uuid) -> Result<Vec<(User, Role)>, StoreError> {
    let rows = client
        .query(
            "SELECT u.id, u.email, u.display_name, u.password_hash, u.created_at, m.role
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 ORDER BY u.email COLLATE \"C\"",
            &[&org_id],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| Ok((user_from_row(row)?, role_from_text(row.get(5))?)))
        .collect()
}

const ACCOUNT_COLUMNS: &str = "id, org_id, name, client_id, secret_hash, created_at";

fn account_from_row(row: &Row) -> Result<ServiceAccount, StoreError> {
    Ok(ServiceAccount {
        id: row.get(0),
        org_id: row.get(1),
        name: row.get(2),
        client_id: row.get(3),
        secret_hash: hash32(row.get(4), "a client secret's hash")?,
        created_at: from_sql_time(row.get(5))?,
    })
}

/// Creates a service account; a taken client id is a conflict.
async fn create_service_account(
    client: &Transaction<'_>,
    account: ServiceAccount,
) -> Result<ServiceAccount, StoreError> {
    let created = client
        .execute(
            &format!(
                "INSERT INTO service_accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &account.id,
                &account.org_id,
                &account.name,
                &account.client_id,
                &account.secret_hash.as_slice(),
                &sql_time(account.created_at),
            ],
        )
        .await
        .map_err(backend)?;
    if created == 0 {
        return Err(StoreError::Conflict("that client id is taken".into()));
    }
    Ok(account)
}

/// Finds a service account by client id.
pub async fn service_account_by_client_id(
    client: &Client,
    client_id: &str,
) -> Result<Option<ServiceAccount>, StoreError> {
    if client_id.contains('\0') {
        // PostgreSQL text cannot hold a NUL, so nothing stored has one.
        return Ok(None);
    }
    let row = client
        .query_opt(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE client_id = $1"),
            &[&client_id],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(account_from_row).transpose()
}

/// An organization's service accounts, by name.
pub async fn service_accounts(
    client: &Client,
    org_id: Uuid,
) -> Result<Vec<ServiceAccount>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE org_id = $1
                 ORDER BY name COLLATE \"C\", id"
            ),
            &[&org_id],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(account_from_row).collect()
}

/// Renames a service account of the organization.
async fn rename_service_account(
    client: &Transaction<'_>,
    org_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<ServiceAccount>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE service_accounts SET name = $3 WHERE id = $1 AND org_id = $2
                 RETURNING {ACCOUNT_COLUMNS}"
            ),
            &[&id, &org_id, &name],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(account_from_row).transpose()
}

/// Deletes a service account of the organization and revokes its live credentials.
async fn delete_service_account(
    tx: &Transaction<'_>,
    org_id: Uuid,
    id: Uuid,
    at: Timestamp,
) -> Result<Option<ServiceAccount>, StoreError> {
    let row = tx
        .query_opt(
            &format!(
                "DELETE FROM service_accounts WHERE id = $1 AND org_id = $2
                 RETURNING {ACCOUNT_COLUMNS}"
            ),
            &[&id, &org_id],
        )
        .await
        .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    tx.execute(
        "UPDATE credentials SET revoked_at = $2
         WHERE service_account_id = $1 AND revoked_at IS NULL",
        &[&id, &sql_time(at)],
    )
    .await
    .map_err(backend)?;
    account_from_row(&row).map(Some)
}

const CREDENTIAL_COLUMNS: &str = "id, kind, token_hash, org_id, user_id, service_account_id, \
                                  name, created_at, expires_at, revoked_at";

fn credential_from_row(row: &Row) -> Result<Credential, StoreError> {
    let kind: &str = row.get(1);
    Ok(Credential {
        id: row.get(0),
        kind: CredentialKind::parse(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown credential kind {kind:?}")))?,
        token_hash: hash32(row.get(2), "a token hash")?,
        org_id: row.get(3),
        user_id: row.get(4),
        service_account_id: row.get(5),
        name: row.get(6),
        created_at: from_sql_time(row.get(7))?,
        expires_at: from_opt_sql_time(row.get(8))?,
        revoked_at: from_opt_sql_time(row.get(9))?,
    })
}

/// Stores a credential.
async fn create_credential(
    client: &Transaction<'_>,
    credential: Credential,
) -> Result<Credential, StoreError> {
    client
        .execute(
            &format!(
                "INSERT INTO credentials ({CREDENTIAL_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &credential.id,
                &credential.kind.as_str(),
                &credential.token_hash.as_slice(),
                &credential.org_id,
                &credential.user_id,
                &credential.service_account_id,
                &credential.name,
                &sql_time(credential.created_at),
                &credential.expires_at.map(sql_time),
                &credential.revoked_at.map(sql_time),
            ],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("a credential with that id or token exists".into())
            } else {
                backend(e)
            }
        })?;
    Ok(credential)
}

/// The credential with this token hash.
pub async fn credential_by_hash(
    client: &Client,
    token_hash: [u8; 32],
) -> Result<Option<Credential>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE token_hash = $1"),
            &[&token_hash.as_slice()],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(credential_from_row).transpose()
}

/// Credentials of a kind, optionally one user's or one organization's, newest first.
pub async fn credentials(
    client: &Client,
    kind: CredentialKind,
    user_id: Option<Uuid>,
    org_id: Option<Uuid>,
) -> Result<Vec<Credential>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials
                 WHERE kind = $1 AND ($2::uuid IS NULL OR user_id = $2)
                   AND ($3::uuid IS NULL OR org_id = $3)
                 ORDER BY created_at DESC, id DESC"
            ),
            &[&kind.as_str(), &user_id, &org_id],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(credential_from_row).collect()
}

/// Revokes a credential, keeping an earlier revocation time; returns it as it was.
async fn revoke_credential(
    tx: &Transaction<'_>,
    id: Uuid,
    at: Timestamp,
) -> Result<Option<Credential>, StoreError> {
    let before = tx
        .query_opt(
            &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await
        .map_err(backend)?;
    let Some(before) = before.as_ref().map(credential_from_row).transpose()? else {
        return Ok(None);
    };
    if before.revoked_at.is_none() {
        tx.execute(
            "UPDATE credentials SET revoked_at = $2 WHERE id = $1",
            &[&id, &sql_time(at)],
        )
        .await
        .map_err(backend)?;
    }
    Ok(Some(before))
}

/// Deletes credentials that expired before `before`; returns how many.
pub async fn purge_expired_credentials(
    client: &Client,
    before: Timestamp,
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM credentials WHERE expires_at < $1",
            &[&sql_time(before)],
        )
        .await
        .map_err(backend)
}

const JOB_COLUMNS: &str = "org_id, id, status, request, requested_by, created_at, \
                           completed_at, progress, total_records, error_message, file_name, \
                           expires_at, claimed_by, heartbeat_at";

fn job_from_row(row: &Row) -> Result<ExportJob, StoreError> {
    let status: &str = row.get(2);
    let progress: i16 = row.get(7);
    let total_records: Option<i64> = row.get(8);
    Ok(ExportJob {
        org_id: row.get(0),
        id: row.get(1),
        status: JobStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job status {status:?}")))?,
        request: row.get(3),
        requested_by: row.get(4),
        created_at: from_sql_time(row.get(5))?,
        completed_at: from_opt_sql_time(row.get(6))?,
        progress: progress.clamp(0, 100) as u8,
        total_records: total_records.map(|n| n.max(0) as u64),
        error_message: row.get(9),
        file_name: row.get(10),
        expires_at: from_opt_sql_time(row.get(11))?,
        claimed_by: row.get(12),
        heartbeat_at: from_opt_sql_time(row.get(13))?,
    })
}

/// Writes a job: inserts it, or replaces every field of the stored one.
pub async fn put_job(client: &impl GenericClient, job: &ExportJob) -> Result<(), StoreError> {
    client
        .execute(
            &format!(
                "INSERT INTO export_jobs ({JOB_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (org_id, id) DO UPDATE SET
                     status = excluded.status, request = excluded.request,
                     requested_by = excluded.requested_by, created_at = excluded.created_at,
                     completed_at = excluded.completed_at, progress = excluded.progress,
                     total_records = excluded.total_records,
                     error_message = excluded.error_message, file_name = excluded.file_name,
                     expires_at = excluded.expires_at, claimed_by = excluded.claimed_by,
                     heartbeat_at = excluded.heartbeat_at"
            ),
            &[
                &job.org_id,
                &job.id,
                &job.status.as_str(),
                &job.request,
                &job.requested_by,
                &sql_time(job.created_at),
                &job.completed_at.map(sql_time),
                &i16::from(job.progress),
                &job.total_records
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
                &job.error_message,
                &job.file_name,
                &job.expires_at.map(sql_time),
                &job.claimed_by,
                &job.heartbeat_at.map(sql_time),
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// One job of one organization.
pub async fn get_job(
    client: &Client,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<ExportJob>, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE org_id = $1 AND id = $2"),
            &[&org_id, &id],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(job_from_row).transpose()
}

/// Claims the oldest pending job, or a running one whose heartbeat is older than
/// `stale_before`. `SKIP LOCKED` lets replicas claim at once without waiting on each other or
/// taking the same job; a job another claimer just took no longer qualifies when this
/// statement rechecks it.
pub async fn claim_job(
    client: &Client,
    runner: &str,
    now: Timestamp,
    stale_before: Timestamp,
) -> Result<Option<ExportJob>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "WITH next AS (
                     SELECT org_id AS next_org_id, id AS next_id FROM export_jobs
                     WHERE status = 'pending'
                        OR (status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $3))
                     ORDER BY created_at, id LIMIT 1
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE export_jobs
                 SET status = 'running', claimed_by = $1, heartbeat_at = $2, progress = 0
                 FROM next WHERE org_id = next_org_id AND id = next_id
                 RETURNING {JOB_COLUMNS}"
            ),
            &[&runner, &sql_time(now), &sql_time(stale_before)],
        )
        .await
        .map_err(backend)?;
    row.as_ref().map(job_from_row).transpose()
}

/// Completed jobs (of every organization) whose files expire before `now`.
pub async fn expired_jobs(client: &Client, now: Timestamp) -> Result<Vec<ExportJob>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM export_jobs
                 WHERE status = 'completed' AND expires_at < $1 ORDER BY expires_at"
            ),
            &[&sql_time(now)],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(job_from_row).collect()
}
