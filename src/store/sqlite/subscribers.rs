//! SQL for organizations and subscriber rows: encoding a
//! [`SubscriberRecord`] into its row and back. Used by the writer
//! (`provisioning.rs`, `outbox.rs`) and by the read-side lookups.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::ids::{EnterpriseKey, UserId};
use crate::domain::lifecycle::{
    OrganizationRef, SubscriberError, SubscriberRecord, SubscriberStatus,
};
use crate::domain::phone::DirectoryNumber;
use crate::store::rows::{encode_errors, SubscriberRow};
use crate::store::tx::OrgOrigin;
use crate::store::StoreError;

/// Enterprises are keyed per partner: two partners' AS may both have a
/// service provider called "acme", and they are different customers.
pub(super) fn organization_by_key(
    conn: &Connection,
    partner_id: &str,
    key: &EnterpriseKey,
) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
    let org: Option<(OrganizationRef, String, bool)> = conn
        .prepare_cached(
            "SELECT id, name, origin, pending FROM organizations
             WHERE partner_id = ?1 AND enterprise_key = ?2",
        )?
        .query_row([partner_id, key.as_str()], |row| {
            Ok((
                OrganizationRef {
                    id: row.get(0)?,
                    enterprise_key: key.clone(),
                    name: row.get(1)?,
                },
                row.get(2)?,
                row.get(3)?,
            ))
        })
        .optional()?;
    org.map(|(org, origin, pending)| {
        OrgOrigin::from_columns(&origin, pending)
            .map(|o| (org.clone(), o))
            .ok_or_else(|| {
                StoreError::Corrupt(format!("organization '{}' has origin '{origin}'", org.id))
            })
    })
    .transpose()
}

/// An organization by id (the operator's read-back).
pub(super) fn organization_by_id(
    conn: &Connection,
    id: &str,
) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
    let org: Option<(OrganizationRef, String, bool)> = conn
        .prepare_cached(
            "SELECT id, name, origin, enterprise_key, pending FROM organizations WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok((
                OrganizationRef {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    enterprise_key: EnterpriseKey::from_stored(row.get::<_, String>(3)?),
                },
                row.get(2)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    org.map(
        |(org, origin, pending)| match OrgOrigin::from_columns(&origin, pending) {
            Some(o) => Ok((org, o)),
            None => Err(StoreError::Corrupt(format!(
                "organization '{}' has origin '{origin}'",
                org.id
            ))),
        },
    )
    .transpose()
}

/// Inserts an organization. A second organization for the same enterprise
/// fails on the UNIQUE constraint (never two, whatever the caller did).
pub(super) fn insert_organization(
    conn: &Connection,
    org: &OrganizationRef,
    partner_id: &str,
    provisioning_id: &str,
    origin: OrgOrigin,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO organizations (id, enterprise_key, partner_id, provisioning_id, name,
                                    origin, pending, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        org.id,
        org.enterprise_key.as_str(),
        partner_id,
        provisioning_id,
        org.name,
        origin.columns().0,
        origin.columns().1,
        now
    ])?;
    Ok(())
}

/// The pending organization `from` gives way to the attached `to`: its
/// subscribers are let go (the foreign key), the rows swap, and they join
/// `to`.
pub(super) fn replace_pending_organization(
    conn: &Connection,
    from: &str,
    to: &OrganizationRef,
    partner_id: &str,
    provisioning_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let members: Vec<String> = conn
        .prepare_cached("SELECT id FROM subscribers WHERE org_id = ?1")?
        .query_map([from], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.prepare_cached("UPDATE subscribers SET org_id = NULL WHERE org_id = ?1")?
        .execute([from])?;
    conn.prepare_cached("DELETE FROM organizations WHERE id = ?1 AND pending = 1")?
        .execute([from])?;
    insert_organization(
        conn,
        to,
        partner_id,
        provisioning_id,
        OrgOrigin::Attached,
        now,
    )?;
    let mut join = conn.prepare_cached("UPDATE subscribers SET org_id = ?2 WHERE id = ?1")?;
    for id in &members {
        join.execute([id.as_str(), to.id.as_str()])?;
    }
    Ok(())
}

/// Whether a subscriber other than `except_id` that is not removed already
/// uses `email` (case-insensitively).
pub(super) fn email_taken(
    conn: &Connection,
    email: &str,
    except_id: Option<&str>,
) -> Result<bool, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT 1 FROM subscribers
             WHERE email = ?1 COLLATE NOCASE
               AND status NOT IN ('removed', 'pending_email_input', 'pending_email_validation')
               AND (?2 IS NULL OR id <> ?2)
             LIMIT 1",
        )?
        .query_row(params![email, except_id], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

const COLUMNS: &str = "id, provisioning_id, user_id, enterprise_key, org_id,
     service_provider_id, group_id, first_name, last_name, email, phone_number, extension,
     mobile_phone_number, language, time_zone, package, status, errors_json, self_activated,
     version, created_at, last_status_change";

pub(super) fn subscriber_by_user_id(
    conn: &Connection,
    user_id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM subscribers WHERE user_id = ?1"
        ))?
        .query_row([user_id], subscriber_row)
        .optional()?;
    row.map(SubscriberRow::decode).transpose()
}

pub(super) fn subscriber_by_id(
    conn: &Connection,
    id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM subscribers WHERE id = ?1"))?
        .query_row([id], subscriber_row)
        .optional()?;
    row.map(SubscriberRow::decode).transpose()
}

/// Every subscriber row of an organization (any status), oldest first.
pub(super) fn subscribers_of_org(
    conn: &Connection,
    org_id: &str,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM subscribers WHERE org_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([org_id], subscriber_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.decode()?);
    }
    Ok(out)
}

/// Subscribers selected by `tail` (the SQL after `FROM subscribers`:
/// WHERE, ORDER BY, LIMIT), decoded, in the order it gives.
pub(super) fn query_subscribers(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM subscribers {tail}"))?;
    let rows = stmt.query_map(params, subscriber_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.decode()?);
    }
    Ok(out)
}

pub(super) fn insert_subscriber(
    conn: &Connection,
    r: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    let errors = encode_errors(&r.errors)?;
    conn.prepare_cached(
        "INSERT INTO subscribers (id, provisioning_id, user_id, enterprise_key, org_id,
             service_provider_id, group_id, first_name, last_name, email, phone_number,
             extension, mobile_phone_number, language, time_zone, package, status,
             errors_json, self_activated, version, created_at, last_status_change, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        r.id,
        r.provisioning_id,
        r.user_id.as_ref().map(UserId::as_str),
        r.enterprise_key.as_ref().map(EnterpriseKey::as_str),
        r.org_id,
        r.service_provider_id,
        r.group_id,
        r.first_name,
        r.last_name,
        r.email,
        r.phone_number.as_ref().map(DirectoryNumber::as_str),
        r.extension,
        r.mobile_phone_number.as_ref().map(DirectoryNumber::as_str),
        r.language,
        r.time_zone,
        r.package.as_str(),
        r.status.as_str(),
        errors,
        r.self_activated,
        r.version,
        r.created_at,
        r.last_status_change,
        now
    ])?;
    Ok(())
}

/// Writes every mutable column of `r` to its row (matched by id).
pub(super) fn update_subscriber(
    conn: &Connection,
    r: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    let errors = encode_errors(&r.errors)?;
    let changed = conn
        .prepare_cached(
            "UPDATE subscribers SET
                 user_id = ?2, enterprise_key = ?3, org_id = ?4, service_provider_id = ?5,
                 group_id = ?6, first_name = ?7, last_name = ?8, email = ?9,
                 phone_number = ?10, extension = ?11, mobile_phone_number = ?12,
                 language = ?13, time_zone = ?14, package = ?15, status = ?16,
                 errors_json = ?17, self_activated = ?18, version = ?19,
                 last_status_change = ?20, updated_at = ?21
             WHERE id = ?1",
        )?
        .execute(params![
            r.id,
            r.user_id.as_ref().map(UserId::as_str),
            r.enterprise_key.as_ref().map(EnterpriseKey::as_str),
            r.org_id,
            r.service_provider_id,
            r.group_id,
            r.first_name,
            r.last_name,
            r.email,
            r.phone_number.as_ref().map(DirectoryNumber::as_str),
            r.extension,
            r.mobile_phone_number.as_ref().map(DirectoryNumber::as_str),
            r.language,
            r.time_zone,
            r.package.as_str(),
            r.status.as_str(),
            errors,
            r.self_activated,
            r.version,
            r.last_status_change,
            now
        ])?;
    if changed != 1 {
        return Err(StoreError::MissingReference {
            entity: "subscriber",
            id: r.id.clone(),
        });
    }
    Ok(())
}

/// `Tx::set_status_if`.
pub(super) fn set_status_if(
    conn: &Connection,
    id: &str,
    version: i64,
    from: &[SubscriberStatus],
    to: SubscriberStatus,
    errors: &[SubscriberError],
    now: i64,
) -> Result<bool, StoreError> {
    // At most a few statuses: a fixed placeholder list keeps it one cached
    // statement per length.
    let marks = (0..from.len())
        .map(|i| format!("?{}", i + 6))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE subscribers
         SET status = ?3, errors_json = ?4, last_status_change = ?5, updated_at = ?5
         WHERE id = ?1 AND version = ?2 AND status IN ({marks})"
    );
    let errors = encode_errors(errors)?;
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id, &version];
    let to = to.as_str();
    values.extend([&to as &dyn rusqlite::ToSql, &errors, &now]);
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    values.extend(from.iter().map(|s| s as &dyn rusqlite::ToSql));
    let changed = conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    Ok(changed > 0)
}

/// `Tx::set_errors`.
pub(super) fn set_errors(
    conn: &Connection,
    id: &str,
    errors: &[SubscriberError],
    status: Option<SubscriberStatus>,
    now: i64,
) -> Result<(), StoreError> {
    let errors = encode_errors(errors)?;
    match status {
        Some(status) => conn
            .prepare_cached(
                "UPDATE subscribers SET errors_json = ?2, status = ?3,
                                        last_status_change = ?4, updated_at = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, errors, status.as_str(), now])?,
        None => conn
            .prepare_cached(
                "UPDATE subscribers SET errors_json = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, errors, now])?,
    };
    Ok(())
}

/// A subscriber row as the shared decoding takes it.
pub(super) fn subscriber_row(row: &Row<'_>) -> rusqlite::Result<SubscriberRow> {
    Ok(SubscriberRow {
        id: row.get(0)?,
        provisioning_id: row.get(1)?,
        user_id: row.get(2)?,
        enterprise_key: row.get(3)?,
        org_id: row.get(4)?,
        service_provider_id: row.get(5)?,
        group_id: row.get(6)?,
        first_name: row.get(7)?,
        last_name: row.get(8)?,
        email: row.get(9)?,
        phone_number: row.get(10)?,
        extension: row.get(11)?,
        mobile_phone_number: row.get(12)?,
        language: row.get(13)?,
        time_zone: row.get(14)?,
        package: row.get(15)?,
        status: row.get(16)?,
        errors_json: row.get(17)?,
        self_activated: row.get(18)?,
        version: row.get(19)?,
        created_at: row.get(20)?,
        last_status_change: row.get(21)?,
    })
}
