//! Mutation fuzzing of the core's untrusted-input parsers on stable Rust, run by `cargo test`
//! (`docs/fuzzing.md`). Each module is one target with its own corpus in `corpus/<target>/`;
//! `driver` runs a target for `AUDITLOG_FUZZ_SECONDS` (2 by default) from the seed
//! `AUDITLOG_FUZZ_SEED` (random by default, always printed).
//!
//! Every target asserts properties, not only the absence of panics:
//! - `ingest`: a client's JSON event, through parsing and validation.
//! - `query`: `q` entries, `sort` and timestamps.
//! - `cursor`: keyset cursors, arbitrary and damaged.
//! - `import`: a JSON Lines import file, line by line.
//! - `export`: the offline verifier of an export file.

mod driver;
mod events;
mod mutate;

mod cursor;
mod export;
mod import;
mod ingest;
mod query;
