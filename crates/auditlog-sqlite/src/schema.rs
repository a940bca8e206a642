//! The embedded schema and its migrations, applied at open; `PRAGMA user_version` records the
//! version and a file from a newer auditlog is refused rather than misread.
//!
//! Layout (see ARCHITECTURE.md, "SQLite layout", for why):
//! - `events` is keyed by `pos = org_key << 40 | seq`, so one organization's chain is one
//!   contiguous range of the table: `verify` and `events_by_seq` read it in order, and `seq`
//!   is unique by construction.
//! - Every secondary index leads with `day` (the UTC day of `occurred_at`). Events arrive
//!   roughly in time order, so each commit's index entries land in the small, hot region of
//!   the current day instead of in one page per organization, actor and action: this is what
//!   keeps write amplification (WAL bytes per event) low. Readers walk days newest-first.
//! - Strings that repeat (action keys, verbs, types, service names, user agents) are stored
//!   once in `strings`; actors and targets once per organization in `principals`.
//! - `org_days` lists the days on which an organization has events (one row per day, written
//!   once), so readers skip empty days.
//! - `day_actions` and `day_actors` are per-day rollups maintained in the same transaction as
//!   the events, so counts and facets over whole days never touch the events.

use rusqlite::Connection;

use auditlog_store::StoreError;

/// The newest schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

const V1: &str = r#"
CREATE TABLE orgs (
    org_key            INTEGER PRIMARY KEY,
    id                 BLOB NOT NULL UNIQUE,
    name               TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    audit_logs_enabled INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    head_seq           INTEGER NOT NULL DEFAULT 0,
    head_hash          BLOB NOT NULL
);

CREATE TABLE strings (
    string_key INTEGER PRIMARY KEY,
    value      TEXT NOT NULL UNIQUE
);

CREATE TABLE principals (
    principal_key INTEGER PRIMARY KEY,
    org_key       INTEGER NOT NULL,
    kind          INTEGER NOT NULL,   -- strings key of actor_type / target_type, 0 when none
    ext_id        TEXT,
    email         TEXT,
    name          TEXT
);
CREATE INDEX principals_by_id ON principals(org_key, ext_id);
CREATE INDEX principals_by_email ON principals(org_key, email);
-- The writer finds a principal by all its fields; readers find principals by kind.
CREATE INDEX principals_lookup ON principals(org_key, kind, ext_id, email, name);

CREATE TABLE events (
    pos         INTEGER PRIMARY KEY,  -- org_key << 40 | seq
    org_key     INTEGER NOT NULL,
    id          BLOB NOT NULL,
    day         INTEGER NOT NULL,     -- occurred_at / 86400000
    occurred_at INTEGER NOT NULL,     -- ms since the epoch, UTC
    created_at  INTEGER NOT NULL,
    action      INTEGER NOT NULL,     -- strings
    verb        INTEGER,              -- strings
    actor       INTEGER NOT NULL,     -- principals
    target      INTEGER,              -- principals
    service     INTEGER,              -- strings
    ip          BLOB,                 -- 4 or 16 bytes
    user_agent  INTEGER,              -- strings
    request_id  TEXT,
    meta        TEXT,                 -- compact JSON object; NULL when empty
    hash        BLOB NOT NULL
);
CREATE UNIQUE INDEX events_by_id ON events(id);
CREATE INDEX events_by_time ON events(day, org_key, occurred_at);
CREATE INDEX events_by_action ON events(day, org_key, action, occurred_at);
CREATE INDEX events_by_actor ON events(day, org_key, actor, occurred_at);
CREATE INDEX events_by_target ON events(day, org_key, target, occurred_at);

CREATE TABLE day_actions (
    day     INTEGER NOT NULL,
    org_key INTEGER NOT NULL,
    action  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (day, org_key, action)
) WITHOUT ROWID;

CREATE TABLE day_actors (
    day     INTEGER NOT NULL,
    org_key INTEGER NOT NULL,
    actor   INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (day, org_key, actor)
) WITHOUT ROWID;

CREATE TABLE org_days (
    org_key INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    PRIMARY KEY (org_key, day)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    org_key   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    signed_at INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (org_key, seq, signed_at)
) WITHOUT ROWID;

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,   -- lowercase
    display_name  TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id  BLOB NOT NULL,
    user_id BLOB NOT NULL,
    role    TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships(user_id);

CREATE TABLE service_accounts (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL,
    name        TEXT NOT NULL,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX service_accounts_by_org ON service_accounts(org_id);

CREATE TABLE credentials (
    id                 BLOB PRIMARY KEY,
    kind               TEXT NOT NULL,
    token_hash         BLOB NOT NULL UNIQUE,
    org_id             BLOB,
    user_id            BLOB,
    service_account_id BLOB,
    name               TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    revoked_at         INTEGER
);
CREATE INDEX credentials_by_user ON credentials(kind, user_id);
CREATE INDEX credentials_by_org ON credentials(kind, org_id);
CREATE INDEX credentials_by_account ON credentials(service_account_id);
CREATE INDEX credentials_by_expiry ON credentials(expires_at);

CREATE TABLE idempotency (
    scope        TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    ids          TEXT NOT NULL,      -- JSON array of the event ids stored
    created_at   INTEGER NOT NULL
);

CREATE TABLE export_jobs (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL,
    status        TEXT NOT NULL,
    request       TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    completed_at  INTEGER,
    progress      INTEGER NOT NULL,
    total_records INTEGER,
    error_message TEXT,
    file_name     TEXT,
    expires_at    INTEGER,
    claimed_by    TEXT,
    heartbeat_at  INTEGER
);
CREATE INDEX export_jobs_by_status ON export_jobs(status, created_at);

CREATE VIRTUAL TABLE events_fts USING fts5(
    words, content='', detail='none', tokenize='unicode61 remove_diacritics 0'
);
"#;

/// Applies pending migrations; refuses a database from a newer version.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(crate::backend)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 1 {
        let tx = conn.transaction().map_err(crate::backend)?;
        tx.execute_batch(V1).map_err(crate::backend)?;
        tx.execute_batch("PRAGMA user_version = 1")
            .map_err(crate::backend)?;
        tx.commit().map_err(crate::backend)?;
    }
    Ok(())
}
