//! The license core's rows on PostgreSQL: subscriptions, who holds what
//! (with the subscription and the reason), the ledger and each command
//! key's outcome. See SQLite's `licenses.rs` for the same rows.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::sql::{exec, get, limit, row, rows};
use crate::domain::license::AutoLicenseTemplate;
use crate::domain::license::{GrantSource, HolderCursor, HolderRow, Holding};
use crate::domain::license::{LicenseSubscription, SubscriptionUsage};
use crate::domain::license_ledger::LicenseEvent;
use crate::store::license_rows::{HolderIds, HolderState, KeyOutcome};
use crate::store::rows::{
    decode_license_template, decode_quantities, encode_quantities, key_outcome, outcome_columns,
    to_json,
};
use crate::store::StoreError;

const HOLDING_COLUMNS: &str =
    "l.license, l.subscription_id, l.source, l.source_ref, l.command_key, l.granted_at";
const EVENT_COLUMNS: &str = "id, idempotency_key, subscriber_id, org_id, license, action,
     subscription_id, source, source_ref, at";

fn holding(r: &Row, at: usize) -> Result<Holding, StoreError> {
    let source: String = get(r, at + 2)?;
    Ok(Holding {
        license: get(r, at)?,
        subscription_id: get(r, at + 1)?,
        source: GrantSource::parse(&source).unwrap_or(GrantSource::Package),
        source_ref: get(r, at + 3)?,
        command_key: get(r, at + 4)?,
        granted_at: get(r, at + 5)?,
    })
}

fn event(r: &Row) -> Result<LicenseEvent, StoreError> {
    Ok(LicenseEvent {
        id: get(r, 0)?,
        idempotency_key: get(r, 1)?,
        subscriber_id: get(r, 2)?,
        org_id: get(r, 3)?,
        license: get(r, 4)?,
        action: get(r, 5)?,
        subscription_id: get(r, 6)?,
        source: get(r, 7)?,
        source_ref: get(r, 8)?,
        at: get(r, 9)?,
    })
}

fn count(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("license count {n}")))
}

fn subscription(r: &Row) -> Result<LicenseSubscription, StoreError> {
    let id: String = get(r, 0)?;
    let json: String = get(r, 2)?;
    Ok(LicenseSubscription {
        quantities: decode_quantities(&id, &json)?,
        starts_at: get(r, 1)?,
        id,
    })
}

/// `touch`: the rows are rewritten unchanged as they are read. Under
/// REPEATABLE READ (see `lane.rs`) a lock alone would not do: a second
/// transaction whose snapshot predates the first one's commit would wait,
/// then count from its old snapshot. Writing the rows makes first
/// committer win (the other gets a conflict and runs again), so two
/// assignments from one organization's subscriptions never both stand.
pub(super) async fn subscriptions<C: GenericClient>(
    c: &C,
    org_id: &str,
    touch: bool,
) -> Result<Vec<LicenseSubscription>, StoreError> {
    let sql = if touch {
        "UPDATE license_subscriptions SET org_id = org_id WHERE org_id = $1
         RETURNING id, starts_at, quantities_json"
    } else {
        "SELECT id, starts_at, quantities_json FROM license_subscriptions
         WHERE org_id = $1 ORDER BY starts_at, id COLLATE \"C\""
    };
    rows(c, sql, &[&org_id])
        .await?
        .iter()
        .map(subscription)
        .collect()
}

pub(super) async fn usage<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Vec<(String, String, u32)>, StoreError> {
    rows(
        c,
        "SELECT l.subscription_id, l.license, count(*)
         FROM license_subscriptions s
         JOIN licenses l ON l.subscription_id = s.id
         WHERE s.org_id = $1
         GROUP BY 1, 2",
        &[&org_id],
    )
    .await?
    .iter()
    .map(|r| Ok((get(r, 0)?, get(r, 1)?, count(get(r, 2)?)?)))
    .collect()
}

pub(super) async fn subscription_usage<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Vec<SubscriptionUsage>, StoreError> {
    let mut assigned: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (subscription, license, n) in usage(c, org_id).await? {
        assigned.entry(subscription).or_default().insert(license, n);
    }
    Ok(subscriptions(c, org_id, false)
        .await?
        .into_iter()
        .map(|s| SubscriptionUsage {
            assigned: assigned.remove(&s.id).unwrap_or_default(),
            subscription: s,
        })
        .collect())
}

pub(super) async fn subscription_by_id<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<(String, LicenseSubscription)>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT id, starts_at, quantities_json, org_id FROM license_subscriptions WHERE id = $1",
        &[&id],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some((get(&r, 3)?, subscription(&r)?)))
}

pub(super) async fn put_subscription<C: GenericClient>(
    c: &C,
    org_id: &str,
    s: &LicenseSubscription,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO license_subscriptions
             (id, org_id, starts_at, quantities_json, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (id) DO UPDATE SET
             org_id = excluded.org_id, starts_at = excluded.starts_at,
             quantities_json = excluded.quantities_json, updated_at = excluded.updated_at",
        &[
            &s.id,
            &org_id,
            &s.starts_at,
            &encode_quantities(&s.quantities)?,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn holders_page<C: GenericClient>(
    c: &C,
    org_id: &str,
    after: Option<&HolderCursor>,
    limit_to: usize,
) -> Result<Vec<HolderRow>, StoreError> {
    let (user, subscriber, license) = match after {
        Some(c) => (
            c.user_id.as_str(),
            c.subscriber_id.as_str(),
            c.license.as_str(),
        ),
        None => ("", "", ""),
    };
    let sql = format!(
        "SELECT l.subscriber_id, COALESCE(s.user_id, l.user_id), {HOLDING_COLUMNS}
         FROM licenses l LEFT JOIN subscribers s ON s.id = l.subscriber_id
         WHERE l.org_id = $1
           AND (NOT $5 OR (COALESCE(s.user_id, l.user_id) COLLATE \"C\",
                           l.subscriber_id COLLATE \"C\", l.license COLLATE \"C\")
                          > ($2 COLLATE \"C\", $3 COLLATE \"C\", $4 COLLATE \"C\"))
         ORDER BY COALESCE(s.user_id, l.user_id) COLLATE \"C\", l.subscriber_id COLLATE \"C\",
                  l.license COLLATE \"C\"
         LIMIT $6"
    );
    let paged = after.is_some();
    rows(
        c,
        &sql,
        &[
            &org_id,
            &user,
            &subscriber,
            &license,
            &paged,
            &limit(limit_to),
        ],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(HolderRow {
            subscriber_id: get(r, 0)?,
            user_id: get(r, 1)?,
            holding: holding(r, 2)?,
        })
    })
    .collect()
}

pub(super) async fn holdings<C: GenericClient>(
    c: &C,
    subscriber_id: &str,
) -> Result<Vec<Holding>, StoreError> {
    let sql = format!(
        "SELECT {HOLDING_COLUMNS} FROM licenses l WHERE l.subscriber_id = $1 ORDER BY l.license"
    );
    rows(c, &sql, &[&subscriber_id])
        .await?
        .iter()
        .map(|r| holding(r, 0))
        .collect()
}

/// The subscriber's licenses, sorted.
pub(super) async fn licenses<C: GenericClient>(
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
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM license_events WHERE subscriber_id = $1 ORDER BY id");
    rows(c, &sql, &[&subscriber_id])
        .await?
        .iter()
        .map(event)
        .collect()
}

pub(super) async fn organization_partner<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Option<String>, StoreError> {
    row(
        c,
        "SELECT partner_id FROM organizations WHERE id = $1",
        &[&org_id],
    )
    .await?
    .map(|r| get(&r, 0))
    .transpose()
}

pub(super) async fn feed<C: GenericClient>(
    c: &C,
    after: i64,
    n: usize,
) -> Result<Vec<LicenseEvent>, StoreError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM license_events WHERE id > $1 ORDER BY id LIMIT $2");
    rows(c, &sql, &[&after, &limit(n)])
        .await?
        .iter()
        .map(event)
        .collect()
}

pub(super) async fn outcome<C: GenericClient>(
    c: &C,
    key: &str,
) -> Result<Option<KeyOutcome>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT refused_code, refused_detail, notice_code, notice_detail
         FROM license_applied WHERE idempotency_key = $1",
        &[&key],
    )
    .await?
    else {
        return Ok(None);
    };
    let code = |i: usize| -> Result<Option<u32>, StoreError> {
        get::<Option<i32>>(&r, i)?
            .map(|c| {
                u32::try_from(c)
                    .map_err(|_| StoreError::Corrupt(format!("license outcome code {c}")))
            })
            .transpose()
    };
    Ok(Some(key_outcome(
        (code(0)?, get(&r, 1)?),
        (code(2)?, get(&r, 3)?),
    )))
}

pub(super) async fn record_outcome<C: GenericClient>(
    c: &C,
    key: &str,
    outcome: &KeyOutcome,
    now: i64,
) -> Result<(), StoreError> {
    let ((code, detail), (notice, notice_detail)) = outcome_columns(outcome);
    let int = |c: Option<u32>| c.and_then(|c| i32::try_from(c).ok());
    exec(
        c,
        "INSERT INTO license_applied (idempotency_key, applied_at, refused_code, refused_detail,
             notice_code, notice_detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &key,
            &now,
            &int(code),
            &detail,
            &int(notice),
            &notice_detail,
        ],
    )
    .await?;
    Ok(())
}

/// Three statements whatever the number of licenses, sent in one flight
/// (prepared first, so they go out in this order).
pub(super) async fn holder_ids<C: GenericClient>(
    c: &C,
    subscriber_id: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    row(
        c,
        "SELECT user_id, group_id FROM licenses WHERE subscriber_id = $1 LIMIT 1",
        &[&subscriber_id],
    )
    .await?
    .map(|r| Ok((get(&r, 0)?, get(&r, 1)?)))
    .transpose()
}

pub(super) async fn org_holders<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Vec<HolderState>, StoreError> {
    let sql = format!(
        "SELECT l.subscriber_id, l.user_id, l.group_id, {HOLDING_COLUMNS}
         FROM licenses l WHERE l.org_id = $1 ORDER BY l.subscriber_id, l.license"
    );
    let mut out: Vec<HolderState> = Vec::new();
    for r in rows(c, &sql, &[&org_id]).await? {
        let subscriber_id: String = get(&r, 0)?;
        let h = holding(&r, 3)?;
        match out.last_mut() {
            Some(last) if last.subscriber_id == subscriber_id => last.holdings.push(h),
            _ => out.push(HolderState {
                subscriber_id,
                user_id: get(&r, 1)?,
                group_id: get(&r, 2)?,
                holdings: vec![h],
            }),
        }
    }
    Ok(out)
}

pub(super) async fn templates<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<Vec<(String, AutoLicenseTemplate)>, StoreError> {
    rows(
        c,
        "SELECT group_id, licenses_json FROM license_templates WHERE org_id = $1 ORDER BY 1",
        &[&org_id],
    )
    .await?
    .iter()
    .map(|r| {
        let json: String = get(r, 1)?;
        Ok((get(r, 0)?, decode_license_template(org_id, &json)?))
    })
    .collect()
}

pub(super) async fn put_template<C: GenericClient>(
    c: &C,
    org_id: &str,
    group_id: &str,
    template: &AutoLicenseTemplate,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO license_templates (org_id, group_id, licenses_json, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, group_id) DO UPDATE SET
             licenses_json = excluded.licenses_json, updated_at = excluded.updated_at",
        &[
            &org_id,
            &group_id,
            &to_json(template, "license template")?,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn change_holdings<C: GenericClient>(
    c: &C,
    subscriber_id: &str,
    ids: &HolderIds<'_>,
    revoked: &[String],
    granted: &[Holding],
    ledger: &[LicenseEvent],
) -> Result<(), StoreError> {
    let (org_id, user_id, group_id) = (ids.org_id, ids.user_id, ids.group_id);
    // Ledger ids in commit order: whoever writes ledger entries holds this
    // lock until its commit, so an id handed out is never passed by a
    // later one that commits first (a gap can only be a rollback), and the
    // billing feed never skips an entry.
    let lock = c.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
    let revoke = c
        .prepare_cached("DELETE FROM licenses WHERE subscriber_id = $1 AND license = ANY($2)")
        .await?;
    let grant = c
        .prepare_cached(
            "INSERT INTO licenses (subscriber_id, license, subscription_id, source, source_ref,
                                   command_key, granted_at, org_id, user_id, group_id)
             SELECT $1, l, s, src, r, k, t, $8, $9, $10
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                  AS g(l, s, src, r, k, t)",
        )
        .await?;
    let record = c
        .prepare_cached(
            "INSERT INTO license_events (idempotency_key, subscriber_id, org_id, license, action,
                                         subscription_id, source, source_ref, at)
             SELECT k, $1, o, l, a, s, src, r, t
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::bigint[])
                  WITH ORDINALITY AS e(k, o, l, a, s, src, r, t, n)
             ORDER BY n",
        )
        .await?;
    let g_license: Vec<&str> = granted.iter().map(|h| h.license.as_str()).collect();
    let g_subscription: Vec<Option<&str>> = granted
        .iter()
        .map(|h| h.subscription_id.as_deref())
        .collect();
    let g_source: Vec<&str> = granted.iter().map(|h| h.source.as_str()).collect();
    let g_ref: Vec<&str> = granted.iter().map(|h| h.source_ref.as_str()).collect();
    let g_key: Vec<&str> = granted.iter().map(|h| h.command_key.as_str()).collect();
    let g_at: Vec<i64> = granted.iter().map(|h| h.granted_at).collect();
    let e_key: Vec<&str> = ledger.iter().map(|e| e.idempotency_key.as_str()).collect();
    let e_org: Vec<Option<&str>> = ledger.iter().map(|e| e.org_id.as_deref()).collect();
    let e_license: Vec<&str> = ledger.iter().map(|e| e.license.as_str()).collect();
    let e_action: Vec<&str> = ledger.iter().map(|e| e.action.as_str()).collect();
    let e_subscription: Vec<Option<&str>> = ledger
        .iter()
        .map(|e| e.subscription_id.as_deref())
        .collect();
    let e_source: Vec<&str> = ledger.iter().map(|e| e.source.as_str()).collect();
    let e_ref: Vec<&str> = ledger.iter().map(|e| e.source_ref.as_str()).collect();
    let e_at: Vec<i64> = ledger.iter().map(|e| e.at).collect();
    let (locked, (revoked_rows, granted_rows, recorded)) = futures_util::future::join(
        c.execute(&lock, &[&LEDGER_LOCK]),
        futures_util::future::join3(
            c.execute(&revoke, &[&subscriber_id, &revoked]),
            c.execute(
                &grant,
                &[
                    &subscriber_id,
                    &g_license,
                    &g_subscription,
                    &g_source,
                    &g_ref,
                    &g_key,
                    &g_at,
                    &org_id,
                    &user_id,
                    &group_id,
                ],
            ),
            c.execute(
                &record,
                &[
                    &subscriber_id,
                    &e_key,
                    &e_org,
                    &e_license,
                    &e_action,
                    &e_subscription,
                    &e_source,
                    &e_ref,
                    &e_at,
                ],
            ),
        ),
    )
    .await;
    locked?;
    revoked_rows?;
    granted_rows?;
    recorded?;
    Ok(())
}

/// The advisory lock of ledger writers ("bwgate" 02).
const LEDGER_LOCK: i64 = 0x0062_7767_6174_6502;
