//! Organizations' settings, users, roles, service accounts, credentials, checkpoints and
//! export jobs, legal holds: plain rows, written through the writer (`Command::Exec`, and `Command::Apply`
//! for changes recorded in the log) and read on pooled readers.

use auditlog_core::chain::SignedCheckpoint;
use auditlog_core::Timestamp;
use auditlog_store::{
    Change, Changed, Credential, CredentialKind, ExportJob, JobStatus, LegalHold, Org, Role,
    ServiceAccount, StoreError, User,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use crate::{backend, org_from_row, ORG_COLUMNS};

fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(idx)?;
    Uuid::from_slice(&bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn opt_uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(idx)?;
    bytes
        .map(|b| Uuid::from_slice(&b))
        .transpose()
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(e))
        })
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    let ms: i64 = row.get(idx)?;
    Ok(Timestamp::from_millis(ms).unwrap_or(Timestamp::from_millis(0).expect("epoch")))
}

fn opt_time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    let ms: Option<i64> = row.get(idx)?;
    Ok(ms.and_then(Timestamp::from_millis))
}

fn hash_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<[u8; 32]> {
    let bytes: Vec<u8> = row.get(idx)?;
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Blob,
            "hash is not 32 bytes".into(),
        )
    })
}

fn blob(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

fn opt_blob(id: Option<Uuid>) -> Option<Vec<u8>> {
    id.map(blob)
}

/// Enrolls or unenrolls an organization.
pub fn set_org_enabled(
    conn: &Connection,
    org_id: Uuid,
    enabled: bool,
) -> Result<Option<Org>, StoreError> {
    conn.execute(
        "UPDATE orgs SET audit_logs_enabled = ?2 WHERE id = ?1",
        params![blob(org_id), enabled],
    )
    .map_err(backend)?;
    conn.query_row(
        &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = ?1"),
        [blob(org_id)],
        org_from_row,
    )
    .optional()
    .map_err(backend)
}

/// Keeps a signed checkpoint.
pub fn save_checkpoint(conn: &Connection, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
    let org_key: i64 = conn
        .query_row(
            "SELECT org_key FROM orgs WHERE id = ?1",
            [blob(checkpoint.checkpoint.org_id)],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?
        .ok_or(StoreError::UnknownOrg(checkpoint.checkpoint.org_id))?;
    conn.execute(
        "INSERT OR REPLACE INTO checkpoints (org_key, seq, hash, signed_at, key_id, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            org_key,
            checkpoint.checkpoint.seq as i64,
            checkpoint.checkpoint.hash.as_slice(),
            checkpoint.checkpoint.signed_at.as_millis(),
            checkpoint.key_id,
            checkpoint.signature.as_slice(),
        ],
    )
    .map_err(backend)?;
    Ok(())
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, created_at";

/// Makes one change of [`Store::apply`](auditlog_store::Store::apply), inside the caller's
/// transaction.
pub fn apply_change(conn: &Connection, change: Change) -> Result<Changed, StoreError> {
    Ok(match change {
        Change::CreateUser(user) => Changed::User(create_user(conn, user)?),
        Change::SetRole {
            org_id,
            user_id,
            role,
        } => Changed::Role(set_role(conn, org_id, user_id, role)?),
        Change::CreateServiceAccount(account) => {
            Changed::ServiceAccount(Some(create_service_account(conn, account)?))
        }
        Change::RenameServiceAccount { org_id, id, name } => {
            Changed::ServiceAccount(rename_service_account(conn, org_id, id, &name)?)
        }
        Change::DeleteServiceAccount { org_id, id, at } => {
            Changed::ServiceAccount(delete_service_account(conn, org_id, id, at)?)
        }
        Change::CreateCredential(credential) => {
            Changed::Credential(Some(create_credential(conn, credential)?))
        }
        Change::RevokeCredential { id, at } => {
            Changed::Credential(revoke_credential(conn, id, at)?)
        }
        Change::CreateJob(job) => {
            put_job(conn, &job)?;
            Changed::Job(job)
        }
        Change::PlaceHold(hold) => Changed::Hold(Some(place_hold(conn, hold)?)),
        Change::LiftHold { org_id, id, at, by } => {
            Changed::Hold(lift_hold(conn, org_id, id, at, &by)?)
        }
        Change::SetRetention { org_id, days } => {
            Changed::Retention(crate::retention::set_retention(conn, org_id, days)?)
        }
        Change::EraseSubject {
            org_id,
            subject,
            seqs,
        } => {
            let holds = legal_holds(conn, org_id)?;
            Changed::Erased(crate::erasure::erase_subject(
                conn, org_id, &subject, &seqs, &holds,
            )?)
        }
    })
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_at(row, 0)?,
        email: row.get(1)?,
        display_name: row.get(2)?,
        password_hash: row.get(3)?,
        created_at: time_at(row, 4)?,
    })
}

/// Creates a user.
pub fn create_user(conn: &Connection, user: User) -> Result<User, StoreError> {
    let user = User {
        email: user.email.to_lowercase(),
        ..user
    };
    let taken = conn
        .query_row(
            "SELECT 1 FROM users WHERE email = ?1",
            [&user.email],
            |_| Ok(()),
        )
        .optional()
        .map_err(backend)?
        .is_some();
    if taken {
        return Err(StoreError::Conflict(format!(
            "a user with email {:?} already exists",
            user.email
        )));
    }
    conn.execute(
        "INSERT INTO users (id, email, display_name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![blob(user.id), user.email, user.display_name, user.password_hash, user.created_at.as_millis()],
    )
    .map_err(backend)?;
    Ok(user)
}

/// Finds a user by email or id.
pub fn find_user(conn: &Connection, email_or_id: &str) -> Result<Option<User>, StoreError> {
    let by_id = Uuid::parse_str(email_or_id).ok().map(blob);
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 OR id = ?2"),
        params![email_or_id.to_lowercase(), by_id],
        user_from_row,
    )
    .optional()
    .map_err(backend)
}

/// Sets a password hash.
pub fn set_password(
    conn: &Connection,
    user_id: Uuid,
    hash: Option<String>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![blob(user_id), hash],
    )
    .map_err(backend)?;
    Ok(())
}

/// The role of a user in an organization.
pub fn role_of(conn: &Connection, org_id: Uuid, user_id: Uuid) -> Result<Option<Role>, StoreError> {
    let role: Option<String> = conn
        .query_row(
            "SELECT role FROM memberships WHERE org_id = ?1 AND user_id = ?2",
            params![blob(org_id), blob(user_id)],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    role.map(|r| Role::parse(&r).ok_or_else(|| StoreError::Corrupt(format!("unknown role {r:?}"))))
        .transpose()
}

/// Sets or removes a role; returns the previous one.
pub fn set_role(
    conn: &Connection,
    org_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
) -> Result<Option<Role>, StoreError> {
    let exists = |table: &str, id: Uuid| -> Result<bool, StoreError> {
        conn.query_row(
            &format!("SELECT 1 FROM {table} WHERE id = ?1"),
            [blob(id)],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(backend)
    };
    if !exists("orgs", org_id)? {
        return Err(StoreError::UnknownOrg(org_id));
    }
    if !exists("users", user_id)? {
        return Err(StoreError::Conflict(format!(
            "user {user_id} does not exist"
        )));
    }
    let before = role_of(conn, org_id, user_id)?;
    match role {
        Some(role) => conn.execute(
            "INSERT INTO memberships (org_id, user_id, role) VALUES (?1, ?2, ?3)
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
            params![blob(org_id), blob(user_id), role.as_str()],
        ),
        None => conn.execute(
            "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2",
            params![blob(org_id), blob(user_id)],
        ),
    }
    .map_err(backend)?;
    Ok(before)
}

/// A user's organizations.
pub fn memberships(conn: &Connection, user_id: Uuid) -> Result<Vec<(Org, Role)>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT o.id, o.name, o.display_name, o.audit_logs_enabled, o.created_at, m.role
             FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = ?1 ORDER BY o.name",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([blob(user_id)], |row| {
            Ok((org_from_row(row)?, row.get::<_, String>(5)?))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (org, role) = row.map_err(backend)?;
        out.push((
            org,
            Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        ));
    }
    Ok(out)
}

/// An organization's members.
pub fn members(conn: &Connection, org_id: Uuid) -> Result<Vec<(User, Role)>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT u.id, u.email, u.display_name, u.password_hash, u.created_at, m.role
             FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 ORDER BY u.email",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([blob(org_id)], |row| {
            Ok((user_from_row(row)?, row.get::<_, String>(5)?))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (user, role) = row.map_err(backend)?;
        out.push((
            user,
            Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        ));
    }
    Ok(out)
}

const ACCOUNT_COLUMNS: &str = "id, org_id, name, client_id, secret_hash, created_at";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<ServiceAccount> {
    Ok(ServiceAccount {
        id: uuid_at(row, 0)?,
        org_id: uuid_at(row, 1)?,
        name: row.get(2)?,
        client_id: row.get(3)?,
        secret_hash: hash_at(row, 4)?,
        created_at: time_at(row, 5)?,
    })
}

/// Creates a service account.
pub fn create_service_account(
    conn: &Connection,
    account: ServiceAccount,
) -> Result<ServiceAccount, StoreError> {
    if service_account_by_client_id(conn, &account.client_id)?.is_some() {
        return Err(StoreError::Conflict("that client id is taken".into()));
    }
    conn.execute(
        "INSERT INTO service_accounts (id, org_id, name, client_id, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            blob(account.id),
            blob(account.org_id),
            account.name,
            account.client_id,
            account.secret_hash.as_slice(),
            account.created_at.as_millis()
        ],
    )
    .map_err(backend)?;
    Ok(account)
}

/// Finds a service account by client id.
pub fn service_account_by_client_id(
    conn: &Connection,
    client_id: &str,
) -> Result<Option<ServiceAccount>, StoreError> {
    conn.query_row(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE client_id = ?1"),
        [client_id],
        account_from_row,
    )
    .optional()
    .map_err(backend)
}

fn service_account(
    conn: &Connection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<ServiceAccount>, StoreError> {
    conn.query_row(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE id = ?1 AND org_id = ?2"),
        params![blob(id), blob(org_id)],
        account_from_row,
    )
    .optional()
    .map_err(backend)
}

/// An organization's service accounts.
pub fn service_accounts(
    conn: &Connection,
    org_id: Uuid,
) -> Result<Vec<ServiceAccount>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM service_accounts WHERE org_id = ?1 ORDER BY name, id"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map([blob(org_id)], account_from_row)
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

/// Renames a service account.
pub fn rename_service_account(
    conn: &Connection,
    org_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<ServiceAccount>, StoreError> {
    conn.execute(
        "UPDATE service_accounts SET name = ?3 WHERE id = ?1 AND org_id = ?2",
        params![blob(id), blob(org_id), name],
    )
    .map_err(backend)?;
    service_account(conn, org_id, id)
}

/// Deletes a service account and revokes its credentials.
pub fn delete_service_account(
    conn: &Connection,
    org_id: Uuid,
    id: Uuid,
    at: Timestamp,
) -> Result<Option<ServiceAccount>, StoreError> {
    let Some(account) = service_account(conn, org_id, id)? else {
        return Ok(None);
    };
    conn.execute("DELETE FROM service_accounts WHERE id = ?1", [blob(id)])
        .map_err(backend)?;
    conn.execute(
        "UPDATE credentials SET revoked_at = ?2 WHERE service_account_id = ?1 AND revoked_at IS NULL",
        params![blob(id), at.as_millis()],
    )
    .map_err(backend)?;
    Ok(Some(account))
}

const CREDENTIAL_COLUMNS: &str =
    "id, kind, token_hash, org_id, user_id, service_account_id, name, created_at, expires_at, revoked_at";

fn credential_from_row(row: &Row<'_>) -> rusqlite::Result<Credential> {
    let kind: String = row.get(1)?;
    Ok(Credential {
        id: uuid_at(row, 0)?,
        kind: CredentialKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                "unknown credential kind".into(),
            )
        })?,
        token_hash: hash_at(row, 2)?,
        org_id: opt_uuid_at(row, 3)?,
        user_id: opt_uuid_at(row, 4)?,
        service_account_id: opt_uuid_at(row, 5)?,
        name: row.get(6)?,
        created_at: time_at(row, 7)?,
        expires_at: opt_time_at(row, 8)?,
        revoked_at: opt_time_at(row, 9)?,
    })
}

/// Stores a credential.
pub fn create_credential(
    conn: &Connection,
    credential: Credential,
) -> Result<Credential, StoreError> {
    conn.execute(
        &format!("INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        params![
            blob(credential.id),
            credential.kind.as_str(),
            credential.token_hash.as_slice(),
            opt_blob(credential.org_id),
            opt_blob(credential.user_id),
            opt_blob(credential.service_account_id),
            credential.name,
            credential.created_at.as_millis(),
            credential.expires_at.map(Timestamp::as_millis),
            credential.revoked_at.map(Timestamp::as_millis),
        ],
    )
    .map_err(backend)?;
    Ok(credential)
}

/// The credential with this token hash.
pub fn credential_by_hash(
    conn: &Connection,
    token_hash: [u8; 32],
) -> Result<Option<Credential>, StoreError> {
    conn.query_row(
        &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE token_hash = ?1"),
        [token_hash.as_slice()],
        credential_from_row,
    )
    .optional()
    .map_err(backend)
}

/// Credentials of a kind, optionally one user's or organization's.
pub fn credentials(
    conn: &Connection,
    kind: CredentialKind,
    user_id: Option<Uuid>,
    org_id: Option<Uuid>,
) -> Result<Vec<Credential>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE kind = ?1
             AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR org_id = ?3)
             ORDER BY created_at DESC, id DESC"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![kind.as_str(), opt_blob(user_id), opt_blob(org_id)],
            credential_from_row,
        )
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

/// Revokes a credential; returns it as it was.
pub fn revoke_credential(
    conn: &Connection,
    id: Uuid,
    at: Timestamp,
) -> Result<Option<Credential>, StoreError> {
    let before = conn
        .query_row(
            &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?1"),
            [blob(id)],
            credential_from_row,
        )
        .optional()
        .map_err(backend)?;
    if before.as_ref().is_some_and(|c| c.revoked_at.is_none()) {
        conn.execute(
            "UPDATE credentials SET revoked_at = ?2 WHERE id = ?1",
            params![blob(id), at.as_millis()],
        )
        .map_err(backend)?;
    }
    Ok(before)
}

/// Deletes credentials that expired before `before`.
pub fn purge_expired_credentials(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    let n = conn
        .execute(
            "DELETE FROM credentials WHERE expires_at IS NOT NULL AND expires_at < ?1",
            [before.as_millis()],
        )
        .map_err(backend)?;
    Ok(n as u64)
}

const JOB_COLUMNS: &str =
    "id, org_id, status, request, requested_by, created_at, completed_at, progress,
    total_records, error_message, file_name, expires_at, claimed_by, heartbeat_at";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<ExportJob> {
    let status: String = row.get(2)?;
    let total: Option<i64> = row.get(8)?;
    let progress: i64 = row.get(7)?;
    Ok(ExportJob {
        id: uuid_at(row, 0)?,
        org_id: uuid_at(row, 1)?,
        status: JobStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                "unknown job status".into(),
            )
        })?,
        request: row.get(3)?,
        requested_by: row.get(4)?,
        created_at: time_at(row, 5)?,
        completed_at: opt_time_at(row, 6)?,
        progress: progress.clamp(0, 100) as u8,
        total_records: total.map(|t| t.max(0) as u64),
        error_message: row.get(9)?,
        file_name: row.get(10)?,
        expires_at: opt_time_at(row, 11)?,
        claimed_by: row.get(12)?,
        heartbeat_at: opt_time_at(row, 13)?,
    })
}

/// Writes a job (insert or full update).
pub fn put_job(conn: &Connection, job: &ExportJob) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO export_jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            blob(job.id),
            blob(job.org_id),
            job.status.as_str(),
            job.request,
            job.requested_by,
            job.created_at.as_millis(),
            job.completed_at.map(Timestamp::as_millis),
            job.progress as i64,
            job.total_records.map(|t| t as i64),
            job.error_message,
            job.file_name,
            job.expires_at.map(Timestamp::as_millis),
            job.claimed_by,
            job.heartbeat_at.map(Timestamp::as_millis),
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// One job of one organization.
pub fn get_job(conn: &Connection, org_id: Uuid, id: Uuid) -> Result<Option<ExportJob>, StoreError> {
    conn.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = ?1 AND org_id = ?2"),
        params![blob(id), blob(org_id)],
        job_from_row,
    )
    .optional()
    .map_err(backend)
}

/// Claims the oldest pending job, or a running one whose runner went quiet.
pub fn claim_job(
    conn: &Connection,
    runner: &str,
    now: Timestamp,
    stale_before: Timestamp,
) -> Result<Option<ExportJob>, StoreError> {
    let job = conn
        .query_row(
            &format!(
                "SELECT {JOB_COLUMNS} FROM export_jobs
                 WHERE status = 'pending' OR (status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < ?1))
                 ORDER BY created_at, id LIMIT 1"
            ),
            [stale_before.as_millis()],
            job_from_row,
        )
        .optional()
        .map_err(backend)?;
    let Some(mut job) = job else { return Ok(None) };
    job.status = JobStatus::Running;
    job.claimed_by = Some(runner.to_string());
    job.heartbeat_at = Some(now);
    job.progress = 0;
    put_job(conn, &job)?;
    Ok(Some(job))
}

/// Completed jobs whose files expired.
pub fn expired_jobs(conn: &Connection, now: Timestamp) -> Result<Vec<ExportJob>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM export_jobs WHERE status = 'completed' AND expires_at < ?1 ORDER BY expires_at"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map([now.as_millis()], job_from_row)
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

const HOLD_COLUMNS: &str =
    "id, org_id, subject, reason, placed_by, placed_at, lifted_at, lifted_by";

fn hold_from_row(row: &Row<'_>) -> rusqlite::Result<LegalHold> {
    Ok(LegalHold {
        id: uuid_at(row, 0)?,
        org_id: uuid_at(row, 1)?,
        subject: row.get(2)?,
        reason: row.get(3)?,
        placed_by: row.get(4)?,
        placed_at: time_at(row, 5)?,
        lifted_at: opt_time_at(row, 6)?,
        lifted_by: row.get(7)?,
    })
}

/// Stores a new legal hold.
fn place_hold(conn: &Connection, hold: LegalHold) -> Result<LegalHold, StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)"
        ),
        params![
            blob(hold.id),
            blob(hold.org_id),
            hold.subject,
            hold.reason,
            hold.placed_by,
            hold.placed_at.as_millis(),
        ],
    )
    .map_err(backend)?;
    Ok(hold)
}

/// Lifts a live hold of the organization; `None` when it has none with that id.
fn lift_hold(
    conn: &Connection,
    org_id: Uuid,
    id: Uuid,
    at: Timestamp,
    by: &str,
) -> Result<Option<LegalHold>, StoreError> {
    conn.query_row(
        &format!(
            "UPDATE legal_holds SET lifted_at = ?3, lifted_by = ?4
             WHERE id = ?1 AND org_id = ?2 AND lifted_at IS NULL RETURNING {HOLD_COLUMNS}"
        ),
        params![blob(id), blob(org_id), at.as_millis(), by],
        hold_from_row,
    )
    .optional()
    .map_err(backend)
}

/// The organization's holds, newest first.
pub fn legal_holds(conn: &Connection, org_id: Uuid) -> Result<Vec<LegalHold>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE org_id = ?1 ORDER BY placed_at DESC, id DESC"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map([blob(org_id)], hold_from_row)
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}
