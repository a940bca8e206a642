//! `auditlog migrate --from DIR --to postgres://…`: moves an embedded (SQLite) store into
//! PostgreSQL, after proving the source intact, with every chain re-verified in the target.
//!
//! The `Store` trait has no way to create an organization with a given id or to store an
//! event with its id and hash, so the target re-issues them: each organization is created
//! anew (same name, display name and enrolment) and its events are appended in `seq` order.
//! `seq`, `occurred_at` and every field of the content stay the same; organization ids, event
//! ids, `created_at` and chain hashes are new, and a new signed checkpoint seals each chain.
//! Users, memberships, service accounts and credentials keep their ids (their `create_*`
//! methods take whole records); references to an organization follow it to its new id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use auditlog_service::{keys, Service, MAX_BATCH};
use auditlog_store::{Append, CredentialKind, NewOrg, Org, Store, StoreError, User};
use clap::Args;
use uuid::Uuid;

use super::Context;
use crate::progress;

/// Every kind of credential, so that none is left behind.
const CREDENTIAL_KINDS: [CredentialKind; 5] = [
    CredentialKind::Ingest,
    CredentialKind::ApiToken,
    CredentialKind::AccessToken,
    CredentialKind::Session,
    CredentialKind::SignInLink,
];

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data directory of the embedded store to copy (its `auditlog.db` and signing key).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into (`postgres://user:password@host/db`); it must not
    /// hold events yet.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// What was copied, for the summary.
#[derive(Debug, Default)]
struct Copied {
    orgs: usize,
    users: usize,
    memberships: usize,
    service_accounts: usize,
    credentials: usize,
    events: u64,
}

/// Runs `migrate`.
pub async fn run(context: &Context, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let from = args.from.as_path();
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        bail!("--to must be a PostgreSQL URL (postgres://user:password@host:port/database)");
    }
    // `SqliteStore::open` would create an empty store where there is none; a typo in --from
    // must not migrate nothing successfully.
    let db_file = from.join(auditlog_sqlite::DB_FILE);
    if !db_file.is_file() {
        bail!(
            "{} holds no embedded store (no {})",
            from.display(),
            auditlog_sqlite::DB_FILE
        );
    }
    // The history was vouched for by the source's key: the target's checkpoints are signed by
    // the same key, so that exports and `verify` keep one public key across the move.
    let key = keys::load(from).with_context(|| {
        format!(
            "the source's signing key is needed to check and re-sign its chains ({})",
            keys::key_path(from).display()
        )
    })?;
    check_data_dir_key(&context.data_dir, from, &key)?;

    let source_context = Context {
        data_dir: from.to_path_buf(),
        catalog: context.catalog.clone(),
        database_url: None,
    };
    let target_context = Context {
        data_dir: from.to_path_buf(),
        catalog: context.catalog.clone(),
        database_url: Some(args.to.clone()),
    };
    let source = Service::new(
        source_context.store().await?,
        context.catalog.clone(),
        key.clone(),
    );
    let target = Service::new(target_context.store().await?, context.catalog.clone(), key);
    let result = migrate(&source, &target).await;
    source.store().close();
    target.store().close();
    result
}

/// Refuses when the global data directory holds a different key than the source's: replicas
/// started with it would sign checkpoints that `verify` cannot match against the migrated
/// ones. Without a key there, says where replicas must get theirs.
fn check_data_dir_key(
    data_dir: &Path,
    from: &Path,
    key: &ed25519_dalek::SigningKey,
) -> anyhow::Result<()> {
    match keys::load(data_dir) {
        Ok(other) if other.to_bytes() != key.to_bytes() => bail!(
            "{} holds another signing key than {}: replicas using --data-dir {} would sign \
             checkpoints that do not match the migrated ones; use --data-dir {} (or copy its \
             key file there)",
            keys::key_path(data_dir).display(),
            keys::key_path(from).display(),
            data_dir.display(),
            from.display()
        ),
        Ok(_) => Ok(()),
        Err(keys::KeyError::Missing(_)) => {
            eprintln!(
                "note: checkpoints are signed with {}; give every replica a data directory \
                 holding that file",
                keys::key_path(from).display()
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Verifies the source, checks the target is empty of events, copies, re-verifies.
async fn migrate(source: &Service, target: &Service) -> anyhow::Result<ExitCode> {
    let src = source.store().as_ref();
    let dst = target.store().as_ref();

    // 1. The source must be intact: copying a tampered chain would launder it, since the
    //    target's new hashes would vouch for whatever the rows say now.
    let orgs = src.list_orgs().await?;
    let mut heads = HashMap::new();
    let mut failures = 0usize;
    for org in &orgs {
        let bar = progress::counter(&format!("verifying {}", org.name));
        let result = source.verify_org(org.id, &|n| bar.set_position(n)).await;
        bar.finish_and_clear();
        match result {
            Ok(verified) => {
                heads.insert(org.id, verified.events);
            }
            Err(error) => {
                failures += 1;
                println!("TAMPERED  {}: {error}", org.name);
            }
        }
    }
    if failures > 0 {
        println!(
            "the source fails verification for {failures} of {} organization(s): nothing was migrated",
            orgs.len()
        );
        return Ok(ExitCode::from(1));
    }

    // 2. The target must hold no events: appending after someone else's events would give
    //    the migrated ones other seqs, and a second run would copy everything twice.
    let existing: HashMap<String, Org> = dst
        .list_orgs()
        .await?
        .into_iter()
        .map(|org| (org.name.clone(), org))
        .collect();
    let mut occupied = Vec::new();
    for org in existing.values() {
        let head = dst.chain_head(org.id).await?;
        if head.seq > 0 {
            occupied.push(format!("{} ({} events)", org.name, head.seq));
        }
    }
    if !occupied.is_empty() {
        occupied.sort();
        println!(
            "the target already holds events of {}: migrate only into a database without events \
             (after a failed migration, drop and recreate it); nothing was migrated",
            occupied.join(", ")
        );
        return Ok(ExitCode::from(1));
    }

    let mut copied = Copied::default();

    // 3. Organizations. One left by an earlier, interrupted run (it has no events, checked
    //    above) is taken over rather than refused, so that the migration can be re-run.
    let mut org_ids: HashMap<Uuid, Uuid> = HashMap::new();
    let mut pairs = Vec::new();
    for org in &orgs {
        let new = match existing.get(&org.name) {
            Some(found) => {
                if found.display_name != org.display_name {
                    eprintln!(
                        "note: {} already exists in the target with display name {:?} (the source has {:?}); kept",
                        org.name, found.display_name, org.display_name
                    );
                }
                if found.audit_logs_enabled != org.audit_logs_enabled {
                    dst.set_org_enabled(found.id, org.audit_logs_enabled)
                        .await?;
                }
                found.clone()
            }
            None => {
                dst.create_org(NewOrg {
                    name: org.name.clone(),
                    display_name: org.display_name.clone(),
                    audit_logs_enabled: org.audit_logs_enabled,
                })
                .await?
            }
        };
        org_ids.insert(org.id, new.id);
        pairs.push((org.clone(), new));
        copied.orgs += 1;
    }

    // 4. Users and their roles; the trait lists users only per organization (and per
    //    credential, below), so a user with neither has nothing to carry over.
    let mut users_done = HashSet::new();
    for (org, new) in &pairs {
        for (user, role) in src.members(org.id).await? {
            copy_user(dst, &user, &mut users_done, &mut copied).await?;
            dst.set_role(new.id, user.id, Some(role)).await?;
            copied.memberships += 1;
        }
    }

    // 5. Service accounts, under their organization's new id.
    for (org, new) in &pairs {
        for account in src.service_accounts(org.id).await? {
            match dst.service_account_by_client_id(&account.client_id).await? {
                Some(found) if found.id == account.id => {}
                Some(_) => bail!(
                    "the target already has another service account with client id {}",
                    account.client_id
                ),
                None => {
                    dst.create_service_account(auditlog_store::ServiceAccount {
                        org_id: new.id,
                        ..account
                    })
                    .await?;
                }
            }
            copied.service_accounts += 1;
        }
    }

    // 6. Credentials of every kind, revoked ones too, so that token lists read the same and
    //    every live key, token and session keeps working against the new store.
    for kind in CREDENTIAL_KINDS {
        for credential in src.credentials(kind, None, None).await? {
            if let Some(user_id) = credential.user_id {
                if !users_done.contains(&user_id) {
                    if let Some(user) = src.find_user(&user_id.to_string()).await? {
                        copy_user(dst, &user, &mut users_done, &mut copied).await?;
                    }
                }
            }
            let org_id = match credential.org_id {
                None => None,
                Some(id) => Some(*org_ids.get(&id).ok_or_else(|| {
                    anyhow::anyhow!(
                        "credential {} names organization {id}, which the source does not have",
                        credential.id
                    )
                })?),
            };
            match dst.credential_by_hash(credential.token_hash).await? {
                Some(found) if found.id == credential.id => {}
                Some(_) => bail!(
                    "the target already has another credential with the secret of {}",
                    credential.id
                ),
                None => {
                    dst.create_credential(auditlog_store::Credential {
                        org_id,
                        ..credential
                    })
                    .await?;
                }
            }
            copied.credentials += 1;
        }
    }

    // 7. Events, organization by organization, in seq order, up to the verified head: what
    //    arrives in the source meanwhile was not verified and is not copied (reported below).
    let total: u64 = heads.values().sum();
    let bar = progress::bar(total, "copying events");
    for (org, new) in &pairs {
        let head = heads[&org.id];
        let mut after = 0u64;
        while after < head {
            let limit = (head - after).min(MAX_BATCH as u64) as u32;
            let events = src.events_by_seq(org.id, after, limit).await?;
            if events.is_empty() {
                bail!(
                    "{}: the source's events end at seq {after}, before the verified head {head}",
                    org.name
                );
            }
            let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
            let batch = events
                .into_iter()
                .map(|event| Append {
                    org_id: new.id,
                    body: event.body,
                })
                .collect();
            let stored = dst.append(batch).await.map_err(|e| {
                anyhow::anyhow!(
                    "{}: appending after seq {after} failed ({e}); {} events were copied in all",
                    org.name,
                    copied.events
                )
            })?;
            // Someone writing to the target at the same time would shift the seqs: stop
            // rather than leave a chain whose positions differ from the source's.
            let stored_seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
            if stored_seqs != seqs {
                bail!(
                    "{}: the target stored seq {:?}..{:?} for the source's {:?}..{:?}: is something else writing to the target?",
                    org.name,
                    stored_seqs.first(),
                    stored_seqs.last(),
                    seqs.first(),
                    seqs.last()
                );
            }
            after = *seqs.last().expect("a non-empty batch");
            copied.events += seqs.len() as u64;
            bar.inc(seqs.len() as u64);
        }
    }
    bar.finish_and_clear();

    // 8. Seal and re-verify every migrated chain in the target.
    let mut failures = 0usize;
    for (org, new) in &pairs {
        let checkpoint = target.checkpoint(new.id).await?;
        let bar = progress::counter(&format!("verifying {} in the target", org.name));
        let result = target.verify_org(new.id, &|n| bar.set_position(n)).await;
        bar.finish_and_clear();
        match result {
            Ok(verified) if verified.events == heads[&org.id] => println!(
                "ok        {}: {} events, seq 1..={}, signed checkpoint at seq {}",
                org.name, verified.events, verified.events, checkpoint.checkpoint.seq
            ),
            Ok(verified) => {
                failures += 1;
                println!(
                    "FAILED    {}: the target holds {} events, the source {}",
                    org.name, verified.events, heads[&org.id]
                );
            }
            Err(error) => {
                failures += 1;
                println!("FAILED    {}: {error}", org.name);
            }
        }
    }
    if failures > 0 {
        println!("the target fails verification for {failures} organization(s)");
        return Ok(ExitCode::from(1));
    }

    println!(
        "migrated {} organization(s), {} user(s), {} membership(s), {} service account(s), {} credential(s) and {} event(s)",
        copied.orgs,
        copied.users,
        copied.memberships,
        copied.service_accounts,
        copied.credentials,
        copied.events
    );
    println!(
        "note: the target re-issued organization ids, event ids, stored-at times and chain \
         hashes (seq, occurred_at and content are unchanged); checkpoints and exports of the \
         embedded store do not verify against the new chains, and a new signed checkpoint was \
         made for each organization"
    );
    println!("note: idempotency keys and export jobs are not migrated");
    let moved = moved_since(src, &pairs, &heads).await?;
    if !moved.is_empty() {
        println!(
            "WARNING: events arrived in the source during the migration and were not copied: {}; \
             stop every writer, drop the target database and migrate again",
            moved.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `user` in the target once (same id), unless a run before this one did.
async fn copy_user(
    dst: &dyn Store,
    user: &User,
    done: &mut HashSet<Uuid>,
    copied: &mut Copied,
) -> anyhow::Result<()> {
    if !done.insert(user.id) {
        return Ok(());
    }
    match dst.find_user(&user.id.to_string()).await? {
        Some(_) => {}
        None => match dst.create_user(user.clone()).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => bail!(
                "the target already has another user with email {}",
                user.email
            ),
            Err(e) => return Err(e.into()),
        },
    }
    copied.users += 1;
    Ok(())
}

/// The organizations whose source chain grew past the head that was verified and copied.
async fn moved_since(
    src: &dyn Store,
    pairs: &[(Org, Org)],
    heads: &HashMap<Uuid, u64>,
) -> Result<Vec<String>, StoreError> {
    let mut moved = BTreeMap::new();
    for (org, _) in pairs {
        let head = src.chain_head(org.id).await?;
        if head.seq > heads[&org.id] {
            moved.insert(org.name.clone(), head.seq - heads[&org.id]);
        }
    }
    Ok(moved
        .into_iter()
        .map(|(name, n)| format!("{name} ({n} events)"))
        .collect())
}
