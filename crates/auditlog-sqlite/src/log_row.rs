//! The stored form of an event: one row of `log`, written by the writer and read back by the
//! readers and the indexer. This module is the only place that knows its columns.

use std::net::IpAddr;

use auditlog_core::{entry, ActorType, Event, EventBody, Extensions, Timestamp};
use auditlog_store::StoreError;
use rusqlite::{params, CachedStatement, Row};
use uuid::Uuid;

use crate::backend;

/// The statement that appends a row; bound by [`insert`].
pub const INSERT: &str = "INSERT INTO log (org_key, seq, id, occurred_at, created_at, action_key,
        action_verb, actor_id, actor_email, actor_name, actor_type, target_id, target_email,
        target_name, target_type, service_name, ip, user_agent, request_id, meta, hash, salts,
        leaf, extensions)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24)";

/// The columns [`decode`] reads, for a `SELECT` from `log l`: `lsn` and `org_key` first.
pub const COLUMNS: &str = "l.lsn, l.org_key, l.seq, l.id, l.occurred_at, l.created_at,
    l.action_key, l.action_verb, l.actor_id, l.actor_email, l.actor_name, l.actor_type,
    l.target_id, l.target_email, l.target_name, l.target_type, l.service_name, l.ip,
    l.user_agent, l.request_id, l.meta, l.hash, l.salts, l.extensions";

/// Appends one event of the organization `org_key` with its leaf hash in the organization's
/// Merkle tree (`crate::tree` reads the leaves of a partial tile from here); `meta` is a
/// reused buffer.
pub fn insert(
    stmt: &mut CachedStatement<'_>,
    org_key: i64,
    event: &Event,
    leaf: &[u8; 32],
    meta: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let body = &event.body;
    let ip = body.ip_address.map(encode_ip);
    meta.clear();
    if !body.meta.is_empty() {
        serde_json::to_writer(&mut *meta, &body.meta)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
    }
    let meta = std::str::from_utf8(meta).expect("serde_json writes UTF-8");
    let extensions = encode_extensions(&body.extensions)?;
    stmt.execute(params![
        org_key,
        event.seq as i64,
        event.id.as_bytes().as_slice(),
        body.occurred_at.as_millis(),
        event.created_at.as_millis(),
        body.action_key,
        body.action_verb,
        body.actor_id,
        body.actor_email,
        body.actor_name,
        body.actor_type.as_str(),
        body.target_id,
        body.target_email,
        body.target_name,
        body.target_type,
        body.service_name,
        ip,
        body.user_agent,
        body.request_id,
        (!meta.is_empty()).then_some(meta),
        event.hash.as_slice(),
        entry::encode_salts(&event.entry, &body.personal_meta),
        leaf.as_slice(),
        extensions,
    ])
    .map_err(backend)?;
    Ok(())
}

/// The statement that rewrites the columns an erasure changes (the personal fields, `meta`,
/// the salts and the extensions); bound by [`rewrite_personal`].
pub const REWRITE_PERSONAL: &str = "UPDATE log SET actor_email = ?2, actor_name = ?3,
        target_email = ?4, target_name = ?5, ip = ?6, user_agent = ?7, meta = ?8, salts = ?9,
        extensions = ?10
    WHERE lsn = ?1";

/// Writes back the row at `lsn` after an erasure changed `event` (`auditlog_core::entry::erase`):
/// every column that holds a personal value, and the salts that commit to them. The rest of
/// the row, its hash and its leaf among them, stays.
pub fn rewrite_personal(
    stmt: &mut CachedStatement<'_>,
    lsn: i64,
    event: &Event,
) -> Result<(), StoreError> {
    let body = &event.body;
    let meta = if body.meta.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&body.meta).map_err(|e| StoreError::Backend(e.to_string()))?)
    };
    stmt.execute(params![
        lsn,
        body.actor_email,
        body.actor_name,
        body.target_email,
        body.target_name,
        body.ip_address.map(encode_ip),
        body.user_agent,
        meta,
        entry::encode_salts(&event.entry, &body.personal_meta),
        encode_extensions(&body.extensions)?,
    ])
    .map_err(backend)?;
    Ok(())
}

/// The stored form of an address: its 4 or 16 bytes.
fn encode_ip(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The stored form of an event's extensions: compact JSON, `None` when it has none.
pub fn encode_extensions(extensions: &Extensions) -> Result<Option<String>, StoreError> {
    if extensions.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(extensions)
        .map(Some)
        .map_err(|e| StoreError::Backend(e.to_string()))
}

/// The log position and organization key of a row selected with [`COLUMNS`].
pub fn lsn_and_org(row: &Row<'_>) -> Result<(i64, i64), StoreError> {
    Ok((row.get(0).map_err(backend)?, row.get(1).map_err(backend)?))
}

/// Reads an event from a row selected with [`COLUMNS`]; it belongs to `org_id`.
pub fn decode(row: &Row<'_>, org_id: Uuid) -> Result<Event, StoreError> {
    let text = |idx: usize| row.get::<_, Option<String>>(idx).map_err(backend);
    let lsn: i64 = row.get(0).map_err(backend)?;
    let id: Vec<u8> = row.get(3).map_err(backend)?;
    let id = Uuid::from_slice(&id)
        .map_err(|_| StoreError::Corrupt(format!("log row {lsn} has a malformed id")))?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("event {id}: {what}"));
    let millis = |idx: usize| -> Result<Timestamp, StoreError> {
        let ms: i64 = row.get(idx).map_err(backend)?;
        Timestamp::from_millis(ms).ok_or_else(|| corrupt("time out of range"))
    };
    let ip: Option<Vec<u8>> = row.get(17).map_err(backend)?;
    let ip_address = match ip.as_deref() {
        None => None,
        Some(bytes) => Some(match bytes.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(bytes).expect("length checked")),
            16 => IpAddr::from(<[u8; 16]>::try_from(bytes).expect("length checked")),
            _ => return Err(corrupt("malformed ip")),
        }),
    };
    let meta = match row.get_ref(20).map_err(backend)?.as_str_or_null() {
        Ok(None) => serde_json::Map::new(),
        Ok(Some(json)) => {
            serde_json::from_str(json).map_err(|_| corrupt("meta is not a JSON object"))?
        }
        Err(_) => return Err(corrupt("meta is not text")),
    };
    let hash: Vec<u8> = row.get(21).map_err(backend)?;
    let seq: i64 = row.get(2).map_err(backend)?;
    let actor_type = text(11)?.unwrap_or_default();
    let salts: Option<Vec<u8>> = row.get(22).map_err(backend)?;
    let (entry, personal_meta) = entry::decode_salts(salts.as_deref()).map_err(|e| corrupt(&e))?;
    let extensions = match row.get_ref(23).map_err(backend)?.as_str_or_null() {
        Ok(None) => Extensions::default(),
        Ok(Some(json)) => {
            serde_json::from_str(json).map_err(|e| corrupt(&format!("extensions: {e}")))?
        }
        Err(_) => return Err(corrupt("extensions is not text")),
    };
    Ok(Event {
        entry,
        id,
        org_id,
        seq: seq as u64,
        created_at: millis(5)?,
        hash: hash
            .try_into()
            .map_err(|_| corrupt("hash is not 32 bytes"))?,
        body: EventBody {
            action_key: text(6)?.ok_or_else(|| corrupt("no action"))?,
            action_verb: text(7)?,
            actor_id: text(8)?,
            actor_email: text(9)?,
            actor_name: text(10)?,
            actor_type: ActorType::parse(&actor_type)
                .ok_or_else(|| corrupt("unknown actor type"))?,
            target_id: text(12)?,
            target_email: text(13)?,
            target_name: text(14)?,
            target_type: text(15)?,
            service_name: text(16)?,
            ip_address,
            user_agent: text(18)?,
            request_id: text(19)?,
            meta,
            occurred_at: millis(4)?,
            personal_meta,
            extensions,
        },
    })
}
