//! The append transaction: one per `append` call, whichever replica runs it.
//!
//! 1. With an idempotency key, claim the key first (`INSERT … ON CONFLICT DO NOTHING`): a
//!    concurrent append with the same key waits on that row until this transaction ends,
//!    then replays what it stored; a failed append takes its key with it.
//! 2. Lock each organization's `org_heads` row, in `org_id` order. A fixed order means two
//!    batches naming the same organizations never deadlock; one statement per organization
//!    keeps each lock a single-shard query, which Citus requires of `FOR UPDATE`. Right
//!    behind each lock goes the read of the organization's Merkle tree edge (`crate::tree`).
//! 3. Number, id and hash the events from the locked heads, and grow each organization's
//!    tree by their leaves (`auditlog_core::tree::append`, once per organization).
//! 4. Write the rows (`COPY events … FROM STDIN (FORMAT binary)` for batches of
//!    [`COPY_MIN_ROWS`] or more, one multi-row `INSERT … SELECT FROM unnest(…)` for smaller
//!    ones), bump the day rollups (`INSERT … ON CONFLICT DO UPDATE`), upsert the changed
//!    tiles and move the heads, pipelined on the one connection, and commit. COPY routes
//!    each row to its month's partition like the INSERT does (the caller created the
//!    partitions beforehand). `synchronous_commit` is left on, so the commit returns once
//!    it is durable.
//!
//! Every writer of an organization's rows holds its head lock, so rollup and tile rows are
//! never contended by anyone that does not already wait for the head.
//!
//! [`restore`] (migrations) is the same transaction with step 3 replaced by a check: the
//! given events must continue the locked head (`ChainTip::restore`), and are written as
//! they are by the same code as appended ones.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::net::IpAddr;

use auditlog_core::chain::{self, ChainTip};
use auditlog_core::merkle::Hash;
use auditlog_core::{entry, text, Event, Timestamp};
use auditlog_store::{
    Append, AppendOutcome, Applied, Change, IdempotencyKey, Recorder, StoreError,
};
use deadpool_postgres::{ClientWrapper, Transaction};
use time::OffsetDateTime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use uuid::Uuid;

use crate::tree::{self, StoredTree, TileColumns};
use crate::{backend, hash32, sql_time};

const LOCK_HEAD: &str =
    "SELECT org_key, seq, hash, last_id FROM org_heads WHERE org_id = $1 FOR UPDATE";

const INSERT_EVENTS: &str = "
INSERT INTO events (org_id, seq, id, occurred_at, created_at, action_key, action_verb,
                    actor_id, actor_email, actor_name, actor_type, target_id, target_email,
                    target_name, target_type, service_name, ip_address, user_agent, request_id,
                    meta, hash, words, salts, extensions, impersonator_id, impersonator_email,
                    outcome)
SELECT org_id, seq, id, occurred_at, created_at, action_key, action_verb,
       actor_id, actor_email, actor_name, actor_type, target_id, target_email,
       target_name, target_type, service_name, ip_address, user_agent, request_id,
       meta, hash, words::tsvector, salts, extensions, impersonator_id, impersonator_email,
       outcome
FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
            $13::text[], $14::text[], $15::text[], $16::inet[], $17::text[], $18::text[],
            $19::text[], $20::bytea[], $21::text[], $22::timestamptz[], $23::bytea[],
            $24::text[], $25::text[], $26::text[], $27::text[])
  AS t(org_id, seq, id, occurred_at, action_key, action_verb,
       actor_id, actor_email, actor_name, actor_type, target_id, target_email,
       target_name, target_type, service_name, ip_address, user_agent, request_id,
       meta, hash, words, created_at, salts, extensions, impersonator_id, impersonator_email,
       outcome)";

/// The smallest batch whose rows go in with binary COPY; smaller ones use [`INSERT_EVENTS`],
/// which costs one statement instead of a COPY's start, stream and end.
pub(crate) const COPY_MIN_ROWS: usize = 64;

/// The columns of [`COPY_EVENTS`], in order, with their types ([`COPY_TYPES`]).
const COPY_EVENTS: &str = "
COPY events (org_id, seq, id, occurred_at, created_at, action_key, action_verb,
             actor_id, actor_email, actor_name, actor_type, target_id, target_email,
             target_name, target_type, service_name, ip_address, user_agent, request_id,
             meta, hash, words, salts, extensions, impersonator_id, impersonator_email,
             outcome) FROM STDIN (FORMAT binary)";

const COPY_TYPES: [Type; 27] = [
    Type::UUID,
    Type::INT8,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INET,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::TS_VECTOR,
    Type::BYTEA,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

const BUMP_ACTIONS: &str = "
INSERT INTO event_day_actions (org_id, day, action_key, n)
SELECT org_id, DATE '1970-01-01' + day, action_key, n
FROM unnest($1::uuid[], $2::int[], $3::text[], $4::bigint[]) AS t(org_id, day, action_key, n)
ON CONFLICT (org_id, day, action_key) DO UPDATE SET n = event_day_actions.n + excluded.n";

const BUMP_ACTORS: &str = "
INSERT INTO event_day_actors (org_id, day, actor_key, actor_id, actor_email, actor_name, n)
SELECT org_id, DATE '1970-01-01' + day, actor_key, actor_id, actor_email, actor_name, n
FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
  AS t(org_id, day, actor_key, actor_id, actor_email, actor_name, n)
ON CONFLICT (org_id, day, actor_key) DO UPDATE SET n = event_day_actors.n + excluded.n";

const MOVE_HEADS: &str = "
UPDATE org_heads AS h SET seq = t.seq, hash = t.hash, last_id = t.last_id
FROM unnest($1::uuid[], $2::bigint[], $3::bytea[], $4::uuid[]) AS t(org_id, seq, hash, last_id)
WHERE h.org_id = t.org_id";

/// Appends a batch in one transaction, honouring an idempotency key when one is given.
pub async fn append(
    client: &mut ClientWrapper,
    batch: &[Append],
    key: Option<&IdempotencyKey>,
    now: Timestamp,
) -> Result<AppendOutcome, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    if let Some(key) = key {
        let claimed = tx
            .execute(
                "INSERT INTO idempotency_keys (scope, request_hash, event_ids, created_at)
                 VALUES ($1, $2, '{}', $3) ON CONFLICT (scope) DO NOTHING",
                &[&key.scope, &key.request_hash.as_slice(), &sql_time(now)],
            )
            .await
            .map_err(backend)?;
        if claimed == 0 {
            // The key was stored by a committed append (a concurrent one was waited for);
            // this statement's fresh snapshot sees it.
            let row = tx
                .query_one(
                    "SELECT request_hash, event_ids FROM idempotency_keys WHERE scope = $1",
                    &[&key.scope],
                )
                .await
                .map_err(backend)?;
            tx.rollback().await.map_err(backend)?;
            let request_hash: Vec<u8> = row.get(0);
            if request_hash != key.request_hash {
                return Err(StoreError::Conflict(
                    "this Idempotency-Key was already used with a different request".into(),
                ));
            }
            return Ok(AppendOutcome::Replayed(row.get(1)));
        }
    }
    let events = append_in(&tx, batch, now).await?;
    if let Some(key) = key {
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        tx.execute(
            "UPDATE idempotency_keys SET event_ids = $2 WHERE scope = $1",
            &[&key.scope, &ids],
        )
        .await
        .map_err(backend)?;
    }
    tx.commit().await.map_err(crate::commit_failed)?;
    Ok(AppendOutcome::Stored(events))
}

/// Account changes and the events that record them, in one transaction: a refused record or
/// a failed append rolls the changes back. The changes take their rows' locks before the
/// heads', and appends take only heads', so the two never wait on each other in a cycle.
pub async fn apply(
    client: &mut ClientWrapper,
    changes: Vec<Change>,
    record: Option<Recorder>,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let mut changed = Vec::with_capacity(changes.len());
    for change in changes {
        changed.push(crate::accounts::apply_change(&tx, change).await?);
    }
    let batch = match record {
        Some(record) => record(&changed).map_err(StoreError::Unrecorded)?,
        None => Vec::new(),
    };
    let events = if batch.is_empty() {
        Vec::new()
    } else {
        append_in(&tx, &batch, now).await?
    };
    tx.commit().await.map_err(crate::commit_failed)?;
    Ok(Applied { changed, events })
}

/// Restores already-chained events of one organization in one transaction: they must
/// continue its locked head, and are stored exactly as given.
pub async fn restore(
    client: &mut ClientWrapper,
    org_id: Uuid,
    events: &[Event],
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let mut heads = lock_heads(&tx, &[org_id]).await?;
    let head = heads.get(&org_id).ok_or(StoreError::UnknownOrg(org_id))?;
    // Ids are only indexed, not unique (the key must hold the partition column): an id the
    // organization already has, or one given twice, is refused here.
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let mut taken: HashSet<Uuid> = tx
        .query(
            "SELECT id FROM events WHERE org_id = $1 AND id = ANY($2)",
            &[&org_id, &ids],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut tip = ChainTip {
        org_id,
        seq: head.seq,
        hash: head.hash,
        last_id: head.last_id,
    };
    for event in events {
        tip.restore(event).map_err(|e| {
            StoreError::Conflict(format!(
                "the restored events do not continue the chain of organization {org_id}: {e}"
            ))
        })?;
        if !taken.insert(event.id) {
            return Err(StoreError::Conflict(format!(
                "restored event seq {} has id {}, which organization {org_id} already has",
                event.seq, event.id
            )));
        }
    }
    let leaves: Vec<[u8; 32]> = events.iter().map(chain::leaf_hash).collect();
    write_rows(&tx, events, &leaves, &mut heads).await?;
    tx.commit().await.map_err(crate::commit_failed)
}

/// An organization's chain head, locked for this transaction, and its Merkle tree.
struct Head {
    org_key: i64,
    seq: u64,
    hash: [u8; 32],
    last_id: Option<Uuid>,
    tree: StoredTree,
}

/// Locks the chain heads of `org_ids` (sorted, without repeats) in that order. An unknown
/// organization has no head in the answer: the caller fails, dropping the transaction, which
/// rolls it back and releases the locks.
async fn lock_heads(
    tx: &Transaction<'_>,
    org_ids: &[Uuid],
) -> Result<HashMap<Uuid, Head>, StoreError> {
    let (lock, read_edge) = tokio::try_join!(
        tx.prepare_cached(LOCK_HEAD),
        tx.prepare_cached(tree::READ_EDGE)
    )
    .map_err(backend)?;
    let mut heads: HashMap<Uuid, Head> = HashMap::with_capacity(org_ids.len());
    for org_id in org_ids {
        // Pipelined: the edge is read once the lock is held, with a snapshot taken then.
        let params: [&(dyn ToSql + Sync); 1] = [org_id];
        let (row, edge) =
            tokio::try_join!(tx.query_opt(&lock, &params), tx.query(&read_edge, &params))
                .map_err(backend)?;
        if let Some(row) = row {
            let head = Head {
                org_key: row.get(0),
                seq: row.get::<_, i64>(1) as u64,
                hash: hash32(row.get(2), "a chain head's hash")?,
                last_id: row.get(3),
                tree: StoredTree::from_edge(*org_id, &edge)?,
            };
            heads.insert(*org_id, head);
        }
    }
    Ok(heads)
}

/// Appends inside `tx`; the caller commits.
async fn append_in(
    tx: &Transaction<'_>,
    batch: &[Append],
    now: Timestamp,
) -> Result<Vec<Event>, StoreError> {
    let mut org_ids: Vec<Uuid> = batch.iter().map(|item| item.org_id).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let mut heads = lock_heads(tx, &org_ids).await?;
    if let Some(unknown) = batch
        .iter()
        .map(|item| item.org_id)
        .find(|id| !heads.contains_key(id))
    {
        return Err(StoreError::UnknownOrg(unknown));
    }

    let mut events = Vec::with_capacity(batch.len());
    let mut leaves = Vec::with_capacity(batch.len());
    // The heads move as events are written; minting runs ahead on copies.
    let mut tips: HashMap<Uuid, ChainTip> = heads
        .iter()
        .map(|(org_id, head)| {
            let tip = ChainTip {
                org_id: *org_id,
                seq: head.seq,
                hash: head.hash,
                last_id: head.last_id,
            };
            (*org_id, tip)
        })
        .collect();
    for item in batch {
        let tip = tips.get_mut(&item.org_id).expect("every head was locked");
        let (event, leaf) =
            tip.append_with_leaf(item.body.clone(), now, rand::random(), rand::random());
        events.push(event);
        leaves.push(leaf);
    }
    write_rows(tx, &events, &leaves, &mut heads).await?;
    Ok(events)
}

/// Writes chained events inside `tx` (their heads locked there): the rows with their search
/// words, the day rollups, the tiles of each organization's grown Merkle tree, and each head
/// moved to its organization's last event. Shared by appends, which mint the events, and
/// restores, which check them. `leaves` holds each event's `chain::leaf_hash`.
async fn write_rows(
    tx: &Transaction<'_>,
    events: &[Event],
    leaves: &[[u8; 32]],
    heads: &mut HashMap<Uuid, Head>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let tiles = grow_trees(tx, events, leaves, heads).await?;
    let mut words = Vec::with_capacity(events.len());
    for event in events {
        let head = heads.get_mut(&event.org_id).expect("every head was locked");
        head.seq = event.seq;
        head.hash = event.hash;
        head.last_id = Some(event.id);
        words.push(Lexemes {
            tag: head.org_key,
            words: text::event_words(&event.body),
        });
    }
    let rollups = Rollups::new(events);
    let heads = HeadColumns::new(heads);
    let (actions, actors, move_heads, upsert_tiles) = tokio::try_join!(
        tx.prepare_cached(BUMP_ACTIONS),
        tx.prepare_cached(BUMP_ACTORS),
        tx.prepare_cached(MOVE_HEADS),
        tx.prepare_cached(tree::UPSERT_TILES),
    )
    .map_err(backend)?;
    let action_params: [&(dyn ToSql + Sync); 4] = [
        &rollups.action_org,
        &rollups.action_day,
        &rollups.action_key,
        &rollups.action_n,
    ];
    let actor_params: [&(dyn ToSql + Sync); 7] = [
        &rollups.actor_org,
        &rollups.actor_day,
        &rollups.actor_key,
        &rollups.actor_id,
        &rollups.actor_email,
        &rollups.actor_name,
        &rollups.actor_n,
    ];
    let head_params: [&(dyn ToSql + Sync); 4] =
        [&heads.org_id, &heads.seq, &heads.hash, &heads.last_id];
    let tile_params = tiles.params();
    // Sent back to back on one connection (tokio-postgres pipelines concurrent requests), so
    // the rollups, tiles and heads ride along with the rows instead of costing round trips
    // of their own. A COPY holds the connection until it ends, so those four queue behind it.
    let rows = async {
        if events.len() >= COPY_MIN_ROWS {
            copy_rows(tx, events, &words).await
        } else {
            insert_rows(tx, events, &words).await
        }
    };
    tokio::try_join!(
        rows,
        async { tx.execute(&actions, &action_params).await.map_err(backend) },
        async { tx.execute(&actors, &actor_params).await.map_err(backend) },
        async {
            if tiles.is_empty() {
                return Ok(0);
            }
            tx.execute(&upsert_tiles, &tile_params)
                .await
                .map_err(backend)
        },
        async { tx.execute(&move_heads, &head_params).await.map_err(backend) },
    )?;
    Ok(())
}

/// Grows each organization's tree by its events' leaves, in seq order (one
/// `auditlog_core::tree::append` per organization), before the heads move; answers the
/// changed tiles. A tree shorter than its chain (events stored by an older build) first
/// catches up from the stored events.
async fn grow_trees(
    tx: &Transaction<'_>,
    events: &[Event],
    leaves: &[[u8; 32]],
    heads: &mut HashMap<Uuid, Head>,
) -> Result<TileColumns, StoreError> {
    // A batch's events of one organization are in seq order.
    let mut by_org: HashMap<Uuid, Vec<Hash>> = HashMap::new();
    for (event, leaf) in events.iter().zip(leaves) {
        by_org.entry(event.org_id).or_default().push(Hash(*leaf));
    }
    let mut tiles = TileColumns::default();
    for (org_id, org_leaves) in by_org {
        let head = heads.get_mut(&org_id).expect("every head was locked");
        if head.tree.size > head.seq {
            return Err(StoreError::Corrupt(format!(
                "the Merkle tree of organization {org_id} has {} leaves, its chain {} events",
                head.tree.size, head.seq
            )));
        }
        if head.tree.size < head.seq {
            tracing::info!(
                %org_id,
                from = head.tree.size,
                to = head.seq,
                "growing a Merkle tree that trails its chain from the stored events"
            );
            tree::grow_from_events(tx, org_id, &mut head.tree, head.seq).await?;
        }
        tiles.push(org_id, head.tree.grow(org_id, &org_leaves)?);
    }
    Ok(tiles)
}

/// Writes the rows with one multi-row `INSERT … SELECT FROM unnest(…)` (small batches).
async fn insert_rows(
    tx: &Transaction<'_>,
    events: &[Event],
    words: &[Lexemes],
) -> Result<(), StoreError> {
    let words = words
        .iter()
        .map(|w| tsvector_literal(w.tag, &w.words))
        .collect();
    let rows = EventColumns::new(events, words)?;
    let insert = tx.prepare_cached(INSERT_EVENTS).await.map_err(backend)?;
    let insert_params: [&(dyn ToSql + Sync); 27] = [
        &rows.org_id,
        &rows.seq,
        &rows.id,
        &rows.occurred_at,
        &rows.action_key,
        &rows.action_verb,
        &rows.actor_id,
        &rows.actor_email,
        &rows.actor_name,
        &rows.actor_type,
        &rows.target_id,
        &rows.target_email,
        &rows.target_name,
        &rows.target_type,
        &rows.service_name,
        &rows.ip_address,
        &rows.user_agent,
        &rows.request_id,
        &rows.meta,
        &rows.hash,
        &rows.words,
        &rows.created_at,
        &rows.salts,
        &rows.extensions,
        &rows.impersonator_id,
        &rows.impersonator_email,
        &rows.outcome,
    ];
    tx.execute(&insert, &insert_params).await.map_err(backend)?;
    Ok(())
}

/// Writes the rows with `COPY events … FROM STDIN (FORMAT binary)` (large batches): no
/// arrays to build and unpack, and each value in its binary form.
async fn copy_rows(
    tx: &Transaction<'_>,
    events: &[Event],
    words: &[Lexemes],
) -> Result<(), StoreError> {
    let copy = tx.prepare_cached(COPY_EVENTS).await.map_err(backend)?;
    let sink = tx.copy_in(&copy).await.map_err(backend)?;
    let writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
    let mut writer = std::pin::pin!(writer);
    for (event, words) in events.iter().zip(words) {
        let body = &event.body;
        let meta = meta_text(event)?;
        let seq = event.seq as i64;
        let occurred_at = sql_time(body.occurred_at);
        let created_at = sql_time(event.created_at);
        let hash = event.hash.as_slice();
        let salts = entry::encode_salts(&event.entry, &body.personal_meta);
        let extensions = extensions_text(event)?;
        let filtered = FilteredExtensions::of(event);
        let row: [&(dyn ToSql + Sync); 27] = [
            &event.org_id,
            &seq,
            &event.id,
            &occurred_at,
            &created_at,
            &body.action_key.as_str(),
            &body.action_verb,
            &body.actor_id,
            &body.actor_email,
            &body.actor_name,
            &body.actor_type.as_str(),
            &body.target_id,
            &body.target_email,
            &body.target_name,
            &body.target_type,
            &body.service_name,
            &body.ip_address,
            &body.user_agent,
            &body.request_id,
            &meta,
            &hash,
            words,
            &salts,
            &extensions,
            &filtered.impersonator_id,
            &filtered.impersonator_email,
            &filtered.outcome,
        ];
        writer.as_mut().write(&row).await.map_err(backend)?;
    }
    writer.finish().await.map_err(backend)?;
    Ok(())
}

/// The stored form of an event's extensions: compact JSON, `None` when it has none.
fn extensions_text(event: &Event) -> Result<Option<String>, StoreError> {
    let extensions = &event.body.extensions;
    if extensions.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(extensions)
        .map(Some)
        .map_err(|e| StoreError::Backend(e.to_string()))
}

/// The parts of an event's extensions that filters test, as the columns that hold them.
struct FilteredExtensions<'a> {
    impersonator_id: Option<&'a str>,
    impersonator_email: Option<&'a str>,
    /// `None` for `success`.
    outcome: Option<&'static str>,
}

impl<'a> FilteredExtensions<'a> {
    fn of(event: &'a Event) -> FilteredExtensions<'a> {
        let extensions = &event.body.extensions;
        let impersonator = extensions.impersonator.as_ref();
        FilteredExtensions {
            impersonator_id: impersonator.and_then(|i| i.id.as_deref()),
            impersonator_email: impersonator.and_then(|i| i.email.as_deref()),
            outcome: (!extensions.outcome.is_success()).then(|| extensions.outcome.as_str()),
        }
    }
}

/// The exact JSON text of an event's `meta` (`jsonb` would reorder keys and renormalize
/// numbers), `None` when it is empty.
fn meta_text(event: &Event) -> Result<Option<String>, StoreError> {
    if event.body.meta.is_empty() {
        Ok(None)
    } else {
        serde_json::to_string(&event.body.meta)
            .map(Some)
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

/// An event's search words as a `tsvector` value, each lexeme `<tag>.<word>`: written in the
/// binary form for COPY, or as a literal ([`tsvector_literal`]) for the INSERT.
#[derive(Debug)]
pub(crate) struct Lexemes {
    tag: i64,
    /// Usually sorted and without repeats, as `text::event_words` gives them.
    words: Vec<String>,
}

impl ToSql for Lexemes {
    /// `tsvectorrecv`'s input: the lexeme count (int4), then each lexeme as a NUL-terminated
    /// string followed by its position count (int2, none here).
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // `tsvectorrecv` sorts lexemes but, unlike the text input, keeps repeats: give it
        // each word once. Byte order of the words is the server's lexeme order.
        let mut words: Vec<&str> = self.words.iter().map(String::as_str).collect();
        if !words.windows(2).all(|w| w[0] < w[1]) {
            words.sort_unstable();
            words.dedup();
        }
        let n = i32::try_from(words.len())?;
        out.extend_from_slice(&n.to_be_bytes());
        let mut lexeme = String::new();
        for word in words {
            if word.contains('\0') {
                return Err("a search word holds a NUL character".into());
            }
            lexeme.clear();
            let _ = write!(lexeme, "{}.{word}", self.tag);
            out.extend_from_slice(lexeme.as_bytes());
            // The terminating NUL, then no positions.
            out.extend_from_slice(&[0, 0, 0]);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TS_VECTOR
    }

    to_sql_checked!();
}

/// The events as one array per column, for `INSERT_EVENTS`.
struct EventColumns<'a> {
    org_id: Vec<Uuid>,
    seq: Vec<i64>,
    id: Vec<Uuid>,
    occurred_at: Vec<OffsetDateTime>,
    action_key: Vec<&'a str>,
    action_verb: Vec<Option<&'a str>>,
    actor_id: Vec<Option<&'a str>>,
    actor_email: Vec<Option<&'a str>>,
    actor_name: Vec<Option<&'a str>>,
    actor_type: Vec<&'static str>,
    target_id: Vec<Option<&'a str>>,
    target_email: Vec<Option<&'a str>>,
    target_name: Vec<Option<&'a str>>,
    target_type: Vec<Option<&'a str>>,
    service_name: Vec<Option<&'a str>>,
    ip_address: Vec<Option<IpAddr>>,
    user_agent: Vec<Option<&'a str>>,
    request_id: Vec<Option<&'a str>>,
    meta: Vec<Option<String>>,
    hash: Vec<&'a [u8]>,
    words: Vec<String>,
    created_at: Vec<OffsetDateTime>,
    salts: Vec<Option<Vec<u8>>>,
    extensions: Vec<Option<String>>,
    impersonator_id: Vec<Option<&'a str>>,
    impersonator_email: Vec<Option<&'a str>>,
    outcome: Vec<Option<&'static str>>,
}

impl<'a> EventColumns<'a> {
    fn new(events: &'a [Event], words: Vec<String>) -> Result<EventColumns<'a>, StoreError> {
        let body = |e: &'a Event| &e.body;
        let filtered: Vec<FilteredExtensions<'a>> =
            events.iter().map(FilteredExtensions::of).collect();
        Ok(EventColumns {
            org_id: events.iter().map(|e| e.org_id).collect(),
            seq: events.iter().map(|e| e.seq as i64).collect(),
            id: events.iter().map(|e| e.id).collect(),
            occurred_at: events
                .iter()
                .map(|e| sql_time(e.body.occurred_at))
                .collect(),
            action_key: events.iter().map(|e| body(e).action_key.as_str()).collect(),
            action_verb: events
                .iter()
                .map(|e| body(e).action_verb.as_deref())
                .collect(),
            actor_id: events.iter().map(|e| body(e).actor_id.as_deref()).collect(),
            actor_email: events
                .iter()
                .map(|e| body(e).actor_email.as_deref())
                .collect(),
            actor_name: events
                .iter()
                .map(|e| body(e).actor_name.as_deref())
                .collect(),
            actor_type: events.iter().map(|e| body(e).actor_type.as_str()).collect(),
            target_id: events
                .iter()
                .map(|e| body(e).target_id.as_deref())
                .collect(),
            target_email: events
                .iter()
                .map(|e| body(e).target_email.as_deref())
                .collect(),
            target_name: events
                .iter()
                .map(|e| body(e).target_name.as_deref())
                .collect(),
            target_type: events
                .iter()
                .map(|e| body(e).target_type.as_deref())
                .collect(),
            service_name: events
                .iter()
                .map(|e| body(e).service_name.as_deref())
                .collect(),
            ip_address: events.iter().map(|e| body(e).ip_address).collect(),
            user_agent: events
                .iter()
                .map(|e| body(e).user_agent.as_deref())
                .collect(),
            request_id: events
                .iter()
                .map(|e| body(e).request_id.as_deref())
                .collect(),
            meta: events.iter().map(meta_text).collect::<Result<_, _>>()?,
            hash: events.iter().map(|e| e.hash.as_slice()).collect(),
            words,
            created_at: events.iter().map(|e| sql_time(e.created_at)).collect(),
            salts: events
                .iter()
                .map(|e| entry::encode_salts(&e.entry, &e.body.personal_meta))
                .collect(),
            extensions: events
                .iter()
                .map(extensions_text)
                .collect::<Result<_, _>>()?,
            impersonator_id: filtered.iter().map(|f| f.impersonator_id).collect(),
            impersonator_email: filtered.iter().map(|f| f.impersonator_email).collect(),
            outcome: filtered.iter().map(|f| f.outcome).collect(),
        })
    }
}

/// A batch's increments of the day rollups, summed per key (one `ON CONFLICT DO UPDATE`
/// statement may not touch a row twice).
struct Rollups<'a> {
    action_org: Vec<Uuid>,
    action_day: Vec<i32>,
    action_key: Vec<&'a str>,
    action_n: Vec<i64>,
    actor_org: Vec<Uuid>,
    actor_day: Vec<i32>,
    actor_key: Vec<String>,
    actor_id: Vec<Option<&'a str>>,
    actor_email: Vec<Option<&'a str>>,
    actor_name: Vec<Option<&'a str>>,
    actor_n: Vec<i64>,
}

/// An actor on a day: organization, day, `actor_id`, `actor_email`.
type ActorDay<'a> = (Uuid, i32, Option<&'a str>, Option<&'a str>);

impl<'a> Rollups<'a> {
    fn new(events: &'a [Event]) -> Rollups<'a> {
        let mut actions: HashMap<(Uuid, i32, &str), i64> = HashMap::new();
        // The value is a name seen for the actor that day, and the count.
        let mut actors: HashMap<ActorDay<'a>, (Option<&'a str>, i64)> = HashMap::new();
        for event in events {
            let body = &event.body;
            let day = day_number(body.occurred_at);
            *actions
                .entry((event.org_id, day, body.action_key.as_str()))
                .or_default() += 1;
            let actor = (
                event.org_id,
                day,
                body.actor_id.as_deref(),
                body.actor_email.as_deref(),
            );
            actors
                .entry(actor)
                .or_insert((body.actor_name.as_deref(), 0))
                .1 += 1;
        }
        let mut rollups = Rollups {
            action_org: Vec::with_capacity(actions.len()),
            action_day: Vec::with_capacity(actions.len()),
            action_key: Vec::with_capacity(actions.len()),
            action_n: Vec::with_capacity(actions.len()),
            actor_org: Vec::with_capacity(actors.len()),
            actor_day: Vec::with_capacity(actors.len()),
            actor_key: Vec::with_capacity(actors.len()),
            actor_id: Vec::with_capacity(actors.len()),
            actor_email: Vec::with_capacity(actors.len()),
            actor_name: Vec::with_capacity(actors.len()),
            actor_n: Vec::with_capacity(actors.len()),
        };
        for ((org_id, day, action), n) in actions {
            rollups.action_org.push(org_id);
            rollups.action_day.push(day);
            rollups.action_key.push(action);
            rollups.action_n.push(n);
        }
        for ((org_id, day, id, email), (name, n)) in actors {
            rollups.actor_org.push(org_id);
            rollups.actor_day.push(day);
            rollups.actor_key.push(actor_key(id, email));
            rollups.actor_id.push(id);
            rollups.actor_email.push(email);
            rollups.actor_name.push(name);
            rollups.actor_n.push(n);
        }
        rollups
    }
}

/// The new chain heads as one array per column, for `MOVE_HEADS`.
struct HeadColumns<'a> {
    org_id: Vec<Uuid>,
    seq: Vec<i64>,
    hash: Vec<&'a [u8]>,
    last_id: Vec<Option<Uuid>>,
}

impl<'a> HeadColumns<'a> {
    fn new(heads: &'a HashMap<Uuid, Head>) -> HeadColumns<'a> {
        HeadColumns {
            org_id: heads.keys().copied().collect(),
            seq: heads.values().map(|h| h.seq as i64).collect(),
            hash: heads.values().map(|h| h.hash.as_slice()).collect(),
            last_id: heads.values().map(|h| h.last_id).collect(),
        }
    }
}

/// The UTC day of an instant, as days since the epoch (what rollups are keyed by).
pub(crate) fn day_number(at: Timestamp) -> i32 {
    i32::try_from(at.day()).expect("days up to the year 9999 fit in i32")
}

/// The rollup key of an actor: JSON `[actor_id, actor_email]`, so that an absent value and
/// an empty one stay apart.
pub(crate) fn actor_key(id: Option<&str>, email: Option<&str>) -> String {
    serde_json::to_string(&(id, email)).expect("strings serialize")
}

/// A `tsvector` literal of an event's words, each tagged with its organization's key.
///
/// The literal is cast with `::tsvector`, which keeps each quoted lexeme exactly as written:
/// the words are already split and lowercased by `auditlog_core::text`, and a text search
/// configuration (even `simple`) would split and fold them again, by rules that depend on the
/// server's locale.
pub(crate) fn tsvector_literal(tag: i64, words: &[String]) -> String {
    let mut out = String::with_capacity(words.len() * 12);
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        push_lexeme(&mut out, tag, word);
    }
    out
}

/// Appends `'<tag>.<word>'`, quoted for `tsvector` and `tsquery` input: a quote is doubled
/// and a backslash escaped (words are letters and digits, so this never happens today).
pub(crate) fn push_lexeme(out: &mut String, tag: i64, word: &str) {
    let _ = write!(out, "'{tag}.");
    for c in word.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary `tsvector` COPY writes is the value the INSERT's literal casts to.
    /// Needs `AUDITLOG_TEST_DATABASE_URL`: skipped without it, except under `CI=true`.
    #[tokio::test]
    async fn binary_lexemes_equal_the_literal() {
        let database_url = auditlog_testkit::postgres::database_url();
        let Some(url) = auditlog_testkit::available(database_url) else {
            return;
        };
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("the test database answers");
        tokio::spawn(connection);
        let cases: [&[&str]; 4] = [
            &[],
            &["ml", "東京", "o'b\\x"],
            &["a", "ab", "b", "2001", "db8"],
            &["zeta", "alpha", "alpha"],
        ];
        for words in cases {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            let literal = tsvector_literal(17, &words);
            let binary = Lexemes { tag: 17, words };
            let row = client
                .query_one(
                    "SELECT $1::tsvector::text, $2::text::tsvector::text",
                    &[&binary, &literal],
                )
                .await
                .expect("both forms are accepted");
            assert_eq!(
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                "{literal}"
            );
        }
    }

    #[test]
    fn lexemes_carry_the_tag_and_are_quoted() {
        let words = ["ml".to_string(), "東京".to_string(), "o'b\\x".to_string()];
        assert_eq!(
            tsvector_literal(17, &words),
            r"'17.ml' '17.東京' '17.o''b\\x'"
        );
    }
}
