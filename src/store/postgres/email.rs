//! The email outbox: intents (what to send); the mailer composes.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::sql::{exec, get, limit, row, rows};
use crate::domain::email::{EmailKind, EmailMessage};
use crate::store::rows::{email_state, EmailRow};
use crate::store::{EmailFilter, EmailOutcome, EmailRecord, EmailState, StoreError};

const COLUMNS: &str = "id, kind, to_json, subscriber_id, dedupe_key, state, attempts,
     next_attempt_at, last_error, created_at, sent_at, message_token, message_id, intent_json";

fn email_row(r: &Row) -> Result<EmailRow, StoreError> {
    Ok(EmailRow {
        id: get(r, 0)?,
        kind: get(r, 1)?,
        to_json: get(r, 2)?,
        // Only SQLite databases from before intents hold composed bodies.
        subject: String::new(),
        text_body: String::new(),
        html_body: None,
        secrets_json: None,
        subscriber_id: get(r, 3)?,
        dedupe_key: get(r, 4)?,
        state: get(r, 5)?,
        attempts: get(r, 6)?,
        next_attempt_at: get(r, 7)?,
        last_error: get(r, 8)?,
        created_at: get(r, 9)?,
        sent_at: get(r, 10)?,
        message_token: get(r, 11)?,
        message_id: get(r, 12)?,
        intent_json: Some(get(r, 13)?),
    })
}

fn decode_all(found: Vec<Row>) -> Result<Vec<EmailRecord>, StoreError> {
    found.iter().map(|r| email_row(r)?.decode()).collect()
}

/// Touches the guard row of a dedupe-key prefix (see `email_key_guards`).
pub(super) async fn guard_key_prefix<C: GenericClient>(
    c: &C,
    prefix: &str,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO email_key_guards (key_prefix) VALUES ($1)
         ON CONFLICT (key_prefix) DO UPDATE SET key_prefix = EXCLUDED.key_prefix",
        &[&prefix],
    )
    .await?;
    Ok(())
}

pub(super) async fn enqueue<C: GenericClient>(
    c: &C,
    msg: &EmailMessage,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let to_json = serde_json::to_string(&msg.to)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode recipients: {e}")))?;
    let intent_json = msg
        .intent
        .to_stored_json()
        .map_err(|e| StoreError::Corrupt(format!("cannot encode the email intent: {e}")))?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let inserted = row(
        c,
        "INSERT INTO emails (kind, to_json, subscriber_id, dedupe_key, intent_json, state,
                             attempts, next_attempt_at, created_at, message_token)
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $7)
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING id",
        &[
            &msg.kind.as_str(),
            &to_json,
            &msg.subscriber_id,
            &msg.dedupe_key,
            &intent_json,
            &now,
            &token,
        ],
    )
    .await?;
    inserted.map(|r| get(&r, 0)).transpose()
}

/// When the newest email of `kind` whose dedupe key starts with `prefix`
/// (which ends with ':') was queued: a range on the key, like SQLite's.
pub(super) async fn last_with_key_prefix<C: GenericClient>(
    c: &C,
    kind: EmailKind,
    prefix: &str,
) -> Result<Option<i64>, StoreError> {
    let Some(stem) = prefix.strip_suffix(':') else {
        return Err(StoreError::Database(format!(
            "dedupe key prefix '{prefix}' must end with ':'"
        )));
    };
    let upper = format!("{stem};");
    let found = row(
        c,
        "SELECT max(created_at) FROM emails
         WHERE dedupe_key >= $1 AND dedupe_key < $2 AND kind = $3",
        &[&prefix, &upper, &kind.as_str()],
    )
    .await?;
    match found {
        Some(r) => get(&r, 0),
        None => Ok(None),
    }
}

pub(super) async fn due<C: GenericClient>(
    c: &C,
    now: i64,
    max: usize,
) -> Result<Vec<EmailRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM emails
         WHERE state = 'pending' AND next_attempt_at <= $1 AND lease_until <= $1
         ORDER BY next_attempt_at, id LIMIT $2"
    );
    decode_all(rows(c, &sql, &[&now, &limit(max)]).await?)
}

/// Emails have no order to keep: rows another node is claiming right now
/// are skipped (`SKIP LOCKED`), not waited for.
pub(super) async fn claim<C: GenericClient>(
    c: &C,
    owner: &str,
    now: i64,
    until: i64,
    max: usize,
) -> Result<Vec<EmailRecord>, StoreError> {
    let sql = format!(
        "UPDATE emails SET lease_owner = $3, lease_until = $4
         WHERE id IN (
             SELECT id FROM emails
             WHERE state = 'pending' AND next_attempt_at <= $1 AND lease_until <= $1
             ORDER BY next_attempt_at, id LIMIT $2
             FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    );
    let mut out = decode_all(rows(c, &sql, &[&now, &limit(max), &owner, &until]).await?)?;
    out.sort_by_key(|e| (e.next_attempt_at, e.id));
    Ok(out)
}

pub(super) async fn release_leases<C: GenericClient>(
    c: &C,
    owner: &str,
) -> Result<u64, StoreError> {
    exec(
        c,
        "UPDATE emails SET lease_until = 0
         WHERE state = 'pending' AND lease_until > 0 AND lease_owner = $1",
        &[&owner],
    )
    .await
}

pub(super) async fn complete<C: GenericClient>(
    c: &C,
    id: i64,
    outcome: &EmailOutcome,
    now: i64,
) -> Result<(), StoreError> {
    let Some(r) = row(
        c,
        "SELECT state FROM emails WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    else {
        return Err(StoreError::MissingReference {
            entity: "email",
            id: id.to_string(),
        });
    };
    let state: String = get(&r, 0)?;
    if email_state(id, &state)? != EmailState::Pending {
        tracing::debug!(email_id = id, state, "email already settled");
        return Ok(());
    }
    match outcome {
        EmailOutcome::Sent { message_id } => {
            exec(
                c,
                "UPDATE emails SET state = 'sent', attempts = attempts + 1, sent_at = $2,
                                   message_id = $3
                 WHERE id = $1",
                &[&id, &now, message_id],
            )
            .await?
        }
        EmailOutcome::Retry { error, retry_at } => {
            exec(
                c,
                "UPDATE emails SET attempts = attempts + 1, next_attempt_at = $2,
                                   last_error = $3, lease_until = 0
                 WHERE id = $1",
                &[&id, retry_at, error],
            )
            .await?
        }
        EmailOutcome::Failed { error } => {
            exec(
                c,
                "UPDATE emails SET state = 'failed', attempts = attempts + 1, last_error = $2
                 WHERE id = $1",
                &[&id, error],
            )
            .await?
        }
    };
    Ok(())
}

pub(super) async fn list<C: GenericClient>(
    c: &C,
    filter: &EmailFilter,
    max: usize,
) -> Result<Vec<EmailRecord>, StoreError> {
    let kind = filter.kind.map(EmailKind::as_str);
    let state = filter.state.map(EmailState::as_str);
    let mut conditions = Vec::new();
    let mut values: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(s) = &filter.subscriber_id {
        values.push(s);
        conditions.push(format!("subscriber_id = ${}", values.len()));
    }
    if let Some(k) = &kind {
        values.push(k);
        conditions.push(format!("kind = ${}", values.len()));
    }
    if let Some(s) = &state {
        values.push(s);
        conditions.push(format!("state = ${}", values.len()));
    }
    let max = limit(max);
    values.push(&max);
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM emails {filter_sql} ORDER BY id DESC LIMIT ${}",
        values.len()
    );
    decode_all(rows(c, &sql, &values).await?)
}

pub(super) async fn one<C: GenericClient>(
    c: &C,
    id: i64,
) -> Result<Option<EmailRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM emails WHERE id = $1");
    row(c, &sql, &[&id])
        .await?
        .map(|r| email_row(&r)?.decode())
        .transpose()
}

/// Ids of the emails of `kind` whose dedupe key starts with `prefix`, newest first.
pub(super) async fn ids_with_key_prefix<C: GenericClient>(
    c: &C,
    kind: EmailKind,
    prefix: &str,
) -> Result<Vec<i64>, StoreError> {
    rows(
        c,
        "SELECT id FROM emails WHERE kind = $1 AND starts_with(dedupe_key, $2) ORDER BY id DESC",
        &[&kind.as_str(), &prefix],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}
