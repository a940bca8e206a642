//! `auditlog migrate --from DIR --to postgres://…`: moves an embedded (SQLite) store into
//! PostgreSQL, after proving the source intact, with every chain re-verified in the target.
//!
//! Nothing is re-issued, so the chains stay the ones the source's checkpoints and exports
//! vouch for:
//! - organizations keep their ids and creation times (`Store::restore_org`);
//! - events keep their ids, seqs, `created_at` and hashes (`Store::restore_events`, in `seq`
//!   order, which stores only events that continue the target's chain);
//! - each organization's newest signed checkpoint is copied; the target is verified against
//!   it with the source's signing key, and then a checkpoint of the migrated head is signed
//!   with that key (the copied one, when it is already at the head);
//! - users, memberships, service accounts and credentials keep their ids (their `create_*`
//!   methods take whole records), and their organization ids are the same.
//!
//! An export file made from the embedded store therefore still verifies, and its events and
//! checkpoint are the target's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use auditlog_service::grant::Operator;
use auditlog_service::{keys, Service};
use auditlog_store::{CredentialKind, Org, Store, StoreError, User};
use clap::Args;
use uuid::Uuid;

use super::Context;
use crate::progress;

/// Events read from the source and restored into the target at a time.
const COPY_BATCH: u32 = 1000;

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
    // The history was vouched for by the source's key: the copied checkpoints are checked in
    // the target, and the migrated heads signed, with that same key, so that exports,
    // checkpoints and `verify` keep one public key across the move.
    let key = keys::load(from).with_context(|| {
        format!(
            "the source's signing key is needed to check its checkpoints in the target and sign the migrated heads ({})",
            keys::key_path(from).display()
        )
    })?;
    check_data_dir_key(&context.data_dir, from, &key)?;

    let source_context = Context {
        data_dir: from.to_path_buf(),
        database_url: None,
        ..context.clone()
    };
    let target_context = Context {
        data_dir: from.to_path_buf(),
        database_url: Some(args.to.clone()),
        ..context.clone()
    };
    // A migration copies rows as they are, store to store, so this command keeps the two
    // stores it opened; the services over them only verify the chains before and after.
    let source_store = source_context.open_store().await?;
    let target_store = target_context.open_store().await?;
    let source = context.compose(source_store.clone(), key.clone())?;
    let target = context.compose(target_store.clone(), key)?;
    let result = migrate(
        (&source, source_store.as_ref()),
        (&target, target_store.as_ref()),
    )
    .await;
    source.close();
    target.close();
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
async fn migrate(
    (source, src): (&Service, &dyn Store),
    (target, dst): (&Service, &dyn Store),
) -> anyhow::Result<ExitCode> {
    // 1. The source must be intact. The target refuses events that do not chain, but a
    //    chain rewritten with recomputed hashes does chain: only the source's checkpoints
    //    catch it, and the checkpoint signed at the end would launder it.
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

    // 2. The target must hold no events (restoring continues the target's chains, so a
    //    second run, or someone else's events, would not fit), and no other organization
    //    under a source organization's name or id (the migrated ones keep both).
    let existing = dst.list_orgs().await?;
    let existing_ids: HashMap<Uuid, &Org> = existing.iter().map(|org| (org.id, org)).collect();
    let mut occupied = Vec::new();
    for org in &existing {
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
    let mut clashes = Vec::new();
    for org in &orgs {
        let same_name = existing.iter().find(|found| found.name == org.name);
        match (existing_ids.get(&org.id), same_name) {
            (Some(found), _) if found.name != org.name => clashes.push(format!(
                "organization {} is named {:?} in the target, {:?} in the source",
                org.id, found.name, org.name
            )),
            (None, Some(found)) => clashes.push(format!(
                "{} has id {} in the target, {} in the source",
                org.name, found.id, org.id
            )),
            _ => {}
        }
    }
    if !clashes.is_empty() {
        println!(
            "the target already has other organizations under the source's names or ids: {}; \
             migrate into a database without them; nothing was migrated",
            clashes.join("; ")
        );
        return Ok(ExitCode::from(1));
    }

    let mut copied = Copied::default();

    // 3. Organizations, with their ids. One left by an earlier, interrupted run (it has no
    //    events, checked above) is taken over rather than refused, so that the migration can
    //    be re-run.
    for org in &orgs {
        match existing_ids.get(&org.id) {
            Some(found) => {
                if found.display_name != org.display_name {
                    eprintln!(
                        "note: {} already exists in the target with display name {:?} (the source has {:?}); kept",
                        org.name, found.display_name, org.display_name
                    );
                }
                if found.audit_logs_enabled != org.audit_logs_enabled {
                    dst.set_org_enabled(org.id, org.audit_logs_enabled).await?;
                }
            }
            None => {
                dst.restore_org(org.clone())
                    .await
                    .with_context(|| format!("{}: cannot create it in the target", org.name))?;
            }
        }
        copied.orgs += 1;
    }
    let org_ids: HashSet<Uuid> = orgs.iter().map(|org| org.id).collect();

    // 4. Users and their roles; the trait lists users only per organization (and per
    //    credential, below), so a user with neither has nothing to carry over.
    let mut users_done = HashSet::new();
    for org in &orgs {
        for (user, role) in src.members(org.id).await? {
            copy_user(dst, &user, &mut users_done, &mut copied).await?;
            dst.set_role(org.id, user.id, Some(role)).await?;
            copied.memberships += 1;
        }
    }

    // 5. Service accounts.
    for org in &orgs {
        for account in src.service_accounts(org.id).await? {
            match dst.service_account_by_client_id(&account.client_id).await? {
                Some(found) if found.id == account.id => {}
                Some(_) => bail!(
                    "the target already has another service account with client id {}",
                    account.client_id
                ),
                None => {
                    dst.create_service_account(account).await?;
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
            if let Some(id) = credential.org_id.filter(|id| !org_ids.contains(id)) {
                bail!(
                    "credential {} names organization {id}, which the source does not have",
                    credential.id
                );
            }
            match dst.credential_by_hash(credential.token_hash).await? {
                Some(found) if found.id == credential.id => {}
                Some(_) => bail!(
                    "the target already has another credential with the secret of {}",
                    credential.id
                ),
                None => {
                    dst.create_credential(credential).await?;
                }
            }
            copied.credentials += 1;
        }
    }

    // 7. Events, organization by organization, in seq order, up to the verified head, exactly
    //    as stored (what arrives in the source meanwhile was not verified and is not copied;
    //    it is reported below). The target refuses a batch that does not continue its chain,
    //    so someone writing to the target at the same time stops the migration rather than
    //    interleaving with it.
    let total: u64 = heads.values().sum();
    let bar = progress::bar(total, "copying events");
    for org in &orgs {
        let head = heads[&org.id];
        let mut after = 0u64;
        while after < head {
            let limit = (head - after).min(u64::from(COPY_BATCH)) as u32;
            let events = src.events_by_seq(org.id, after, limit).await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                bail!(
                    "{}: the source's events end at seq {after}, before the verified head {head}",
                    org.name
                );
            };
            let n = events.len() as u64;
            dst.restore_events(org.id, events).await.map_err(|e| {
                anyhow::anyhow!(
                    "{}: restoring the events after seq {after} failed ({e}); {} events were copied in all",
                    org.name,
                    copied.events
                )
            })?;
            after = last;
            copied.events += n;
            bar.inc(n);
        }
    }
    bar.finish_and_clear();

    // 8. Copy each organization's newest signed checkpoint, verify the target's chains
    //    against it (with the source's key), then sign the migrated head.
    let mut failures = 0usize;
    for org in &orgs {
        let head = heads[&org.id];
        // One signed after the verification covers events that were not copied: left behind
        // (the source moved on, reported below).
        let kept = match src.latest_checkpoint(org.id).await? {
            Some(checkpoint) if checkpoint.checkpoint.seq <= head => {
                dst.save_checkpoint(&checkpoint).await?;
                Some(checkpoint)
            }
            _ => None,
        };
        let bar = progress::counter(&format!("verifying {} in the target", org.name));
        let result = target.verify_org(org.id, &|n| bar.set_position(n)).await;
        bar.finish_and_clear();
        match result {
            Ok(verified) if verified.events == head => {
                // The copied checkpoint itself when it is at the head already.
                let migrated = super::find_org(
                    target,
                    &Operator::at_the_command_line(),
                    &org.id.to_string(),
                )
                .await?;
                let signed = target.checkpoint(&migrated).await?;
                let checkpoints = match &kept {
                    Some(copied) if *copied == signed => format!(
                        "the source's signed checkpoint at seq {} matches",
                        copied.checkpoint.seq
                    ),
                    Some(copied) => format!(
                        "the source's signed checkpoint at seq {} matches, new signed checkpoint at seq {}",
                        copied.checkpoint.seq, signed.checkpoint.seq
                    ),
                    None => format!(
                        "the source had no signed checkpoint, new signed checkpoint at seq {}",
                        signed.checkpoint.seq
                    ),
                };
                println!(
                    "ok        {}: {} events, seq 1..={}, ids and hashes kept, {checkpoints}",
                    org.name, verified.events, verified.events
                );
            }
            Ok(verified) => {
                failures += 1;
                println!(
                    "FAILED    {}: the target holds {} events, the source {head}",
                    org.name, verified.events
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
        "note: organization ids, event ids, seqs, stored-at times and chain hashes are kept, and \
         each organization's newest signed checkpoint was copied: exports and checkpoints of the \
         embedded store verify against the new store with the same public key"
    );
    println!("note: idempotency keys and export jobs are not migrated");
    let moved = moved_since(src, &orgs, &heads).await?;
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
    orgs: &[Org],
    heads: &HashMap<Uuid, u64>,
) -> Result<Vec<String>, StoreError> {
    let mut moved = BTreeMap::new();
    for org in orgs {
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
