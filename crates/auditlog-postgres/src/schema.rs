//! The embedded schema and its migrations, applied at connect under an advisory lock (so that
//! replicas starting at once migrate one after another); `schema_migrations` records the
//! applied versions, and a database migrated by a newer auditlog is refused rather than
//! misread.
//!
//! Layout (`docs/scaling.md` explains each table and index, and how Citus distributes them):
//! - Every tenant table carries `org_id`, and every key and index of event data leads with
//!   it, so that each query reads one organization's slice and the tables can be distributed
//!   by `org_id`.
//! - `events` is partitioned by month of `occurred_at` (`crate::partitions` creates the
//!   months on demand); `events_default` catches anything else, so no append is refused.
//! - `org_heads` holds each organization's chain head apart from `orgs`: appends lock and
//!   update it on every batch, and it is distributed with the events while `orgs` (with its
//!   globally unique names) is a reference table.
//! - `event_day_actions` and `event_day_actors` are per-day rollups written in the append's
//!   transaction: counts and facets over whole days never touch `events`.
//! - `words` holds the event's search words as a `tsvector` (see `crate::read` for why each
//!   word carries its organization's key).
//! - `tree_tiles` holds each organization's Merkle tree as C2SP tiles, grown in the append's
//!   transaction (`crate::tree`), and `tree_checkpoints` its signed tree checkpoints. Version
//!   2 adds them and builds the tiles of the events already stored.
//! - Version 3 adds each event's extensions (`extensions`, JSON) and, for filters, its
//!   impersonator and outcome as columns.
//! - Version 4 adds `legal_holds` and `org_retention`.

use auditlog_store::StoreError;
use tokio_postgres::{Client, Transaction};

use crate::backend;

/// The newest schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 4;

/// The advisory lock key that serializes migrations ("auditlog" in ASCII). Advisory locks are
/// per database, so stores in different schemas of one database also take turns; migrations
/// are short.
const MIGRATION_LOCK: i64 = 0x6175_6469_746c_6f67;

/// Migrations by version; each runs in the one transaction that records it. A version whose
/// data must be computed in Rust does that after its SQL ([`backfill`]).
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4)];

const V1: &str = r#"
CREATE TABLE orgs (
    id                 uuid PRIMARY KEY,
    -- A short number for the organization, used to tag its search words.
    org_key            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    name               text NOT NULL UNIQUE,
    display_name       text NOT NULL,
    audit_logs_enabled boolean NOT NULL,
    created_at         timestamptz NOT NULL
);

CREATE TABLE org_heads (
    org_id  uuid PRIMARY KEY,
    org_key bigint NOT NULL,
    seq     bigint NOT NULL,            -- 0 before the first event
    hash    bytea NOT NULL,             -- chain::GENESIS before the first event
    last_id uuid                        -- the newest event id, so ids keep increasing
);

CREATE TABLE events (
    org_id       uuid NOT NULL,
    seq          bigint NOT NULL,
    id           uuid NOT NULL,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    action_key   text NOT NULL,
    action_verb  text,
    actor_id     text,
    actor_email  text,
    actor_name   text,
    actor_type   text NOT NULL,
    target_id    text,
    target_email text,
    target_name  text,
    target_type  text,
    service_name text,
    ip_address   inet,
    user_agent   text,
    request_id   text,
    meta         text,                  -- the exact JSON text of `meta`; NULL when empty
    hash         bytea NOT NULL,
    words        tsvector NOT NULL,     -- '<org_key>.<word>' lexemes, see crate::read
    PRIMARY KEY (org_id, occurred_at, seq)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE INDEX events_by_action ON events (org_id, action_key, occurred_at, seq);
CREATE INDEX events_by_actor_id ON events (org_id, actor_id, occurred_at, seq);
CREATE INDEX events_by_actor_email ON events (org_id, actor_email, occurred_at, seq);
CREATE INDEX events_by_target_id ON events (org_id, target_id, occurred_at, seq);
CREATE INDEX events_by_target_email ON events (org_id, target_email, occurred_at, seq);
CREATE INDEX events_by_seq ON events (org_id, seq);
CREATE INDEX events_by_id ON events (org_id, id);
CREATE INDEX events_by_words ON events USING gin (words);

CREATE TABLE event_day_actions (
    org_id     uuid NOT NULL,
    day        date NOT NULL,           -- UTC day of occurred_at
    action_key text NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (org_id, day, action_key)
);

CREATE TABLE event_day_actors (
    org_id      uuid NOT NULL,
    day         date NOT NULL,
    actor_key   text NOT NULL,          -- JSON [actor_id, actor_email]: NULLs cannot be keys
    actor_id    text,
    actor_email text,
    actor_name  text,                   -- a name seen for the actor that day
    n           bigint NOT NULL,
    PRIMARY KEY (org_id, day, actor_key)
);

CREATE TABLE checkpoints (
    org_id    uuid NOT NULL,
    seq       bigint NOT NULL,
    signed_at timestamptz NOT NULL,
    hash      bytea NOT NULL,
    key_id    text NOT NULL,
    signature bytea NOT NULL,
    PRIMARY KEY (org_id, seq, signed_at)
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,  -- lowercase
    display_name  text NOT NULL,
    password_hash text,
    created_at    timestamptz NOT NULL
);

CREATE TABLE memberships (
    org_id  uuid NOT NULL,
    user_id uuid NOT NULL,
    role    text NOT NULL CHECK (role IN ('admin', 'member')),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE service_accounts (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL,
    name        text NOT NULL,
    client_id   text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX service_accounts_by_org ON service_accounts (org_id);

CREATE TABLE credentials (
    id                 uuid PRIMARY KEY,
    kind               text NOT NULL,
    token_hash         bytea NOT NULL UNIQUE,
    org_id             uuid,
    user_id            uuid,
    service_account_id uuid,
    name               text NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    revoked_at         timestamptz
);
CREATE INDEX credentials_by_user ON credentials (kind, user_id);
CREATE INDEX credentials_by_org ON credentials (kind, org_id);
CREATE INDEX credentials_by_account ON credentials (service_account_id);
CREATE INDEX credentials_by_expiry ON credentials (expires_at);

CREATE TABLE idempotency_keys (
    scope        text PRIMARY KEY,
    request_hash bytea NOT NULL,
    event_ids    uuid[] NOT NULL,       -- in batch order
    created_at   timestamptz NOT NULL
);

CREATE TABLE export_jobs (
    org_id        uuid NOT NULL,
    id            uuid NOT NULL,
    status        text NOT NULL,
    request       text NOT NULL,
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    progress      smallint NOT NULL,
    total_records bigint,
    error_message text,
    file_name     text,
    expires_at    timestamptz,
    claimed_by    text,
    heartbeat_at  timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX export_jobs_claimable ON export_jobs (created_at, id)
    WHERE status IN ('pending', 'running');
CREATE INDEX export_jobs_expiring ON export_jobs (expires_at) WHERE status = 'completed';
"#;

/// The Merkle tree: tiles and signed tree checkpoints, keyed by organization like every
/// tenant table (so both distribute with `org_heads` on Citus); and the salts of version-2
/// entries beside each event.
const V2: &str = r#"
-- A version-2 entry's salts (auditlog_core::entry::encode_salts); NULL for version 1.
ALTER TABLE events ADD COLUMN salts bytea;

CREATE TABLE tree_tiles (
    org_id uuid NOT NULL,
    level  smallint NOT NULL CHECK (level BETWEEN 0 AND 7),
    index  bigint NOT NULL CHECK (index >= 0),
    -- 32 bytes per hash, 1 to 256 hashes; only the last tile of a level is partial.
    hashes bytea NOT NULL
        CHECK (octet_length(hashes) BETWEEN 32 AND 8192 AND octet_length(hashes) % 32 = 0),
    PRIMARY KEY (org_id, level, index)
);
-- Hashes do not compress: store a full tile out of line without trying to, which every
-- append's rewrite of the partial tile would otherwise pay for.
ALTER TABLE tree_tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;

CREATE TABLE tree_checkpoints (
    org_id uuid NOT NULL,
    size   bigint NOT NULL CHECK (size >= 0),
    note   text NOT NULL,                -- the C2SP signed note, as given
    PRIMARY KEY (org_id, size)
);
"#;

/// An event's extensions (`auditlog_core::Extensions`) as compact JSON, NULL when it has none
/// (every event stored before); and the parts a filter tests, as columns with access paths
/// that hold only the events that have them.
const V3: &str = r#"
ALTER TABLE events ADD COLUMN extensions text;
ALTER TABLE events ADD COLUMN impersonator_id text;
ALTER TABLE events ADD COLUMN impersonator_email text;
-- NULL for `success`, nearly every event.
ALTER TABLE events ADD COLUMN outcome text;
CREATE INDEX events_by_impersonator_id ON events (org_id, impersonator_id, occurred_at, seq)
    WHERE impersonator_id IS NOT NULL;
CREATE INDEX events_by_impersonator_email
    ON events (org_id, impersonator_email, occurred_at, seq)
    WHERE impersonator_email IS NOT NULL;
CREATE INDEX events_by_outcome ON events (org_id, outcome, occurred_at, seq)
    WHERE outcome IS NOT NULL;
"#;

/// Version 4: legal holds, and each organization's retention and how far its history was
/// purged.
const V4: &str = r#"
CREATE TABLE org_retention (
    org_id         uuid PRIMARY KEY,
    days           integer,                  -- NULL follows the deployment's default
    purged_through bigint NOT NULL DEFAULT 0, -- events 1..=this are purged
    purged_hash    bytea,                    -- the chain hash of event purged_through
    purged_before  timestamptz               -- the last purge's cutoff
);
CREATE TABLE legal_holds (
    id        uuid PRIMARY KEY,
    org_id    uuid NOT NULL,
    subject   text,                     -- an actor id or email; NULL holds the whole organization
    reason    text NOT NULL,
    placed_by text NOT NULL,
    placed_at timestamptz NOT NULL,
    lifted_at timestamptz,
    lifted_by text
);
CREATE INDEX legal_holds_by_org ON legal_holds (org_id, placed_at);
"#;

/// Applies pending migrations; refuses a database from a newer version.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    // Held until commit: a replica that starts meanwhile waits here, then finds the
    // migrations applied.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    bigint PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(backend)?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(backend)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let pending: Vec<i64> = MIGRATIONS
        .iter()
        .map(|(version, _)| *version)
        .filter(|version| *version > found)
        .collect();
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        tx.batch_execute(sql).await.map_err(backend)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(backend)?;
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    // The data a migration computes is computed by this build, which reads events in the
    // newest schema: after every migration's SQL, still in the one transaction.
    for version in pending {
        backfill(&tx, version).await?;
    }
    tx.commit().await.map_err(backend)
}

/// The data a migration computes from what is stored, in the migration's transaction: a
/// failure leaves the database at the version before.
async fn backfill(tx: &Transaction<'_>, version: i64) -> Result<(), StoreError> {
    if version == 2 {
        crate::tree::backfill(tx).await?;
    }
    Ok(())
}
