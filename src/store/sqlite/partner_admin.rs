//! Partner admins (schema `0006_partner_admin.sql`): admin token hashes and
//! the subscriber list with filters and keyset pagination (the admin
//! actions are `provision::partner`'s).

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::subscribers;
use crate::domain::lifecycle::SubscriberRecord;
use crate::store::{StoreError, SubscriberQuery};

pub(super) fn set_admin_token(
    conn: &Connection,
    partner_id: &str,
    token_hash: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE partners SET admin_token_hash = ?2, updated_at = max(updated_at, ?3)
             WHERE id = ?1",
        )?
        .execute(params![partner_id, token_hash, now])?;
    if changed != 1 {
        return Err(StoreError::MissingReference {
            entity: "partner",
            id: partner_id.to_string(),
        });
    }
    Ok(())
}

pub(super) fn admin_tokens(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, admin_token_hash FROM partners
         WHERE admin_token_hash IS NOT NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Restricts to the partner's templates; `?1` is the partner id.
const OWNED: &str =
    "provisioning_id IN (SELECT provisioning_id FROM templates WHERE partner_id = ?1)";

/// The SQL text and parameters of a list query (public to the tests, which
/// check its plan).
pub(super) fn list_sql(q: &SubscriberQuery) -> (String, Vec<Value>) {
    let mut clauses = vec![OWNED.to_string()];
    let mut values = vec![Value::Text(q.partner_id.clone())];
    let mut bind = |v: Value| {
        values.push(v);
        format!("?{}", values.len())
    };
    if let Some(pid) = &q.provisioning_id {
        clauses.push(format!(
            "provisioning_id = {}",
            bind(Value::Text(pid.clone()))
        ));
    }
    if let Some(key) = &q.enterprise_key {
        clauses.push(format!(
            "enterprise_key = {}",
            bind(Value::Text(key.as_str().to_string()))
        ));
    }
    if q.statuses.is_empty() {
        clauses.push("status <> 'removed'".into());
    } else {
        let mut names: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let marks: Vec<String> = names
            .into_iter()
            .map(|n| bind(Value::Text(n.to_string())))
            .collect();
        clauses.push(format!("status IN ({})", marks.join(", ")));
    }
    if q.exclude_provisioned {
        clauses.push("status <> 'provisioned'".into());
    }
    if let Some(after) = &q.after {
        clauses.push(format!("id > {}", bind(Value::Text(after.clone()))));
    }
    let limit = bind(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    (
        format!("WHERE {} ORDER BY id LIMIT {limit}", clauses.join(" AND ")),
        values,
    )
}

pub(super) fn list(
    conn: &Connection,
    q: &SubscriberQuery,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    let (tail, values) = list_sql(q);
    subscribers::query_subscribers(conn, &tail, params_from_iter(values))
}

/// The subscriber, if one of the partner's templates holds it.
pub(super) fn owned(
    conn: &Connection,
    partner_id: &str,
    subscriber_id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    let Some(s) = subscribers::subscriber_by_id(conn, subscriber_id)? else {
        return Ok(None);
    };
    let owner: Option<String> = conn
        .prepare_cached("SELECT partner_id FROM templates WHERE provisioning_id = ?1")?
        .query_row([&s.provisioning_id], |r| r.get(0))
        .optional()?;
    Ok((owner.as_deref() == Some(partner_id)).then_some(s))
}
