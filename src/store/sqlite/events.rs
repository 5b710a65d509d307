//! The provisioning event log and the subscriptions to it (Xsi-Events).
//! Rows hold the domain values as JSON; the columns beside are what the
//! statements select and order on.

use rusqlite::{params, Connection};

use crate::domain::event::{EventSubscription, ProvisioningEvent};
use crate::store::rows::{decode_event, decode_subscription, encode_event, encode_subscription};
use crate::store::StoreError;

pub(super) fn append(conn: &Connection, event: &ProvisioningEvent) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO provisioning_events (at, kind, body) VALUES (?1, ?2, ?3)")?
        .execute(params![event.at, event.kind.as_str(), encode_event(event)?])?;
    Ok(())
}

/// One cached lookup (a few µs, far less than an append).
pub(super) fn any_subscription(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM event_subscriptions)")?
        .query_row([], |row| row.get(0))?)
}

pub(super) fn after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<ProvisioningEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, body FROM provisioning_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![after, limit], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    rows.map(|r| {
        let (seq, body) = r?;
        decode_event(seq, &body)
    })
    .collect()
}

pub(super) fn last_seq(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM provisioning_events")?
        .query_row([], |row| row.get(0))?)
}

pub(super) fn prune(conn: &Connection, before_at: i64, up_to_seq: i64) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM provisioning_events WHERE at < ?1 AND seq <= ?2")?
        .execute(params![before_at, up_to_seq])?;
    Ok(n as u64)
}

pub(super) fn put_subscription(conn: &Connection, s: &EventSubscription) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO event_subscriptions (id, owner, partner_id, body, expires_at, acked_seq, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at,
             acked_seq = MAX(acked_seq, excluded.acked_seq)",
    )?
    .execute(params![
        s.id,
        s.owner,
        s.partner_id,
        encode_subscription(s)?,
        s.expires_at,
        s.acked_seq,
        s.created_at
    ])?;
    Ok(())
}

pub(super) fn delete_subscription(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM event_subscriptions WHERE id = ?1")?
        .execute([id])?
        > 0)
}

pub(super) fn subscriptions(conn: &Connection) -> Result<Vec<EventSubscription>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT body, acked_seq FROM event_subscriptions ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    rows.map(|r| {
        let (body, acked_seq) = r?;
        decode_subscription(&body, acked_seq)
    })
    .collect()
}

pub(super) fn advance_cursor(
    conn: &Connection,
    id: &str,
    acked_seq: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE event_subscriptions SET acked_seq = ?2 WHERE id = ?1 AND acked_seq < ?2",
    )?
    .execute(params![id, acked_seq])?;
    Ok(())
}
