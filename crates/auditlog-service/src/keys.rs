//! The server's Ed25519 signing key: created in the data directory on first use, readable
//! only by its owner (mode 0600), never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

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

/// Loads the key from `dir`, creating it (mode 0600) when absent.
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
