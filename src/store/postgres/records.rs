//! Activations, accepted documents (replays) and the in-process license
//! core's ledger.

use std::collections::BTreeSet;

use deadpool_postgres::GenericClient;

use super::sql::{exec, get, row, rows};
use crate::domain::activation::{Activation, ActivationPurpose};
use crate::domain::lifecycle::OperationResult;
use crate::store::{LicenseEvent, StoreError};

const ACTIVATION_COLUMNS: &str = "subscriber_id, purpose, nonce, link_expires_at,
     pending_email, code_hash, code_expires_at, code_attempts, codes_sent, locked_until,
     completed_at, created_at";

fn count(id: &str, what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("activation of '{id}': {what} {n}")))
}

pub(super) async fn activation<C: GenericClient>(
    c: &C,
    subscriber_id: &str,
) -> Result<Option<Activation>, StoreError> {
    let sql = format!("SELECT {ACTIVATION_COLUMNS} FROM activations WHERE subscriber_id = $1");
    let Some(r) = row(c, &sql, &[&subscriber_id]).await? else {
        return Ok(None);
    };
    let id: String = get(&r, 0)?;
    let purpose: String = get(&r, 1)?;
    let purpose = ActivationPurpose::parse(&purpose).ok_or_else(|| {
        StoreError::Corrupt(format!("activation of '{id}' has purpose '{purpose}'"))
    })?;
    Ok(Some(Activation {
        purpose,
        nonce: get(&r, 2)?,
        link_expires_at: get(&r, 3)?,
        pending_email: get(&r, 4)?,
        code_hash: get(&r, 5)?,
        code_expires_at: get(&r, 6)?,
        code_attempts: count(&id, "code_attempts", get(&r, 7)?)?,
        codes_sent: count(&id, "codes_sent", get(&r, 8)?)?,
        locked_until: get(&r, 9)?,
        completed_at: get(&r, 10)?,
        created_at: get(&r, 11)?,
        subscriber_id: id,
    }))
}

pub(super) async fn put_activation<C: GenericClient>(
    c: &C,
    a: &Activation,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO activations (subscriber_id, purpose, nonce, link_expires_at, pending_email,
                                  code_hash, code_expires_at, code_attempts, codes_sent,
                                  locked_until, completed_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (subscriber_id) DO UPDATE SET
             purpose = $2, nonce = $3, link_expires_at = $4, pending_email = $5,
             code_hash = $6, code_expires_at = $7, code_attempts = $8, codes_sent = $9,
             locked_until = $10, completed_at = $11, updated_at = $13",
        &[
            &a.subscriber_id,
            &a.purpose.as_str(),
            &a.nonce,
            &a.link_expires_at,
            &a.pending_email,
            &a.code_hash,
            &a.code_expires_at,
            &i64::from(a.code_attempts),
            &i64::from(a.codes_sent),
            &a.locked_until,
            &a.completed_at,
            &a.created_at,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn accepted_request<C: GenericClient>(
    c: &C,
    provisioning_id: &str,
    request_id: &str,
) -> Result<Option<(String, Vec<OperationResult>)>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT tracking_id, results_json FROM accepted_requests
         WHERE provisioning_id = $1 AND request_id = $2",
        &[&provisioning_id, &request_id],
    )
    .await?
    else {
        return Ok(None);
    };
    let json: String = get(&r, 1)?;
    let results = serde_json::from_str(&json).map_err(|e| {
        StoreError::Corrupt(format!(
            "accepted request '{request_id}' of '{provisioning_id}': results_json: {e}"
        ))
    })?;
    Ok(Some((get(&r, 0)?, results)))
}

pub(super) async fn record_accepted_request<C: GenericClient>(
    c: &C,
    provisioning_id: &str,
    request_id: &str,
    tracking_id: &str,
    results: &[OperationResult],
    now: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(results)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode results: {e}")))?;
    exec(
        c,
        "INSERT INTO accepted_requests (provisioning_id, request_id, tracking_id,
                                        results_json, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (provisioning_id, request_id)
         DO UPDATE SET results_json = EXCLUDED.results_json",
        &[&provisioning_id, &request_id, &tracking_id, &json, &now],
    )
    .await?;
    Ok(())
}

/// The subscriber's licenses become exactly `licenses`, once per key.
pub(super) async fn apply_licenses<C: GenericClient>(
    c: &C,
    key: &str,
    subscriber_id: &str,
    licenses: &[String],
    now: i64,
) -> Result<bool, StoreError> {
    let first = row(
        c,
        "INSERT INTO license_applied (idempotency_key, applied_at) VALUES ($1, $2)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1",
        &[&key, &now],
    )
    .await?;
    if first.is_none() {
        return Ok(false);
    }
    let held: BTreeSet<String> = held(c, subscriber_id).await?.into_iter().collect();
    let wanted: BTreeSet<&str> = licenses.iter().map(String::as_str).collect();
    let revoked: Vec<&str> = held
        .iter()
        .map(String::as_str)
        .filter(|l| !wanted.contains(l))
        .collect();
    let granted: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|l| !held.contains(*l))
        .collect();
    // The ledger in event order (revocations, then grants), as SQLite's.
    let (mut ledger, mut actions) = (Vec::new(), Vec::new());
    for (license, action) in revoked
        .iter()
        .map(|l| (*l, "revoke"))
        .chain(granted.iter().map(|l| (*l, "grant")))
    {
        ledger.push(license);
        actions.push(action);
    }
    if ledger.is_empty() {
        return Ok(true);
    }
    // Three statements whatever the number of licenses, sent in one flight
    // (prepared first, so they go out in this order).
    let revoke = c
        .prepare_cached("DELETE FROM licenses WHERE subscriber_id = $1 AND license = ANY($2)")
        .await?;
    let grant = c
        .prepare_cached(
            "INSERT INTO licenses (subscriber_id, license, granted_at)
             SELECT $1, l, $3 FROM unnest($2::text[]) AS l",
        )
        .await?;
    let record = c
        .prepare_cached(
            "INSERT INTO license_events (idempotency_key, subscriber_id, license, action, at)
             SELECT $1, $2, l, a, $5
             FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS e(l, a, n)
             ORDER BY n",
        )
        .await?;
    let (revoked_rows, granted_rows, recorded) = futures_util::future::join3(
        c.execute(&revoke, &[&subscriber_id, &revoked]),
        c.execute(&grant, &[&subscriber_id, &granted, &now]),
        c.execute(&record, &[&key, &subscriber_id, &ledger, &actions, &now]),
    )
    .await;
    revoked_rows?;
    granted_rows?;
    recorded?;
    Ok(true)
}

pub(super) async fn held<C: GenericClient>(
    c: &C,
    subscriber_id: &str,
) -> Result<Vec<String>, StoreError> {
    rows(
        c,
        "SELECT license FROM licenses WHERE subscriber_id = $1 ORDER BY license",
        &[&subscriber_id],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}

pub(super) async fn license_events<C: GenericClient>(
    c: &C,
    subscriber_id: &str,
) -> Result<Vec<LicenseEvent>, StoreError> {
    rows(
        c,
        "SELECT idempotency_key, subscriber_id, license, action, at
         FROM license_events WHERE subscriber_id = $1 ORDER BY id",
        &[&subscriber_id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(LicenseEvent {
            idempotency_key: get(r, 0)?,
            subscriber_id: get(r, 1)?,
            license: get(r, 2)?,
            action: get(r, 3)?,
            at: get(r, 4)?,
        })
    })
    .collect()
}
