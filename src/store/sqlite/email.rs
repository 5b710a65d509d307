//! The email outbox (schema `0003_email.sql`). [`enqueue_email`] takes a
//! plain `&Connection` so other store code can write an email inside its
//! own write closure, in the same transaction as the state change the email
//! follows from (then the email exists if and only if the change committed):
//!
//! ```ignore
//! self.write(move |conn| {
//!     subscribers::update_subscriber(conn, &next, now)?;
//!     email::enqueue_email(conn, &activation_mail, now)?;
//!     Ok(())
//! })
//! ```
//!
//! and afterwards wakes the mailer (`notify::Mailer::wake`).
//!
//! A row holds an intent (`intent_json`: what to send, versioned), never
//! words: the mailer composes when it sends. Rows from before migration
//! 0010 (`intent_json` NULL) keep their stored words with placeholders and
//! `secrets_json`, read back as a `Plain` intent and sent as they are.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::email::{EmailKind, EmailMessage};
use crate::store::rows::{email_state, EmailRow};
use crate::store::{EmailFilter, EmailOutcome, EmailRecord, EmailState, StoreError};

const COLUMNS: &str = "id, kind, to_json, subject, text_body, html_body, subscriber_id,
     dedupe_key, state, attempts, next_attempt_at, last_error, created_at, sent_at,
     message_token, message_id, secrets_json, intent_json";

/// Inserts `msg` as a pending email due at `now`. `None` when its
/// `dedupe_key` is already taken (nothing written). Runs on any read-write
/// connection; inside the writer it belongs to the caller's transaction.
pub(crate) fn enqueue_email(
    conn: &Connection,
    msg: &EmailMessage,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let to_json = serde_json::to_string(&msg.to)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode recipients: {e}")))?;
    // What to send and how to make its secrets, never words or secrets.
    let intent_json = msg
        .intent
        .to_stored_json()
        .map_err(|e| StoreError::Corrupt(format!("cannot encode the email intent: {e}")))?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO emails (kind, to_json, subject, text_body, subscriber_id,
                                 dedupe_key, state, attempts, next_attempt_at, created_at,
                                 message_token, intent_json)
             VALUES (?1, ?2, '', '', ?3, ?4, 'pending', 0, ?5, ?5, ?6, ?7)
             ON CONFLICT (dedupe_key) DO NOTHING",
        )?
        .execute(params![
            msg.kind.as_str(),
            to_json,
            msg.subscriber_id,
            msg.dedupe_key,
            now,
            token,
            intent_json,
        ])?;
    Ok((inserted == 1).then(|| conn.last_insert_rowid()))
}

/// When the newest email of `kind` whose dedupe key starts with `prefix`
/// (which ends with `:`) was queued; `None` if there is none. A range scan
/// of the dedupe-key index.
pub(crate) fn last_enqueued_with_key_prefix(
    conn: &Connection,
    kind: EmailKind,
    prefix: &str,
) -> Result<Option<i64>, StoreError> {
    let Some(stem) = prefix.strip_suffix(':') else {
        return Err(StoreError::Database(format!(
            "dedupe key prefix '{prefix}' must end with ':'"
        )));
    };
    // Every key starting with `stem:` sorts in [`stem:`, `stem;`).
    let upper = format!("{stem};");
    Ok(conn
        .prepare_cached(
            "SELECT max(created_at) FROM emails
             WHERE dedupe_key >= ?1 AND dedupe_key < ?2 AND kind = ?3",
        )?
        .query_row(params![prefix, upper, kind.as_str()], |r| {
            r.get::<_, Option<i64>>(0)
        })?)
}

/// Pending, due and not leased: what a claim takes. The due index finds
/// the rows; the lease is read from the row (emails are few).
const DUE_IDS: &str = "
    SELECT id FROM emails INDEXED BY emails_pending_due
    WHERE state = 'pending' AND next_attempt_at <= ?1 AND lease_until <= ?1
    ORDER BY next_attempt_at, id
    LIMIT ?2";

pub(super) fn due_emails(
    conn: &Connection,
    now: i64,
    limit: usize,
) -> Result<Vec<EmailRecord>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM emails INDEXED BY emails_pending_due
         WHERE state = 'pending' AND next_attempt_at <= ?1 AND lease_until <= ?1
         ORDER BY next_attempt_at, id
         LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], email_row)?;
    rows.map(|r| r?.decode()).collect()
}

/// Leases the emails [`due_emails`] would return to `owner` until
/// `lease_until` in one statement; returns them earliest due first.
pub(super) fn claim_emails(
    conn: &Connection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> Result<Vec<EmailRow>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(CLAIM_SQL.get_or_init(|| {
        format!(
            "UPDATE emails SET lease_owner = ?3, lease_until = ?4
             WHERE id IN ({DUE_IDS})
             RETURNING {COLUMNS}"
        )
    }))?;
    let mut out = stmt
        .query_map(params![now, limit, owner, lease_until], email_row)?
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING has no order.
    out.sort_by_key(|e| (e.next_attempt_at, e.id));
    Ok(out)
}

/// Built once: the statement cache is keyed by the SQL text.
static CLAIM_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Ends `owner`'s leases on pending emails.
pub(super) fn release_email_leases(conn: &Connection, owner: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE emails SET lease_until = 0
             WHERE state = 'pending' AND lease_until > 0 AND lease_owner = ?1",
        )?
        .execute([owner])?)
}

pub(super) fn complete_email(
    conn: &Connection,
    id: i64,
    outcome: &EmailOutcome,
    now: i64,
) -> Result<(), StoreError> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM emails WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    let Some(state) = state else {
        return Err(StoreError::MissingReference {
            entity: "email",
            id: id.to_string(),
        });
    };
    if email_state(id, &state)? != EmailState::Pending {
        tracing::debug!(email_id = id, state, "email already settled");
        return Ok(());
    }
    match outcome {
        EmailOutcome::Sent { message_id } => conn
            .prepare_cached(
                "UPDATE emails SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
                                   message_id = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, now, message_id])?,
        EmailOutcome::Retry { error, retry_at } => conn
            .prepare_cached(
                "UPDATE emails SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3,
                                   lease_until = 0
                 WHERE id = ?1",
            )?
            .execute(params![id, retry_at, error])?,
        EmailOutcome::Failed { error } => conn
            .prepare_cached(
                "UPDATE emails SET state = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1",
            )?
            .execute(params![id, error])?,
    };
    if !matches!(outcome, EmailOutcome::Retry { .. }) {
        redact_legacy(conn, id)?;
    }
    Ok(())
}

/// A row written before migration 0008 holds its link or code in clear:
/// once it settled (sent, or failed for good) its words go.
fn redact_legacy(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE emails
         SET subject = CASE kind WHEN 'verification_code'
                           THEN '(redacted: it carried a verification code)'
                           ELSE subject END,
             text_body = '(redacted: the message carried a link or code that is not kept)',
             html_body = NULL, redact_when_settled = 0
         WHERE id = ?1 AND redact_when_settled = 1",
    )?
    .execute([id])?;
    Ok(())
}

pub(super) fn emails(
    conn: &Connection,
    filter: &EmailFilter,
    limit: usize,
) -> Result<Vec<EmailRecord>, StoreError> {
    // Only the conditions that are set, so the matching index (by
    // subscriber, by kind; both in id order) serves the query. At most
    // eight statement shapes, each cached.
    let mut conditions = Vec::new();
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
    let subscriber = filter.subscriber_id.as_deref();
    let kind = filter.kind.map(EmailKind::as_str);
    let state = filter.state.map(EmailState::as_str);
    for (column, value) in [
        ("subscriber_id", subscriber.as_ref()),
        ("kind", kind.as_ref()),
        ("state", state.as_ref()),
    ]
    .into_iter()
    .filter_map(|(c, v)| Some((c, v?)))
    {
        values.push(value);
        conditions.push(format!("{column} = ?{}", values.len()));
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    values.push(&limit);
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM emails {filter_sql} ORDER BY id DESC LIMIT ?{}",
        values.len()
    ))?;
    let rows = stmt.query_map(values.as_slice(), email_row)?;
    rows.map(|r| r?.decode()).collect()
}

pub(super) fn email(conn: &Connection, id: i64) -> Result<Option<EmailRecord>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM emails WHERE id = ?1"))?
        .query_row([id], email_row)
        .optional()?
        .map(EmailRow::decode)
        .transpose()
}

#[cfg(test)]
mod tests;

/// A row as the shared decoding takes it.
pub(super) fn email_row(row: &Row<'_>) -> rusqlite::Result<EmailRow> {
    Ok(EmailRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        to_json: row.get(2)?,
        subject: row.get(3)?,
        text_body: row.get(4)?,
        html_body: row.get(5)?,
        subscriber_id: row.get(6)?,
        dedupe_key: row.get(7)?,
        state: row.get(8)?,
        attempts: row.get(9)?,
        next_attempt_at: row.get(10)?,
        last_error: row.get(11)?,
        created_at: row.get(12)?,
        sent_at: row.get(13)?,
        message_token: row.get(14)?,
        message_id: row.get(15)?,
        secrets_json: row.get(16)?,
        intent_json: row.get(17)?,
    })
}
