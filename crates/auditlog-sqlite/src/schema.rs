//! The embedded schema and its migrations, applied at open; `PRAGMA user_version` records the
//! version and a file from a newer auditlog is refused rather than misread.
//!
//! Two files (docs/storage.md has the why):
//! - `auditlog.db`, the source of truth, written durably by the one writer: `orgs` with each
//!   chain head, `log` (every event in its stored form, one row each, in arrival order:
//!   `lsn` is the log sequence number), checkpoints, accounts, idempotency keys and export
//!   jobs, and each organization's Merkle tree (`tiles`, `tree_checkpoints`). Version 2
//!   replaced version 1's dictionary-encoded, indexed and searchable `events` table with
//!   `log`, copying every event over unchanged; version 3 added the trees, built from the
//!   events already stored; version 4 each event's extensions; version 5 (this build) legal holds and retention.
//! - `index.db` ([`INDEX_SCHEMA`]), everything derived from the log: dictionaries, the
//!   access paths by time, action, actor and target, per-day rollups and search postings,
//!   built by the indexer off the commit path. It can be deleted and is rebuilt from the
//!   log; its own `user_version` is [`INDEX_VERSION`].

use rusqlite::Connection;

use auditlog_store::StoreError;

/// The newest schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Version 1, kept so that files it wrote can be migrated (and every new file is made by
/// running the migrations in order).
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

/// Version 2: events live in `log`, in arrival order, holding their stored form; everything
/// else version 1 kept about them is derived state, which moves to `index.db`. The copy keeps
/// every stored field, so chains verify unchanged.
const V2: &str = r#"
CREATE TABLE log (
    lsn          INTEGER PRIMARY KEY,  -- arrival order, across organizations
    org_key      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    id           BLOB NOT NULL,
    occurred_at  INTEGER NOT NULL,     -- ms since the epoch, UTC
    created_at   INTEGER NOT NULL,
    action_key   TEXT NOT NULL,
    action_verb  TEXT,
    actor_id     TEXT,
    actor_email  TEXT,
    actor_name   TEXT,
    actor_type   TEXT NOT NULL,
    target_id    TEXT,
    target_email TEXT,
    target_name  TEXT,
    target_type  TEXT,
    service_name TEXT,
    ip           BLOB,                 -- 4 or 16 bytes
    user_agent   TEXT,
    request_id   TEXT,
    meta         TEXT,                 -- compact JSON object; NULL when empty
    hash         BLOB NOT NULL
);
CREATE UNIQUE INDEX log_by_seq ON log(org_key, seq);
CREATE UNIQUE INDEX log_by_id ON log(id);

INSERT INTO log (org_key, seq, id, occurred_at, created_at, action_key, action_verb,
                 actor_id, actor_email, actor_name, actor_type, target_id, target_email,
                 target_name, target_type, service_name, ip, user_agent, request_id, meta, hash)
SELECT e.org_key, e.pos & 1099511627775, e.id, e.occurred_at, e.created_at, sa.value, sv.value,
       a.ext_id, a.email, a.name, ak.value, t.ext_id, t.email, t.name, tk.value,
       ss.value, e.ip, su.value, e.request_id, e.meta, e.hash
FROM events e
JOIN strings sa ON sa.string_key = e.action
LEFT JOIN strings sv ON sv.string_key = e.verb
JOIN principals a ON a.principal_key = e.actor
LEFT JOIN strings ak ON ak.string_key = a.kind
LEFT JOIN principals t ON t.principal_key = e.target
LEFT JOIN strings tk ON tk.string_key = t.kind
LEFT JOIN strings ss ON ss.string_key = e.service
LEFT JOIN strings su ON su.string_key = e.user_agent
ORDER BY e.created_at, e.pos;

DROP TABLE events;
DROP TABLE events_fts;
DROP TABLE day_actions;
DROP TABLE day_actors;
DROP TABLE org_days;
DROP TABLE principals;
DROP TABLE strings;
"#;

/// Version 3: each organization's Merkle tree (docs/log-format.md), and the salts of
/// version-2 entries beside each event. `tiles` holds the tiles (C2SP tlog-tiles: up to 256
/// hashes of one tree level, 32 bytes each) but each organization's partial level-0 one,
/// which is its events' `leaf`; the writer grows them in the transaction that stores the
/// events; `tree_checkpoints` the signed notes of the
/// tree's sizes. Migrating builds the tiles of the events already stored.
const V3: &str = r#"
-- A version-2 entry's salts (auditlog_core::entry::encode_salts); NULL for version 1.
ALTER TABLE log ADD COLUMN salts BLOB;
-- The event's leaf hash in its organization's Merkle tree: the partial level-0 tile of an
-- organization is read from here (the tree module says why). Set by the migration for the
-- events of each partial tile, and by every append.
ALTER TABLE log ADD COLUMN leaf BLOB;

CREATE TABLE tiles (
    org_key INTEGER NOT NULL,
    level   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hashes  BLOB NOT NULL,
    PRIMARY KEY (org_key, level, idx)
);

CREATE TABLE tree_checkpoints (
    org_key INTEGER NOT NULL,
    size    INTEGER NOT NULL,
    note    TEXT NOT NULL,
    PRIMARY KEY (org_key, size)
) WITHOUT ROWID;
"#;

/// Version 4: an event's extensions (impersonator, changes, outcome and reason, the backfill
/// flag: `auditlog_core::Extensions`) as one compact JSON object; NULL for an event without
/// any, which every event stored before is.
const V4: &str = r#"
ALTER TABLE log ADD COLUMN extensions TEXT;
"#;

/// Version 5: legal holds, and each organization's retention and how far its history was
/// purged.
const V5: &str = r#"
CREATE TABLE org_retention (
    org_key        INTEGER PRIMARY KEY,
    days           INTEGER,           -- NULL follows the deployment's default
    purged_through INTEGER NOT NULL DEFAULT 0,  -- events 1..=this are purged
    purged_hash    BLOB,              -- the chain hash of event purged_through
    purged_before  INTEGER            -- the last purge's cutoff, ms
);
CREATE TABLE legal_holds (
    id        BLOB PRIMARY KEY,
    org_id    BLOB NOT NULL,
    subject   TEXT,                  -- an actor id or email; NULL holds the whole organization
    reason    TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at INTEGER NOT NULL,
    lifted_at INTEGER,
    lifted_by TEXT
);
CREATE INDEX legal_holds_by_org ON legal_holds(org_id, placed_at);
"#;

/// The schema of `index.db`.
pub const INDEX_VERSION: i64 = 2;

/// Index version 2: the impersonator (a principal) and the outcome (a string, NULL for
/// `success`) of each event, with access paths that hold only the events that have them
/// (few: most events are successes without an impersonator). Events indexed before have
/// neither, so the columns' NULL is already right for them.
const INDEX_V2: &str = r#"
ALTER TABLE event_index ADD COLUMN impersonator INTEGER;
ALTER TABLE event_index ADD COLUMN outcome INTEGER;
CREATE INDEX events_by_impersonator ON event_index(day, org_key, impersonator, occurred_at)
    WHERE impersonator IS NOT NULL;
CREATE INDEX events_by_outcome ON event_index(day, org_key, outcome, occurred_at)
    WHERE outcome IS NOT NULL;
PRAGMA user_version = 2;
"#;

/// Derived state: `event_index` holds each indexed event's keys (`pos = org_key << 40 | seq`,
/// its `lsn` in the log, and dictionary keys) with the day-leading access paths; rollups and
/// `org_days` make counts cheap; `events_fts` holds search postings by `pos`. `index_state`
/// records the log position up to which everything here is built.
pub const INDEX_SCHEMA: &str = r#"
CREATE TABLE index_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL      -- every log row with lsn <= this is indexed
);
INSERT INTO index_state (id, indexed_upto) VALUES (1, 0);

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
CREATE INDEX principals_lookup ON principals(org_key, kind, ext_id, email, name);

CREATE TABLE event_index (
    pos         INTEGER PRIMARY KEY,  -- org_key << 40 | seq
    lsn         INTEGER NOT NULL,     -- the event's row in log
    org_key     INTEGER NOT NULL,
    day         INTEGER NOT NULL,     -- occurred_at / 86400000
    occurred_at INTEGER NOT NULL,
    action      INTEGER NOT NULL,     -- strings
    verb        INTEGER,              -- strings
    actor       INTEGER NOT NULL,     -- principals
    target      INTEGER,              -- principals
    service     INTEGER               -- strings
);
CREATE INDEX events_by_time ON event_index(day, org_key, occurred_at);
CREATE INDEX events_by_action ON event_index(day, org_key, action, occurred_at);
CREATE INDEX events_by_actor ON event_index(day, org_key, actor, occurred_at);
CREATE INDEX events_by_target ON event_index(day, org_key, target, occurred_at);

CREATE TABLE day_actions (
    day     INTEGER NOT NULL,
    org_key INTEGER NOT NULL,
    action  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (org_key, day, action)
) WITHOUT ROWID;

CREATE TABLE day_actors (
    day     INTEGER NOT NULL,
    org_key INTEGER NOT NULL,
    actor   INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (org_key, day, actor)
) WITHOUT ROWID;

CREATE TABLE org_days (
    org_key INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    PRIMARY KEY (org_key, day)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE events_fts USING fts5(
    words, content='', detail='none', tokenize='unicode61 remove_diacritics 0'
);

-- Per block of 4,096 seqs of an organization (block = seq >> 12), the earliest and latest
-- occurred_at of its indexed events: a search walks blocks by time and stops early.
CREATE TABLE seq_blocks (
    org_key INTEGER NOT NULL,
    block   INTEGER NOT NULL,
    min_at  INTEGER NOT NULL,
    max_at  INTEGER NOT NULL,
    PRIMARY KEY (org_key, block)
) WITHOUT ROWID;

PRAGMA user_version = 1;
"#;

/// Empties the derived tables (their rows only, keeping the schema) and starts the index
/// over from the beginning of the log.
pub const INDEX_RESET: &str = r#"
DELETE FROM event_index;
DELETE FROM day_actions;
DELETE FROM day_actors;
DELETE FROM org_days;
DELETE FROM seq_blocks;
DELETE FROM principals;
DELETE FROM strings;
INSERT INTO events_fts (events_fts) VALUES ('delete-all');
UPDATE index_state SET indexed_upto = 0;
"#;

/// The schema version a file records.
fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(crate::backend)
}

/// Creates the schema of a new `index.db`; refuses one from a newer auditlog.
pub fn migrate_index(conn: &mut Connection) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > INDEX_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: INDEX_VERSION,
        });
    }
    for (version, sql) in [(1, INDEX_SCHEMA), (2, INDEX_V2)] {
        if found < version {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(crate::backend)?;
            // Another process may have migrated it since the version was read.
            let again = user_version(&tx)?;
            if again < version {
                tx.execute_batch(sql).map_err(crate::backend)?;
            }
            tx.commit().map_err(crate::backend)?;
        }
    }
    Ok(())
}

/// Applies pending migrations; refuses a database from a newer version.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // Every pending migration runs in one transaction with the version it reaches: a crash
    // leaves the file at the version before, whole. The data a migration computes (version
    // 3's trees) is computed by this build, which reads events in the newest schema: after
    // every migration's SQL.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(crate::backend)?;
    // Another process may have migrated it since the version was read.
    let again = user_version(&tx)?;
    let migrations = [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5)];
    for (version, sql) in migrations {
        if again < version {
            tx.execute_batch(sql).map_err(crate::backend)?;
        }
    }
    if again < 3 {
        crate::tree::backfill(&tx)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(crate::backend)?;
    tx.commit().map_err(crate::backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_core::chain::{ChainTip, ChainVerifier, GENESIS};
    use auditlog_core::{ActorType, EventBody, Timestamp};
    use auditlog_store::Store;
    use rusqlite::params;
    use uuid::Uuid;

    fn body(i: i64) -> EventBody {
        let mut meta = serde_json::Map::new();
        meta.insert("n".into(), i.into());
        EventBody {
            action_key: if i % 2 == 0 {
                "token_created"
            } else {
                "channel_created"
            }
            .into(),
            action_verb: Some("created".into()),
            actor_id: Some(format!("u-{}", i % 3)),
            actor_email: Some(format!("user{}@example.com", i % 3)),
            actor_name: None,
            actor_type: ActorType::User,
            target_id: (i % 2 == 1).then(|| format!("c-{i}")),
            target_email: None,
            target_name: (i % 2 == 1).then(|| format!("channel {i}")),
            target_type: (i % 2 == 1).then(|| "channel".to_string()),
            service_name: Some("repo".into()),
            ip_address: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("agent/1".into()),
            request_id: Some(format!("req-{i}")),
            meta: if i == 3 { serde_json::Map::new() } else { meta },
            occurred_at: Timestamp::from_millis(1_700_000_000_000 + i * 60_000).unwrap(),
            personal_meta: Vec::new(),
            extensions: Default::default(),
        }
    }

    /// A file written by version 1 (dictionary-encoded `events`) opens as the current version
    /// with every event intact: the same ids, fields and hashes, a chain that verifies, reads
    /// that find them, and their Merkle tree built.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_1_file_migrates_with_every_event_and_its_chain() {
        let dir = tempfile::tempdir().unwrap();
        let org_id = Uuid::now_v7();
        let mut tip = ChainTip {
            org_id,
            seq: 0,
            hash: GENESIS,
            last_id: None,
        };
        let now = Timestamp::from_millis(1_700_000_900_000).unwrap();
        // A file of version 1 holds version-1 entries.
        let mut previous = GENESIS;
        let events: Vec<_> = (0..12)
            .map(|i| {
                let mut event = tip.append(body(i), now, i as u64, [0; 16]);
                event.entry = auditlog_core::Entry::V1;
                event.hash = auditlog_core::chain::expected_hash(&previous, &event);
                previous = event.hash;
                event
            })
            .collect();
        {
            let conn = Connection::open(dir.path().join(crate::DB_FILE)).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
            conn.execute(
                "INSERT INTO orgs (org_key, id, name, display_name, audit_logs_enabled,
                                   created_at, head_seq, head_hash)
                 VALUES (1, ?1, 'acme', 'Acme', 1, 0, ?2, ?3)",
                params![
                    org_id.as_bytes().as_slice(),
                    tip.seq as i64,
                    events.last().unwrap().hash.as_slice()
                ],
            )
            .unwrap();
            let string = |value: &str| -> i64 {
                conn.execute("INSERT OR IGNORE INTO strings (value) VALUES (?1)", [value])
                    .unwrap();
                conn.query_row(
                    "SELECT string_key FROM strings WHERE value = ?1",
                    [value],
                    |row| row.get(0),
                )
                .unwrap()
            };
            for event in &events {
                let b = &event.body;
                let actor_kind = string(b.actor_type.as_str());
                conn.execute(
                    "INSERT INTO principals (org_key, kind, ext_id, email, name)
                     VALUES (1, ?1, ?2, ?3, ?4)",
                    params![actor_kind, b.actor_id, b.actor_email, b.actor_name],
                )
                .unwrap();
                let actor = conn.last_insert_rowid();
                let target = if b.target_id.is_some() {
                    let kind = string(b.target_type.as_deref().unwrap());
                    conn.execute(
                        "INSERT INTO principals (org_key, kind, ext_id, email, name)
                         VALUES (1, ?1, ?2, ?3, ?4)",
                        params![kind, b.target_id, b.target_email, b.target_name],
                    )
                    .unwrap();
                    Some(conn.last_insert_rowid())
                } else {
                    None
                };
                let ip = match b.ip_address.unwrap() {
                    std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                    std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                let meta = (!b.meta.is_empty()).then(|| serde_json::to_string(&b.meta).unwrap());
                conn.execute(
                    "INSERT INTO events (pos, org_key, id, day, occurred_at, created_at, action,
                        verb, actor, target, service, ip, user_agent, request_id, meta, hash)
                     VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    params![
                        (1i64 << 40) | event.seq as i64,
                        event.id.as_bytes().as_slice(),
                        b.occurred_at.day(),
                        b.occurred_at.as_millis(),
                        event.created_at.as_millis(),
                        string(&b.action_key),
                        string(b.action_verb.as_deref().unwrap()),
                        actor,
                        target,
                        string(b.service_name.as_deref().unwrap()),
                        ip,
                        string(b.user_agent.as_deref().unwrap()),
                        b.request_id,
                        meta,
                        event.hash.as_slice(),
                    ],
                )
                .unwrap();
            }
        }

        let store = crate::SqliteStore::open(dir.path()).unwrap();
        let version: i64 = Connection::open(dir.path().join(crate::DB_FILE))
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let stored = store.events_by_seq(org_id, 0, 100).await.unwrap();
        assert_eq!(stored, events, "every field of every event survives");
        let mut verifier = ChainVerifier::new(org_id);
        for event in &stored {
            verifier.push(event).unwrap();
        }
        let head = store.chain_head(org_id).await.unwrap();
        assert_eq!((head.seq, head.hash), verifier.head());
        // Reads find them (from the log at once, from the index once it is built), and the
        // next append continues the migrated chain.
        let filter = auditlog_core::query::Filter::default();
        assert_eq!(store.count(org_id, &filter, 100).await.unwrap().n, 12);
        store.wait_indexed().await.unwrap();
        assert_eq!(store.count(org_id, &filter, 100).await.unwrap().n, 12);
        let next = store
            .append(vec![auditlog_store::Append {
                org_id,
                body: body(12),
            }])
            .await
            .unwrap();
        assert_eq!(next[0].seq, 13);
        assert!(next[0].id > events[11].id);
        verifier.push(&next[0]).unwrap();

        // The migration built the tree of the events it found, and the append grew it: the
        // stored level-0 tile holds every event's leaf hash, in seq order.
        let tile = store.read_tiles(org_id, &[(0, 0)]).await.unwrap();
        let leaves: Vec<u8> = events
            .iter()
            .chain(&next)
            .flat_map(auditlog_core::chain::leaf_hash)
            .collect();
        assert_eq!(tile, vec![Some(leaves)]);
    }
}
