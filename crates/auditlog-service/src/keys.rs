//! The server's Ed25519 signing key: created in the data directory on first use, readable
//! only by its owner (mode 0600), never logged, and never silently replaced: a store that
//! already holds history refuses to start without the key that signed it.

use std::io::Write;
use std::path::{Path, PathBuf};

use auditlog_store::Store;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "signing-key.ed25519";

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key file exists (and creating one was not asked for).
    #[error("no signing key at {0}: start `auditlog serve` or import events once to create it")]
    Missing(PathBuf),
    /// The file exists but does not hold a key.
    #[error("{0} is not an auditlog signing key (expected 64 hex digits)")]
    Malformed(PathBuf),
    /// No key file exists, but the store already holds history: a new key would leave every
    /// checkpoint signed so far unverifiable with the key the server then publishes.
    #[error(
        "no signing key at {path}, but the store already holds {events} events of {orgs} \
         organization(s): restore the key file from a backup (or the data directory it was \
         created in) instead of letting a new key be made; to start a new key on purpose \
         (old checkpoints then verify only with the old public key), pass --new-signing-key"
    )]
    MissingForHistory {
        /// Where the key was looked for.
        path: PathBuf,
        /// How many organizations hold events.
        orgs: usize,
        /// How many events they hold.
        events: u64,
    },
    /// The key file holds a key, but not the one that signed the store's checkpoints.
    #[error(
        "the signing key at {path} (key id {found}) did not sign this store's checkpoints \
         (organization {org}: key id {expected}); restore the matching key file"
    )]
    Mismatch {
        /// The key file.
        path: PathBuf,
        /// The organization whose latest checkpoint was checked.
        org: String,
        /// The key id the checkpoint names.
        expected: String,
        /// The key id of the file's key.
        found: String,
    },
    /// Reading the store to check the key failed.
    #[error("cannot check the signing key against the store: {0}")]
    Store(#[from] auditlog_store::StoreError),
    /// The file system refused.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The key file's path in `dir`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// What to do when the key file is absent but the store holds history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMissing {
    /// Refuse to start ([`KeyError::MissingForHistory`]): the default.
    Refuse,
    /// Make a new key anyway: the operator said so (`--new-signing-key`).
    CreateNew,
}

/// Loads the key that signs `store`'s checkpoints from `dir`, as `auditlog serve` and every
/// command that signs do at startup.
///
/// - An unreadable or malformed file is an error (never replaced).
/// - A key that did not sign the latest checkpoint of every organization is an error.
/// - An absent file is created only when the store holds no events, or when `when_missing`
///   says to.
pub async fn load_for_store(
    dir: &Path,
    store: &dyn Store,
    when_missing: WhenMissing,
) -> Result<SigningKey, KeyError> {
    match load(dir) {
        Ok(key) => {
            check_signed_history(dir, store, &key).await?;
            Ok(key)
        }
        Err(KeyError::Missing(path)) => {
            let (orgs, events) = history(store).await?;
            if events > 0 && when_missing == WhenMissing::Refuse {
                return Err(KeyError::MissingForHistory { path, orgs, events });
            }
            load_or_create(dir)
        }
        Err(other) => Err(other),
    }
}

/// How many organizations hold events, and how many events they hold.
async fn history(store: &dyn Store) -> Result<(usize, u64), KeyError> {
    let mut orgs = 0;
    let mut events = 0;
    for org in store.list_orgs().await? {
        let head = store.chain_head(org.id).await?;
        if head.seq > 0 {
            orgs += 1;
            events += head.seq;
        }
    }
    Ok((orgs, events))
}

/// Fails unless `key` signed the latest checkpoint of every organization that has one.
async fn check_signed_history(
    dir: &Path,
    store: &dyn Store,
    key: &SigningKey,
) -> Result<(), KeyError> {
    let verifying = key.verifying_key();
    for org in store.list_orgs().await? {
        let Some(checkpoint) = store.latest_checkpoint(org.id).await? else {
            continue;
        };
        if checkpoint.verify(&verifying).is_err() {
            return Err(KeyError::Mismatch {
                path: key_path(dir),
                org: org.name,
                expected: checkpoint.key_id,
                found: auditlog_core::chain::key_id(&verifying),
            });
        }
    }
    Ok(())
}

/// Loads the key from `dir`, creating it (mode 0600) when absent. Only for a store known to
/// be new; everything that opens an existing store uses [`load_for_store`].
pub fn load_or_create(dir: &Path) -> Result<SigningKey, KeyError> {
    let path = key_path(dir);
    match load(dir) {
        Err(KeyError::Missing(_)) => {}
        other => return other,
    }
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
                .map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(dir),
        Err(e) => Err(io(e)),
    }
}

/// Loads the key from `dir`.
pub fn load(dir: &Path) -> Result<SigningKey, KeyError> {
    let path = key_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyError::Missing(path)),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| KeyError::Malformed(path.clone()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key as 64 hex digits, the form `auditlog public-key` prints and
/// `auditlog verify --public-key` reads.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Parses the hex form of a public key.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_owner_only_permissions_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path()), Err(KeyError::Missing(_))));
        let created = load_or_create(dir.path()).unwrap();
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(created.to_bytes(), again.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let hex = public_key_hex(&created.verifying_key());
        assert_eq!(parse_public_key(&hex), Some(created.verifying_key()));
        std::fs::write(key_path(dir.path()), "garbage").unwrap();
        assert!(matches!(load(dir.path()), Err(KeyError::Malformed(_))));
    }
}
