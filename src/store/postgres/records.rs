//! Activations and accepted documents (replays).

use deadpool_postgres::GenericClient;

use super::sql::{exec, get, row};
use crate::domain::activation::{Activation, ActivationPurpose};
use crate::domain::lifecycle::OperationResult;
use crate::store::StoreError;

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
