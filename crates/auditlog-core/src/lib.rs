//! The pure core of auditlog: what an event is, which actions exist, how a query is expressed,
//! and how a history is made tamper-evident. Nothing in this crate does I/O.
//!
//! Map of the crate:
//! - [`timestamp`]: UTC instants with millisecond precision.
//! - [`event`]: the event as sent (`NewEvent`), validated (`EventBody`) and stored (`Event`).
//! - [`catalog`]: the actions a deployment accepts, with display names and groups.
//! - [`validate`]: the limits every event must respect, with errors that name the field.
//! - [`message`]: the human sentence for an event.
//! - [`query`]: filters, sort order, keyset cursors and the reference API's `q` syntax.
//! - [`redact`]: the deployment's redaction rules, which replace secret values in an event
//!   before it is stored, and record where.
//! - [`text`]: the words free-text search matches.
//! - [`canonical`]: RFC 8785 canonical JSON, the bytes that the chain hashes.
//! - [`chain`]: leaf and chain hashes, signed checkpoints and the verifier.
//! - [`entry`]: version-2 entries: personal fields committed with salts, their stored form,
//!   and erasure that keeps every leaf.
//! - [`export`]: the export file format (JSON Lines or CSV, ending with a checkpoint) and its
//!   offline verifier, over a caller's reader or writer.
//! - [`wire`]: the JSON shape of an event as the API, exports and the CLI print it.
//! - [`merkle`]: the RFC 9162 Merkle tree of a transparency log: leaf and node hashes, roots,
//!   inclusion and consistency proofs over a store's hashes (`HashReader`), their verifiers,
//!   and the frontier an appender keeps.
//! - [`tiles`]: C2SP tlog-tiles: tile and entry-bundle paths (parsed strictly: they come from
//!   URLs), the tiles of a tree, a tile's bytes, bundle encoding, a reader over fetched tiles.
//! - [`note`]: C2SP signed notes with Ed25519 keys (key IDs, verifier keys, signing, opening
//!   untrusted notes) and the tlog checkpoint they carry.
//! - [`tree`]: an organization's tree as a store keeps it: which tiles an append reads, the
//!   tiles it writes, and readers over stored tiles for roots and proofs.

pub mod canonical;
pub mod catalog;
pub mod chain;
pub mod entry;
pub mod event;
pub mod export;
pub mod merkle;
pub mod message;
pub mod note;
pub mod query;
pub mod redact;
pub mod strict_json;
pub mod text;
pub mod tiles;
pub mod timestamp;
pub mod tree;
pub mod validate;
pub mod wire;

pub use catalog::{Action, Catalog, CatalogError, Preset};
pub use event::{
    ActorType, Committed, Entry, Event, EventBody, Extensions, FieldChange, Impersonator, NewEvent,
    Outcome, Salts,
};
pub use timestamp::Timestamp;
