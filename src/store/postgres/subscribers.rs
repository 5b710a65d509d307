//! Organizations (an enterprise's) and subscriber rows.

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::sql::{exec, get, row, rows, Params};
use crate::domain::ids::{EnterpriseKey, UserId};
use crate::domain::lifecycle::{
    OrganizationRef, SubscriberError, SubscriberRecord, SubscriberStatus, TrunkFlags,
};
use crate::domain::phone::DirectoryNumber;
use crate::store::rows::{encode_errors, SubscriberRow};
use crate::store::tx::OrgOrigin;
use crate::store::StoreError;

const COLUMNS: &str = "id, provisioning_id, user_id, enterprise_key, org_id,
     service_provider_id, group_id, first_name, last_name, email, phone_number, extension,
     mobile_phone_number, language, time_zone, package, status, errors_json, self_activated,
     version, created_at, last_status_change";

fn subscriber_row(r: &Row) -> Result<SubscriberRow, StoreError> {
    Ok(SubscriberRow {
        id: get(r, 0)?,
        provisioning_id: get(r, 1)?,
        user_id: get(r, 2)?,
        enterprise_key: get(r, 3)?,
        org_id: get(r, 4)?,
        service_provider_id: get(r, 5)?,
        group_id: get(r, 6)?,
        first_name: get(r, 7)?,
        last_name: get(r, 8)?,
        email: get(r, 9)?,
        phone_number: get(r, 10)?,
        extension: get(r, 11)?,
        mobile_phone_number: get(r, 12)?,
        language: get(r, 13)?,
        time_zone: get(r, 14)?,
        package: get(r, 15)?,
        status: get(r, 16)?,
        errors_json: get(r, 17)?,
        self_activated: get(r, 18)?,
        version: get(r, 19)?,
        created_at: get(r, 20)?,
        last_status_change: get(r, 21)?,
    })
}

fn decode_all(found: Vec<Row>) -> Result<Vec<SubscriberRecord>, StoreError> {
    found.iter().map(|r| subscriber_row(r)?.decode()).collect()
}

/// Subscribers selected by `tail` (the SQL after `FROM subscribers`),
/// decoded, in the order it gives.
pub(super) async fn query_subscribers<C: GenericClient>(
    c: &C,
    tail: &str,
    params: &Params<'_>,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    decode_all(
        rows(
            c,
            &format!("SELECT {COLUMNS} FROM subscribers {tail}"),
            params,
        )
        .await?,
    )
}

async fn one<C: GenericClient>(
    c: &C,
    tail: &str,
    params: &Params<'_>,
) -> Result<Option<SubscriberRecord>, StoreError> {
    row(
        c,
        &format!("SELECT {COLUMNS} FROM subscribers {tail}"),
        params,
    )
    .await?
    .map(|r| subscriber_row(&r)?.decode())
    .transpose()
}

pub(super) async fn by_id<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    one(c, "WHERE id = $1", &[&id]).await
}

pub(super) async fn by_user_id<C: GenericClient>(
    c: &C,
    user_id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    one(c, "WHERE user_id = $1", &[&user_id]).await
}

pub(super) async fn with_email<C: GenericClient>(
    c: &C,
    email: &str,
    except_id: &str,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    query_subscribers(
        c,
        "WHERE lower(email) = lower($1)
           AND status NOT IN ('removed', 'pending_email_input', 'pending_email_validation')
           AND id <> $2 ORDER BY id",
        &[&email, &except_id],
    )
    .await
}

/// Whether another live subscriber holds `email`. The email's guard row
/// is touched in the same flight: two units of work that asked about one
/// email and did not see each other's answer cannot both commit (snapshot
/// isolation alone would let both through).
pub(super) async fn email_taken<C: GenericClient>(
    c: &C,
    email: &str,
    except_id: Option<&str>,
) -> Result<bool, StoreError> {
    // Prepared first, so the two executions go out in this order.
    let guard = c
        .prepare_cached(
            "INSERT INTO email_guards (email) VALUES (lower($1))
             ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email",
        )
        .await?;
    let taken = c
        .prepare_cached(
            "SELECT 1 FROM subscribers
             WHERE lower(email) = lower($1)
               AND status NOT IN ('removed', 'pending_email_input', 'pending_email_validation')
               AND ($2::TEXT IS NULL OR id <> $2)
             LIMIT 1",
        )
        .await?;
    let (guarded, found) = futures_util::future::join(
        c.execute(&guard, &[&email]),
        c.query_opt(&taken, &[&email, &except_id]),
    )
    .await;
    guarded?;
    Ok(found?.is_some())
}

pub(super) async fn of_org<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    query_subscribers(c, "WHERE org_id = $1 ORDER BY created_at, id", &[&org_id]).await
}

pub(super) async fn insert<C: GenericClient>(
    c: &C,
    r: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    let errors = encode_errors(&r.errors)?;
    exec(
        c,
        "INSERT INTO subscribers (id, provisioning_id, user_id, enterprise_key, org_id,
             service_provider_id, group_id, first_name, last_name, email, phone_number,
             extension, mobile_phone_number, language, time_zone, package, status,
             errors_json, self_activated, version, created_at, last_status_change, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23)",
        &[
            &r.id,
            &r.provisioning_id,
            &r.user_id.as_ref().map(UserId::as_str),
            &r.enterprise_key.as_ref().map(EnterpriseKey::as_str),
            &r.org_id,
            &r.service_provider_id,
            &r.group_id,
            &r.first_name,
            &r.last_name,
            &r.email,
            &r.phone_number.as_ref().map(DirectoryNumber::as_str),
            &r.extension,
            &r.mobile_phone_number.as_ref().map(DirectoryNumber::as_str),
            &r.language,
            &r.time_zone,
            &r.package.as_str(),
            &r.status.as_str(),
            &errors,
            &r.self_activated,
            &r.version,
            &r.created_at,
            &r.last_status_change,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn update<C: GenericClient>(
    c: &C,
    r: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    let errors = encode_errors(&r.errors)?;
    let changed = exec(
        c,
        "UPDATE subscribers SET
             user_id = $2, enterprise_key = $3, org_id = $4, service_provider_id = $5,
             group_id = $6, first_name = $7, last_name = $8, email = $9,
             phone_number = $10, extension = $11, mobile_phone_number = $12,
             language = $13, time_zone = $14, package = $15, status = $16,
             errors_json = $17, self_activated = $18, version = $19,
             last_status_change = $20, updated_at = $21
         WHERE id = $1",
        &[
            &r.id,
            &r.user_id.as_ref().map(UserId::as_str),
            &r.enterprise_key.as_ref().map(EnterpriseKey::as_str),
            &r.org_id,
            &r.service_provider_id,
            &r.group_id,
            &r.first_name,
            &r.last_name,
            &r.email,
            &r.phone_number.as_ref().map(DirectoryNumber::as_str),
            &r.extension,
            &r.mobile_phone_number.as_ref().map(DirectoryNumber::as_str),
            &r.language,
            &r.time_zone,
            &r.package.as_str(),
            &r.status.as_str(),
            &errors,
            &r.self_activated,
            &r.version,
            &r.last_status_change,
            &now,
        ],
    )
    .await?;
    if changed != 1 {
        return Err(StoreError::MissingReference {
            entity: "subscriber",
            id: r.id.clone(),
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn set_status_if<C: GenericClient>(
    c: &C,
    id: &str,
    version: i64,
    from: &[SubscriberStatus],
    to: SubscriberStatus,
    errors: &[SubscriberError],
    now: i64,
) -> Result<bool, StoreError> {
    let errors = encode_errors(errors)?;
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let changed = exec(
        c,
        "UPDATE subscribers
         SET status = $3, errors_json = $4, last_status_change = $5, updated_at = $5
         WHERE id = $1 AND version = $2 AND status = ANY($6)",
        &[&id, &version, &to.as_str(), &errors, &now, &from],
    )
    .await?;
    Ok(changed > 0)
}

pub(super) async fn set_errors<C: GenericClient>(
    c: &C,
    id: &str,
    errors: &[SubscriberError],
    status: Option<SubscriberStatus>,
    now: i64,
) -> Result<(), StoreError> {
    let errors = encode_errors(errors)?;
    match status {
        Some(status) => {
            exec(
                c,
                "UPDATE subscribers SET errors_json = $2, status = $3,
                                        last_status_change = $4, updated_at = $4
                 WHERE id = $1",
                &[&id, &errors, &status.as_str(), &now],
            )
            .await?
        }
        None => {
            exec(
                c,
                "UPDATE subscribers SET errors_json = $2, updated_at = $3 WHERE id = $1",
                &[&id, &errors, &now],
            )
            .await?
        }
    };
    Ok(())
}

pub(super) async fn trunk_flags<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<TrunkFlags, StoreError> {
    let found = row(
        c,
        "SELECT is_trunk_user, has_route_list FROM subscribers WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(match found {
        Some(r) => TrunkFlags {
            is_trunk_user: get(&r, 0)?,
            has_route_list: get(&r, 1)?,
        },
        None => TrunkFlags::default(),
    })
}

pub(super) async fn set_trunk_flags<C: GenericClient>(
    c: &C,
    id: &str,
    f: TrunkFlags,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE subscribers SET is_trunk_user = $2, has_route_list = $3
         WHERE id = $1 AND (is_trunk_user, has_route_list) IS DISTINCT FROM ($2, $3)",
        &[&id, &f.is_trunk_user, &f.has_route_list],
    )
    .await?;
    Ok(())
}

// ---- organizations of enterprises

/// The first AddUsers of a new enterprise on two nodes both find no
/// organization; the second insert breaks the unique key
/// `(partner_id, enterprise_key)`, a conflict, and its unit runs again and
/// finds the first one's. (The enterprise lock that orders commands is
/// taken when they are written, `outbox::insert_all`.)
pub(super) async fn organization_by_key<C: GenericClient>(
    c: &C,
    partner_id: &str,
    key: &EnterpriseKey,
) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT id, name, origin, pending FROM organizations
         WHERE partner_id = $1 AND enterprise_key = $2",
        &[&partner_id, &key.as_str()],
    )
    .await?
    else {
        return Ok(None);
    };
    let org = OrganizationRef {
        id: get(&r, 0)?,
        enterprise_key: key.clone(),
        name: get(&r, 1)?,
    };
    let origin: String = get(&r, 2)?;
    let origin = OrgOrigin::from_columns(&origin, get(&r, 3)?).ok_or_else(|| {
        StoreError::Corrupt(format!("organization '{}' has origin '{origin}'", org.id))
    })?;
    Ok(Some((org, origin)))
}

/// An organization by id (the operator's read-back).
pub(super) async fn organization_by_id<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT id, name, origin, enterprise_key, pending FROM organizations WHERE id = $1",
        &[&id],
    )
    .await?
    else {
        return Ok(None);
    };
    let org = OrganizationRef {
        id: get(&r, 0)?,
        name: get(&r, 1)?,
        enterprise_key: EnterpriseKey::from_stored(get::<String>(&r, 3)?),
    };
    let origin: String = get(&r, 2)?;
    let origin = OrgOrigin::from_columns(&origin, get(&r, 4)?).ok_or_else(|| {
        StoreError::Corrupt(format!("organization '{}' has origin '{origin}'", org.id))
    })?;
    Ok(Some((org, origin)))
}

pub(super) async fn insert_organization<C: GenericClient>(
    c: &C,
    org: &OrganizationRef,
    partner_id: &str,
    provisioning_id: &str,
    origin: OrgOrigin,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO organizations (id, enterprise_key, partner_id, provisioning_id, name,
                                    origin, pending, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &org.id,
            &org.enterprise_key.as_str(),
            &partner_id,
            &provisioning_id,
            &org.name,
            &origin.columns().0,
            &origin.columns().1,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn settle_pending_organization<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE organizations SET pending = FALSE WHERE id = $1",
        &[&org_id],
    )
    .await?;
    Ok(())
}

/// The pending organization `from` gives way to the attached `to` (see
/// the SQLite store: members let go, rows swap, members join `to`).
pub(super) async fn replace_pending_organization<C: GenericClient>(
    c: &C,
    from: &str,
    to: &OrganizationRef,
    partner_id: &str,
    provisioning_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let members: Vec<String> = rows(
        c,
        "UPDATE subscribers SET org_id = NULL WHERE org_id = $1 RETURNING id",
        &[&from],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect::<Result<_, _>>()?;
    exec(
        c,
        "DELETE FROM organizations WHERE id = $1 AND pending",
        &[&from],
    )
    .await?;
    insert_organization(c, to, partner_id, provisioning_id, OrgOrigin::Attached, now).await?;
    exec(
        c,
        "UPDATE subscribers SET org_id = $2 WHERE id = ANY($1)",
        &[&members, &to.id],
    )
    .await?;
    Ok(())
}

pub(super) async fn org_admin<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Option<(String, SubscriberStatus)>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT s.id, s.status FROM organizations o
         JOIN subscribers s ON s.id = o.admin_subscriber_id
         WHERE o.id = $1",
        &[&org_id],
    )
    .await?
    else {
        return Ok(None);
    };
    let (id, status): (String, String) = (get(&r, 0)?, get(&r, 1)?);
    let parsed = SubscriberStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("subscriber '{id}' has status '{status}'")))?;
    Ok(Some((id, parsed)))
}

pub(super) async fn set_org_admin_if_unset<C: GenericClient>(
    c: &C,
    org_id: &str,
    subscriber_id: &str,
) -> Result<bool, StoreError> {
    let changed = exec(
        c,
        "UPDATE organizations SET admin_subscriber_id = $2
         WHERE id = $1 AND origin = 'created' AND admin_subscriber_id IS NULL",
        &[&org_id, &subscriber_id],
    )
    .await?;
    Ok(changed > 0)
}

pub(super) async fn replace_org_admin<C: GenericClient>(
    c: &C,
    org_id: &str,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let changed = exec(
        c,
        "UPDATE organizations SET admin_subscriber_id = $3
         WHERE id = $1 AND admin_subscriber_id = $2",
        &[&org_id, &from, &to],
    )
    .await?;
    Ok(changed > 0)
}

pub(super) async fn unlink_organization<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE subscribers SET org_id = NULL WHERE org_id = $1",
        &[&org_id],
    )
    .await?;
    // A subscriber still naming the organization was added by a transaction
    // this snapshot cannot see (the update above let go of every one it
    // can): another node got there first, so run again.
    let delete = c
        .prepare_cached("DELETE FROM organizations WHERE id = $1")
        .await?;
    match c.execute(&delete, &[&org_id]).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Err(StoreError::Conflict(
            format!("organization {org_id} gained a subscriber meanwhile: {e}"),
        )),
        Err(e) => Err(e.into()),
    }
}
