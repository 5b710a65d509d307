//! The in-process license core's ledger: which licenses each subscriber
//! holds, the idempotency keys already applied, and an audit trail.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use crate::store::{LicenseEvent, StoreError};

/// Runs on the writer thread (one transaction). Returns false, changing
/// nothing, when `key` was applied before.
pub(super) fn apply_licenses(
    conn: &Connection,
    key: &str,
    subscriber_id: &str,
    licenses: &[String],
    now: i64,
) -> Result<bool, StoreError> {
    let seen = conn
        .prepare_cached("SELECT 1 FROM license_applied WHERE idempotency_key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?;
    if seen.is_some() {
        return Ok(false);
    }
    let held: BTreeSet<String> = held(conn, subscriber_id)?.into_iter().collect();
    let wanted: BTreeSet<&str> = licenses.iter().map(String::as_str).collect();

    let mut event = conn.prepare_cached(
        "INSERT INTO license_events (idempotency_key, subscriber_id, license, action, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut revoke =
        conn.prepare_cached("DELETE FROM licenses WHERE subscriber_id = ?1 AND license = ?2")?;
    for license in held.iter().filter(|l| !wanted.contains(l.as_str())) {
        revoke.execute(params![subscriber_id, license])?;
        event.execute(params![key, subscriber_id, license, "revoke", now])?;
    }
    // A plain INSERT: the primary key refuses a second grant outright.
    let mut grant = conn.prepare_cached(
        "INSERT INTO licenses (subscriber_id, license, granted_at) VALUES (?1, ?2, ?3)",
    )?;
    for license in wanted.iter().filter(|l| !held.contains(**l)) {
        grant.execute(params![subscriber_id, license, now])?;
        event.execute(params![key, subscriber_id, license, "grant", now])?;
    }
    conn.prepare_cached(
        "INSERT INTO license_applied (idempotency_key, applied_at) VALUES (?1, ?2)",
    )?
    .execute(params![key, now])?;
    Ok(true)
}

fn held(conn: &Connection, subscriber_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT license FROM licenses WHERE subscriber_id = ?1 ORDER BY license")?;
    let rows = stmt.query_map([subscriber_id], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The subscriber's licenses, sorted.
pub(super) fn licenses(conn: &Connection, subscriber_id: &str) -> Result<Vec<String>, StoreError> {
    held(conn, subscriber_id)
}

/// The subscriber's license changes, oldest first.
pub(super) fn license_events(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Vec<LicenseEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idempotency_key, subscriber_id, license, action, at
         FROM license_events WHERE subscriber_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([subscriber_id], |row| {
        Ok(LicenseEvent {
            idempotency_key: row.get(0)?,
            subscriber_id: row.get(1)?,
            license: row.get(2)?,
            action: row.get(3)?,
            at: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
