//! Partner admins (schema `0006_partner_admin.sql`): admin token hashes,
//! the subscriber list with filters and keyset pagination, and the admin
//! actions delete and change package. The actions reuse the flow-through
//! rules (`lifecycle::partial_delete`, `lifecycle::apply_changes`) and
//! their storage (`provisioning::store_partial_delete`, `store_change`), so
//! the state change and its outbox commands commit in one transaction.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::provisioning::{store_change, store_partial_delete, write_command};
use super::subscribers;
use crate::commands::{Command, CommandEnvelope, COMMAND_VERSION};
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{self, Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::subscriber::SubscriberChanges;
use crate::domain::{ErrorCode, Package};
use crate::store::{AdminChange, StoreError, SubscriberQuery};

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

fn no_such_subscriber() -> Rejection {
    Rejection::new(ErrorCode::NotFound, "no such subscriber")
}

fn removed() -> Rejection {
    Rejection::new(ErrorCode::NotFound, "the subscriber was removed")
}

/// Writes an admin action's commands (`{trackingId}:partner:{n}` keys).
struct Emitter<'a> {
    conn: &'a Connection,
    tracking_id: &'a str,
    now: i64,
    written: usize,
}

impl Emitter<'_> {
    fn emit(&mut self, key: &EnterpriseKey, command: Command) -> Result<(), StoreError> {
        let envelope = CommandEnvelope {
            version: COMMAND_VERSION,
            idempotency_key: format!("{}:partner:{}", self.tracking_id, self.written),
            enterprise_key: key.clone(),
            tracking_id: self.tracking_id.to_string(),
            issued_at: self.now,
            command,
        };
        write_command(self.conn, &envelope)?;
        self.written += 1;
        Ok(())
    }
}

pub(super) fn delete(
    conn: &Connection,
    partner_id: &str,
    subscriber_id: &str,
    tracking_id: &str,
    now: i64,
) -> Result<Result<AdminChange, Rejection>, StoreError> {
    let Some(current) = owned(conn, partner_id, subscriber_id)? else {
        return Ok(Err(no_such_subscriber()));
    };
    if current.status == SubscriberStatus::Removed {
        return Ok(Err(removed()));
    }
    let mut out = Emitter {
        conn,
        tracking_id,
        now,
        written: 0,
    };
    let next = store_partial_delete(conn, &current, now, &mut |key, command| {
        out.emit(key, command)
    })?;
    Ok(Ok(AdminChange {
        subscriber: next,
        commands_written: out.written,
    }))
}

pub(super) fn change_package(
    conn: &Connection,
    partner_id: &str,
    subscriber_id: &str,
    package: Package,
    tracking_id: &str,
    now: i64,
) -> Result<Result<AdminChange, Rejection>, StoreError> {
    let Some(current) = owned(conn, partner_id, subscriber_id)? else {
        return Ok(Err(no_such_subscriber()));
    };
    let Some(user_id) = current.user_id.clone() else {
        // Only a partial deletion drops the user id.
        return Ok(Err(removed()));
    };
    let changes = SubscriberChanges {
        user_id,
        service_provider_id: current.service_provider_id.clone().unwrap_or_default(),
        group_id: current.group_id.clone().unwrap_or_default(),
        first_name: None,
        last_name: None,
        email: None,
        phone_number: None,
        extension: None,
        mobile_phone_number: None,
        language: None,
        time_zone: None,
        package: Some(package),
        is_trunk_user: None,
        has_route_list: None,
    };
    let (next, package_change) = match lifecycle::apply_changes(&current, &changes, now) {
        Ok(decided) => decided,
        Err(r) => return Ok(Err(r)),
    };
    let mut out = Emitter {
        conn,
        tracking_id,
        now,
        written: 0,
    };
    store_change(
        conn,
        &current,
        &next,
        package_change,
        now,
        &mut |key, command| out.emit(key, command),
    )?;
    Ok(Ok(AdminChange {
        subscriber: next,
        commands_written: out.written,
    }))
}
