//! Outbox rows: inserting commands, which are due, claiming them; what a
//! delivery outcome means is `provision::delivery`'s.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::commands::CommandEnvelope;
use crate::store::rows::{outbox_state, EntryRow};
use crate::store::{OutboxEntry, OutboxState, StoreError};

const COLUMNS: &str = "o.seq, o.envelope_json, o.state, o.attempts, o.next_attempt_at,
     o.last_error, o.created_at, o.delivered_at";

/// Pending commands due at `now` and not leased, in seq order, at most
/// `limit`, where no returned command has an earlier pending command of
/// its enterprise that is not returned: an enterprise contributes the
/// prefix of its pending commands before its first one still backing off
/// (`next_attempt_at > now`) or leased by a worker, and nothing when that
/// is its head. So a claim of this set never lets two workers hold
/// commands of one enterprise, and keeps their order. The leases running
/// at `now` come in as `?3`, a JSON array of `[enterprise_key, seq]`
/// (`leases.rs`: SQLite keeps them in memory).
///
/// Cost: `blocked` is a range scan of a partial index over the commands
/// backing off (few: a worker backs off only an enterprise's head) plus
/// the leases (at most what the workers hold: a pass's batch each). The
/// outer loop walks `outbox_pending_by_seq` (only pending rows, already in
/// seq order: no sort) checking enterprise and due time from the index
/// alone, and stops after `limit` hits. So an idle outbox costs one empty
/// index probe, a normal backlog O(limit), however many delivered rows the
/// table holds; only when nearly every pending command sits behind a
/// blocked head does it read the whole pending index, cheaply.
/// `INDEXED BY` pins the plans (a test checks them).
const DUE_CTE: &str = "
    WITH blocked (enterprise_key, first_seq) AS MATERIALIZED (
        SELECT enterprise_key, min(seq) FROM (
            SELECT enterprise_key, seq
            FROM outbox INDEXED BY outbox_pending_by_retry
            WHERE state = 'pending' AND next_attempt_at > ?1
            UNION ALL
            SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
            FROM json_each(?3)
        )
        GROUP BY enterprise_key
    )";

/// `<=`: a leased command blocks itself too; one backing off is not due
/// anyway.
const DUE_SEQS: &str = "
    SELECT o.seq
    FROM outbox AS o INDEXED BY outbox_pending_by_seq
    WHERE o.state = 'pending'
      AND o.next_attempt_at <= ?1
      AND NOT EXISTS (
          SELECT 1 FROM blocked AS b
          WHERE b.enterprise_key = o.enterprise_key AND b.first_seq <= o.seq
      )
    ORDER BY o.seq
    LIMIT ?2";

/// What a claim takes (and the read-back of what is due).
fn due_sql() -> String {
    format!(
        "{DUE_CTE}
    SELECT {COLUMNS}, o.enterprise_key FROM outbox AS o WHERE o.seq IN ({DUE_SEQS}) ORDER BY o.seq"
    )
}

/// Built once: the statement cache is keyed by the SQL text.
static DUE_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The due commands (see [`DUE_CTE`]) with their enterprise keys,
/// undecoded: a claim records the keys in its leases, and decodes the rows
/// off the reader.
pub(super) fn due_rows(
    conn: &Connection,
    now: i64,
    limit: usize,
    running_leases: &str,
) -> Result<Vec<(EntryRow, String)>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(DUE_SQL.get_or_init(due_sql))?;
    let rows = stmt.query_map(params![now, limit, running_leases], |row| {
        Ok((entry_row(row)?, row.get::<_, String>(8)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Ends `owner`'s leases on pending commands (a node restarting with a
/// fixed `server.node_id` takes its work back at once).
pub(super) fn release_command_leases(conn: &Connection, owner: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET lease_until = 0
             WHERE state = 'pending' AND lease_until > 0 AND lease_owner = ?1",
        )?
        .execute([owner])?)
}

#[cfg(test)]
pub(super) fn due_sql_for_tests() -> String {
    due_sql()
}

/// Every entry in any state, in seq order (tests).
#[cfg(test)]
pub(super) fn all_entries(conn: &Connection) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM outbox AS o ORDER BY o.seq"))?;
    let rows = stmt.query_map([], entry_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.decode()?);
    }
    Ok(out)
}

pub(super) fn subscriber_commands(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox AS o WHERE o.subscriber_id = ?1 ORDER BY o.seq"
    ))?;
    let rows = stmt.query_map([subscriber_id], entry_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.decode()?);
    }
    Ok(out)
}

/// Rows per state, every state listed (zero included), in declaration order.
pub(super) fn outbox_counts(conn: &Connection) -> Result<Vec<(OutboxState, u64)>, StoreError> {
    let mut counts = [
        (OutboxState::Pending, 0u64),
        (OutboxState::Delivered, 0),
        (OutboxState::Failed, 0),
    ];
    let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        let state = outbox_state(&state)?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(counts.to_vec())
}

/// One entry by seq, any state.
pub(super) fn entry(conn: &Connection, seq: i64) -> Result<Option<OutboxEntry>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox AS o WHERE o.seq = ?1"
        ))?
        .query_row([seq], entry_row)
        .optional()?;
    row.map(EntryRow::decode).transpose()
}

pub(super) fn state(conn: &Connection, seq: i64) -> Result<Option<OutboxState>, StoreError> {
    conn.prepare_cached("SELECT state FROM outbox WHERE seq = ?1")?
        .query_row([seq], |row| row.get::<_, String>(0))
        .optional()?
        .map(|s| outbox_state(&s))
        .transpose()
}

/// Inserts one command as pending, due at its `issued_at`.
pub(super) fn insert_command(
    conn: &Connection,
    envelope: &CommandEnvelope,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(envelope)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode command: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO outbox (idempotency_key, enterprise_key, subscriber_id, kind,
                             envelope_json, state, attempts, next_attempt_at,
                             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
    )?
    .execute(params![
        envelope.idempotency_key,
        envelope.enterprise_key.as_str(),
        envelope.command.subscriber_id(),
        envelope.command.kind(),
        json,
        envelope.issued_at
    ])?;
    Ok(())
}

/// A row as the shared decoding takes it.
pub(super) fn entry_row(row: &Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok(EntryRow {
        seq: row.get(0)?,
        envelope_json: row.get(1)?,
        state: row.get(2)?,
        attempts: row.get(3)?,
        next_attempt_at: row.get(4)?,
        last_error: row.get(5)?,
        created_at: row.get(6)?,
        delivered_at: row.get(7)?,
    })
}
