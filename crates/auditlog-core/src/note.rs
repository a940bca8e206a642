//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 signatures, and the
//! transparency-log checkpoint carried in one (<https://c2sp.org/tlog-checkpoint>).
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
//! `— <key name> <base64(key id ‖ signature)>`. Keys are named (for a log, by its origin) and
//! identified by a 4-byte key ID derived from the name and the public key; verifiers are
//! shared as `<name>+<key id hex>+<base64(0x01 ‖ public key)>`, the form Go's `sumdb/note`
//! calls a verifier key. Notes arrive from elsewhere, so [`open`] bounds their size and number
//! of signatures before doing any work.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature as Ed25519Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The largest note [`open`] reads (and [`sign`] writes), in bytes: room for a checkpoint with
/// extension lines and many more signatures than it will carry, even post-quantum ones.
pub const MAX_NOTE_SIZE: usize = 128 * 1024;

/// The most signature lines [`open`] reads. The spec asks verifiers to accept at least 16; Go's
/// `sumdb/note` stops at 100, and so does this.
pub const MAX_SIGNATURES: usize = 100;

/// The signature-type byte of Ed25519 in key IDs and verifier keys.
const ALG_ED25519: u8 = 0x01;

/// Starts every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A key's 4-byte ID, shown as 8 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The key ID of an Ed25519 key: the first 4 bytes of
/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`. Binding the name in means one key used under
/// two names has two IDs, so a signature is never credited to the wrong name.
pub fn key_id(name: &str, key: &VerifyingKey) -> KeyId {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALG_ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    KeyId([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether `name` can name a key: non-empty, with no Unicode space and no `+` (which separates
/// the fields of a verifier key).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// Why a key or verifier key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The name is empty or holds a space or `+`.
    #[error("a key name must be non-empty, without spaces or '+'")]
    BadName,
    /// The verifier key is not `<name>+<8 hex digits>+<base64>`.
    #[error("malformed verifier key")]
    Malformed,
    /// The verifier key is for a signature type other than Ed25519.
    #[error("the verifier key is not an Ed25519 key")]
    UnknownAlgorithm,
    /// The 32 bytes are not an Ed25519 public key.
    #[error("the verifier key's public key is not a valid Ed25519 key")]
    BadPublicKey,
    /// The key ID written in the verifier key is not the one its name and key give.
    #[error("the verifier key's key ID does not match its name and key")]
    WrongKeyId,
}

/// A named Ed25519 public key that checks note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: KeyId,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// The verifier for `key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<NoteVerifier, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::BadName);
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// Parses a verifier key, `<name>+<key id hex>+<base64(0x01 ‖ public key)>`, checking
    /// that the key ID is the one the name and key give.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, KeyError> {
        let mut fields = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key64)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(KeyError::Malformed);
        };
        if !is_valid_key_name(name) {
            return Err(KeyError::BadName);
        }
        let mut written_id = [0u8; 4];
        if id_hex.len() != 8 || hex::decode_to_slice(id_hex, &mut written_id).is_err() {
            return Err(KeyError::Malformed);
        }
        let key = BASE64.decode(key64).map_err(|_| KeyError::Malformed)?;
        let (&alg, public) = key.split_first().ok_or(KeyError::Malformed)?;
        if alg != ALG_ED25519 {
            return Err(KeyError::UnknownAlgorithm);
        }
        let public: [u8; 32] = public.try_into().map_err(|_| KeyError::Malformed)?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| KeyError::BadPublicKey)?;
        let verifier = NoteVerifier::new(name, key)?;
        if verifier.key_id.0 != written_id {
            return Err(KeyError::WrongKeyId);
        }
        Ok(verifier)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The verifier key string, `<name>+<key id hex>+<base64(0x01 ‖ public key)>`.
    pub fn to_vkey(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, self.key_id, BASE64.encode(key))
    }
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

/// A named Ed25519 private key that signs notes.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: KeyId,
    key: SigningKey,
}

// The private key never reaches a log line.
impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// The signer for `key` under `name`.
    pub fn new(name: &str, key: SigningKey) -> Result<NoteSigner, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::BadName);
        }
        Ok(NoteSigner {
            name: name.to_owned(),
            key_id: key_id(name, &key.verifying_key()),
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The verifier for this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name the line gives.
    pub name: String,
    /// The key ID the line gives.
    pub key_id: KeyId,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

/// A note whose signatures by known keys all verified, at least one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The known keys that signed it, each once, in the order of their first signature.
    pub verified_by: Vec<(String, KeyId)>,
    /// Signatures by keys not given to [`open`], each once, in order: not checked.
    pub unverified: Vec<NoteSignature>,
}

/// Why a note could not be signed or was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Longer than [`MAX_NOTE_SIZE`].
    #[error("the note is larger than {MAX_NOTE_SIZE} bytes")]
    TooLarge,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// Not a note: the reason says what is wrong with it.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// The text cannot be signed: the reason says why.
    #[error("the text cannot be signed: {0}")]
    Unsignable(&'static str),
    /// A signature by a known key does not verify, which rejects the whole note.
    #[error("the signature by {name} (key {key_id}) does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key's ID.
        key_id: KeyId,
    },
    /// No known key signed the note.
    #[error("the note has no signature by a known key")]
    NoKnownSignature,
}

/// Signs `text` with each signer, in order: the note is the text, a blank line and one
/// signature line per signer. The text must be non-empty, end in a newline and hold no control
/// character other than newline. Ed25519 is deterministic, so the same text and keys always
/// give the same note.
pub fn sign(text: &str, signers: &[&NoteSigner]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Unsignable("the text must end with a newline"));
    }
    if has_control_character(text) {
        return Err(NoteError::Unsignable(
            "the text holds a control character other than newline",
        ));
    }
    if signers.is_empty() {
        return Err(NoteError::Unsignable("a note needs at least one signature"));
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 128);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        let signature = signer.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + 64);
        raw.extend_from_slice(&signer.key_id.0);
        raw.extend_from_slice(&signature.to_bytes());
        note.push_str(SIGNATURE_PREFIX);
        note.push_str(&signer.name);
        note.push(' ');
        note.push_str(&BASE64.encode(raw));
        note.push('\n');
    }
    if note.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge);
    }
    Ok(note)
}

/// Reads a note and verifies its signatures against `known`.
///
/// Following the spec: a signature whose key name and ID are not both those of a known key is
/// kept unverified; every signature by a known key must verify, or the whole note is rejected
/// (Go's `note.Open` checks only the first of repeated ones — this checks them all); at least
/// one must. Any malformed signature line rejects the note.
pub fn open(note: &[u8], known: &[NoteVerifier]) -> Result<OpenedNote, NoteError> {
    if note.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge);
    }
    let note = std::str::from_utf8(note).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    if has_control_character(note) {
        return Err(NoteError::Malformed(
            "a control character other than newline",
        ));
    }
    // The text may hold blank lines itself; signature lines never are blank, so the last blank
    // line is the separator.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the signatures do not end with a newline",
        ));
    }

    let mut opened = OpenedNote {
        text: text.to_owned(),
        verified_by: Vec::new(),
        unverified: Vec::new(),
    };
    for (n, line) in signatures[..signatures.len() - 1].split('\n').enumerate() {
        if n == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let signature = parse_signature_line(line)?;
        let verifier = known
            .iter()
            .find(|v| v.name == signature.name && v.key_id == signature.key_id);
        let Some(verifier) = verifier else {
            if !opened.unverified.contains(&signature) {
                opened.unverified.push(signature);
            }
            continue;
        };
        // verify_strict refuses the malleable and small-order edge cases plain verification
        // lets through; an honest signer never produces them.
        let valid = <[u8; 64]>::try_from(signature.signature.as_slice())
            .map(|bytes| Ed25519Signature::from_bytes(&bytes))
            .is_ok_and(|sig| verifier.key.verify_strict(text.as_bytes(), &sig).is_ok());
        if !valid {
            return Err(NoteError::BadSignature {
                name: signature.name,
                key_id: signature.key_id,
            });
        }
        let signer = (signature.name, signature.key_id);
        if !opened.verified_by.contains(&signer) {
            opened.verified_by.push(signer);
        }
    }
    if opened.verified_by.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(opened)
}

/// A transparency log's signed statement of its tree: origin, size and root hash, and
/// optional extension lines (c2sp.org/tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

/// Why a checkpoint could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a checkpoint: the reason says why.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The note around it was rejected.
    #[error(transparent)]
    Note(#[from] NoteError),
}

impl Checkpoint {
    /// The checkpoint of a tree of `size` leaves with root `root`, by the log `origin` (for an
    /// organization's log, `<deployment>/auditlog/<org uuid>`). The origin and each extension
    /// line must be non-empty, one line, with no control character.
    pub fn new(
        origin: &str,
        size: u64,
        root: Hash,
        extensions: &[&str],
    ) -> Result<Checkpoint, CheckpointError> {
        if !is_line(origin) {
            return Err(CheckpointError::Malformed(
                "the origin must be one non-empty line",
            ));
        }
        if !extensions.iter().all(|line| is_line(line)) {
            return Err(CheckpointError::Malformed(
                "each extension must be one non-empty line",
            ));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// Reads a checkpoint's text strictly: at least three lines, each ending in a newline and
    /// none empty; the size in decimal with no leading zero; the root in canonical base64 of
    /// exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("does not end with a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed("fewer than three lines"));
        };
        let size = parse_size(size).ok_or(CheckpointError::Malformed("bad tree size"))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::from_slice(&bytes))
            .filter(|hash| BASE64.encode(hash.0) == root)
            .ok_or(CheckpointError::Malformed("bad root hash"))?;
        let extensions: Vec<&str> = lines.collect();
        Checkpoint::new(origin, size, root, &extensions)
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The extension lines, usually none.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text: origin, size, base64 root and extension lines, each ending in a newline.
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.0)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The checkpoint as a signed note.
    pub fn sign(&self, signers: &[&NoteSigner]) -> Result<String, CheckpointError> {
        Ok(sign(&self.text(), signers)?)
    }

    /// Opens a signed checkpoint (see [`open`]) and parses its text. The caller still checks
    /// that the origin is the log it expects.
    pub fn open(
        note: &[u8],
        known: &[NoteVerifier],
    ) -> Result<(Checkpoint, OpenedNote), CheckpointError> {
        let opened = open(note, known)?;
        Ok((Checkpoint::parse(&opened.text)?, opened))
    }
}

/// Whether `text` holds an ASCII control character other than newline (the signed-note spec
/// forbids them all, so that a note prints the same everywhere).
fn has_control_character(text: &str) -> bool {
    text.bytes().any(|b| b < 0x20 && b != b'\n')
}

/// Whether `text` can be one line of a note: non-empty, no newline or other control character.
fn is_line(text: &str) -> bool {
    !text.is_empty() && !text.bytes().any(|b| b < 0x20)
}

/// A tree size: decimal digits, no leading zero unless it is `0`, at most `u64::MAX`.
fn parse_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// `— <name> <base64(key id ‖ signature)>`.
fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::Malformed("a signature line lacks its em dash"))?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or(NoteError::Malformed("a signature line lacks its signature"))?;
    if !is_valid_key_name(name) {
        return Err(NoteError::Malformed("a signature names an invalid key"));
    }
    let raw = BASE64
        .decode(encoded)
        .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
    // A key ID and at least one byte of signature.
    if raw.len() < 5 {
        return Err(NoteError::Malformed("a signature is too short"));
    }
    let (id, signature) = raw.split_at(4);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: KeyId([id[0], id[1], id[2], id[3]]),
        signature: signature.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    #[test]
    fn a_signed_note_opens_with_its_key_and_not_without() {
        let log = signer("log.example/auditlog/org", 1);
        let witness = signer("witness.example", 2);
        let note = sign("hello\n\nworld\n", &[&log, &witness]).unwrap();
        assert!(note.starts_with("hello\n\nworld\n\n\u{2014} log.example/auditlog/org "));

        let opened = open(note.as_bytes(), &[log.verifier()]).unwrap();
        assert_eq!(opened.text, "hello\n\nworld\n");
        assert_eq!(opened.verified_by, [(log.name().to_owned(), log.key_id())]);
        assert_eq!(opened.unverified.len(), 1);
        assert_eq!(opened.unverified[0].name, "witness.example");

        assert_eq!(open(note.as_bytes(), &[]), Err(NoteError::NoKnownSignature));
        // Same name, other key: an unknown key, so ignored; nothing known is left.
        let impostor = signer("log.example/auditlog/org", 3);
        assert_eq!(
            open(note.as_bytes(), &[impostor.verifier()]),
            Err(NoteError::NoKnownSignature)
        );
    }

    #[test]
    fn a_changed_note_is_rejected() {
        let log = signer("log", 1);
        let note = sign("tree 1\n", &[&log]).unwrap();
        let known = [log.verifier()];
        let changed = note.replace("tree 1", "tree 2");
        assert!(matches!(
            open(changed.as_bytes(), &known),
            Err(NoteError::BadSignature { .. })
        ));
        for i in 0..note.len() {
            let mut bytes = note.clone().into_bytes();
            bytes[i] ^= 0x01;
            assert!(open(&bytes, &known).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let log = signer("log", 1);
        let known = [log.verifier()];
        let good = sign("text\n", &[&log]).unwrap();
        let line = good.strip_prefix("text\n\n").unwrap();
        for bad in [
            String::new(),
            "text\n".to_owned(),
            "text\n\n".to_owned(),
            good.trim_end().to_owned(),
            format!("text\n\n{line}\n"),
            format!("text\n\n{line}garbage\n"),
            format!("text\n\n{}", line.replace('\u{2014}', "-")),
            format!("text\n\n{}", line.replace("log ", "log  ")),
            format!("text\n\n{}", line.replace("log ", "lo+g ")),
            format!("text\n\n{}", line.replace("log ", "")),
            format!("text\n\n{}", line.replace('=', "")),
            "text\n\n\u{2014} log AAAA\n".to_owned(),
            format!("te\rxt\n\n{line}"),
            format!("text\t\n\n{line}"),
        ] {
            assert!(
                open(bad.as_bytes(), &known).is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(matches!(
            open(b"\xff\n\n", &known),
            Err(NoteError::Malformed(_))
        ));
        let huge = format!("{}\n\n{line}", "a".repeat(MAX_NOTE_SIZE));
        assert_eq!(open(huge.as_bytes(), &known), Err(NoteError::TooLarge));
        let many = format!("text\n\n{}", line.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            open(many.as_bytes(), &known),
            Err(NoteError::TooManySignatures)
        );
        let enough = format!("text\n\n{}", line.repeat(MAX_SIGNATURES));
        assert!(open(enough.as_bytes(), &known).is_ok());
    }

    #[test]
    fn only_signable_texts_are_signed() {
        let log = signer("log", 1);
        assert!(sign("no newline", &[&log]).is_err());
        assert!(sign("tab\there\n", &[&log]).is_err());
        assert!(sign("text\n", &[]).is_err());
        assert!(NoteSigner::new("has space", SigningKey::from_bytes(&[1; 32])).is_err());
        assert!(NoteSigner::new("", SigningKey::from_bytes(&[1; 32])).is_err());
        assert!(NoteSigner::new("a+b", SigningKey::from_bytes(&[1; 32])).is_err());
        assert!(NoteSigner::new("a\u{a0}b", SigningKey::from_bytes(&[1; 32])).is_err());
        // A text ending in blank lines still opens to itself.
        let note = sign("a\n\n\n", &[&log]).unwrap();
        assert_eq!(
            open(note.as_bytes(), &[log.verifier()]).unwrap().text,
            "a\n\n\n"
        );
        assert!(!format!("{log:?}").contains(&hex::encode([1u8; 32])));
    }

    #[test]
    fn verifier_keys_round_trip_and_refuse_anything_else() {
        let verifier = signer("example.com/log", 7).verifier();
        let vkey = verifier.to_vkey();
        assert_eq!(NoteVerifier::parse(&vkey), Ok(verifier.clone()));
        // The base64 key may itself hold '+': split on the first two only.
        let fields: Vec<&str> = vkey.splitn(3, '+').collect();
        let name_and_id = format!("{}+{}", fields[0], fields[1]);
        let key = fields[2];
        let other_key = signer("x", 8).verifier().to_vkey();
        let other_key = other_key.splitn(3, '+').nth(2).unwrap();
        for (bad, why) in [
            (String::new(), KeyError::Malformed),
            ("example.com/log".to_owned(), KeyError::Malformed),
            (format!("{name_and_id}+"), KeyError::Malformed),
            (format!("{name_and_id}+{other_key}"), KeyError::WrongKeyId),
            (vkey.replacen("example", "exampel", 1), KeyError::WrongKeyId),
            (
                format!("+{}", vkey.split_once('+').unwrap().1),
                KeyError::BadName,
            ),
            (vkey.replacen('+', "+0", 1), KeyError::Malformed),
            (
                format!("{name_and_id}+{}", &key[..key.len() - 4]),
                KeyError::Malformed,
            ),
            (format!("{name_and_id}+{key}="), KeyError::Malformed),
            (format!("{name_and_id}+{key}+x"), KeyError::Malformed),
            (
                format!(
                    "{name_and_id}+{}",
                    BASE64.encode([&[2u8][..], &[0; 32]].concat())
                ),
                KeyError::UnknownAlgorithm,
            ),
        ] {
            assert_eq!(NoteVerifier::parse(&bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn checkpoints_print_and_parse_strictly() {
        let root = leaf_hash(b"root");
        let checkpoint = Checkpoint::new("example.com/auditlog/org", 70000, root, &[]).unwrap();
        let text = checkpoint.text();
        assert_eq!(
            text,
            format!(
                "example.com/auditlog/org\n70000\n{}\n",
                BASE64.encode(root.0)
            )
        );
        assert_eq!(Checkpoint::parse(&text), Ok(checkpoint.clone()));
        let with_extension = Checkpoint::new("o", 0, root, &["ext one", "ext two"]).unwrap();
        assert_eq!(
            Checkpoint::parse(&with_extension.text()),
            Ok(with_extension)
        );

        let root64 = BASE64.encode(root.0);
        for bad in [
            String::new(),
            "o\n1\n".to_owned(),
            format!("o\n1\n{root64}"),
            format!("\n1\n{root64}\n"),
            format!("o\n01\n{root64}\n"),
            format!("o\n+1\n{root64}\n"),
            format!("o\n-1\n{root64}\n"),
            format!("o\n 1\n{root64}\n"),
            format!("o\n1 \n{root64}\n"),
            format!("o\n\n{root64}\n"),
            format!("o\n18446744073709551616\n{root64}\n"),
            format!("o\n1\n{}\n", root64.trim_end_matches('=')),
            format!("o\n1\n{}\n", BASE64.encode([0u8; 31])),
            format!("o\n1\n{}\n", BASE64.encode([0u8; 33])),
            format!("o\n1\n{}\n", hex::encode(root.0)),
            format!("o\n1\n{root64}\n\n"),
            format!("o\n1\n{root64}\next\n\n"),
            format!("o\n1\n{root64}\r\n"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Checkpoint::new("two\nlines", 1, root, &[]).is_err());
        assert!(Checkpoint::new("o", 1, root, &[""]).is_err());
        assert_eq!(
            Checkpoint::parse(&format!("o\n18446744073709551615\n{root64}\n"))
                .unwrap()
                .size(),
            u64::MAX
        );
        // Base64 with non-zero padding bits decodes but is not canonical.
        // The 43rd character's two low bits are padding: flip one.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut loose = root64.clone().into_bytes();
        let position = ALPHABET.iter().position(|&c| c == loose[42]).unwrap();
        loose[42] = ALPHABET[position ^ 1];
        let loose = String::from_utf8(loose).unwrap();
        assert!(Checkpoint::parse(&format!("o\n1\n{loose}\n")).is_err());
    }

    #[test]
    fn a_signed_checkpoint_opens() {
        let log = signer("example.com/auditlog/org", 9);
        let checkpoint =
            Checkpoint::new("example.com/auditlog/org", 3, leaf_hash(b"x"), &[]).unwrap();
        let note = checkpoint.sign(&[&log]).unwrap();
        let (opened, note) = Checkpoint::open(note.as_bytes(), &[log.verifier()]).unwrap();
        assert_eq!(opened, checkpoint);
        assert_eq!(note.verified_by.len(), 1);
        let not_a_checkpoint = sign("just text\n", &[&log]).unwrap();
        assert!(matches!(
            Checkpoint::open(not_a_checkpoint.as_bytes(), &[log.verifier()]),
            Err(CheckpointError::Malformed(_))
        ));
    }
}
