//! The license core's rows: subscriptions, who holds what (with the
//! subscription and the reason), the ledger and each command key's outcome.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::tx::SqliteTx;
use crate::domain::license::AutoLicenseTemplate;
use crate::domain::license::{GrantSource, HolderCursor, HolderRow, Holding};
use crate::domain::license::{LicenseSubscription, SubscriptionUsage};
use crate::domain::license_ledger::LicenseEvent;
use crate::store::license_rows::{HolderIds, HolderState, KeyOutcome, LicenseRows};
use crate::store::rows::{
    decode_license_template, decode_quantities, encode_quantities, key_outcome, outcome_columns,
    to_json,
};
use crate::store::StoreError;

const HOLDING_COLUMNS: &str =
    "l.license, l.subscription_id, l.source, l.source_ref, l.command_key, l.granted_at";
const EVENT_COLUMNS: &str = "id, idempotency_key, subscriber_id, org_id, license, action,
     subscription_id, source, source_ref, at";

fn holding(row: &Row<'_>, at: usize) -> rusqlite::Result<Holding> {
    let source: String = row.get(at + 2)?;
    Ok(Holding {
        license: row.get(at)?,
        subscription_id: row.get(at + 1)?,
        // A source this build does not know reads as the package (the
        // column's default).
        source: GrantSource::parse(&source).unwrap_or(GrantSource::Package),
        source_ref: row.get(at + 3)?,
        command_key: row.get(at + 4)?,
        granted_at: row.get(at + 5)?,
    })
}

fn event(row: &Row<'_>) -> rusqlite::Result<LicenseEvent> {
    Ok(LicenseEvent {
        id: row.get(0)?,
        idempotency_key: row.get(1)?,
        subscriber_id: row.get(2)?,
        org_id: row.get(3)?,
        license: row.get(4)?,
        action: row.get(5)?,
        subscription_id: row.get(6)?,
        source: row.get(7)?,
        source_ref: row.get(8)?,
        at: row.get(9)?,
    })
}

fn subscriptions(conn: &Connection, org_id: &str) -> Result<Vec<LicenseSubscription>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, starts_at, quantities_json FROM license_subscriptions
         WHERE org_id = ?1 ORDER BY starts_at, id",
    )?;
    let rows = stmt.query_map([org_id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    rows.map(|r| {
        let (id, starts_at, json) = r?;
        Ok(LicenseSubscription {
            quantities: decode_quantities(&id, &json)?,
            id,
            starts_at,
        })
    })
    .collect()
}

fn usage(conn: &Connection, org_id: &str) -> Result<Vec<(String, String, u32)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.subscription_id, l.license, count(*)
         FROM license_subscriptions s
         JOIN licenses l ON l.subscription_id = s.id
         WHERE s.org_id = ?1
         GROUP BY 1, 2",
    )?;
    let rows = stmt.query_map([org_id], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get::<_, u32>(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn subscription_usage(
    conn: &Connection,
    org_id: &str,
) -> Result<Vec<SubscriptionUsage>, StoreError> {
    let mut assigned: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (subscription, license, n) in usage(conn, org_id)? {
        assigned.entry(subscription).or_default().insert(license, n);
    }
    Ok(subscriptions(conn, org_id)?
        .into_iter()
        .map(|s| SubscriptionUsage {
            assigned: assigned.remove(&s.id).unwrap_or_default(),
            subscription: s,
        })
        .collect())
}

pub(super) fn holders_page(
    conn: &Connection,
    org_id: &str,
    after: Option<&HolderCursor>,
    limit: usize,
) -> Result<Vec<HolderRow>, StoreError> {
    let (user, subscriber, license) = match after {
        Some(c) => (
            c.user_id.as_str(),
            c.subscriber_id.as_str(),
            c.license.as_str(),
        ),
        None => ("", "", ""),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT l.subscriber_id, COALESCE(s.user_id, l.user_id) AS uid, {HOLDING_COLUMNS}
         FROM licenses l LEFT JOIN subscribers s ON s.id = l.subscriber_id
         WHERE l.org_id = ?1
           AND (?5 = 0 OR (COALESCE(s.user_id, l.user_id), l.subscriber_id, l.license) > (?2, ?3, ?4))
         ORDER BY 2, 1, l.license
         LIMIT ?6"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        params![org_id, user, subscriber, license, after.is_some(), limit],
        |row| {
            Ok(HolderRow {
                subscriber_id: row.get(0)?,
                user_id: row.get(1)?,
                holding: holding(row, 2)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn organization_partner(
    conn: &Connection,
    org_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT partner_id FROM organizations WHERE id = ?1")?
        .query_row([org_id], |row| row.get(0))
        .optional()?)
}

pub(super) fn feed(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<LicenseEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM license_events WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![after, limit], event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The subscriber's licenses, sorted.
pub(super) fn licenses(conn: &Connection, subscriber_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT license FROM licenses WHERE subscriber_id = ?1 ORDER BY license")?;
    let rows = stmt.query_map([subscriber_id], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The subscriber's license changes, oldest first.
pub(super) fn license_events(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Vec<LicenseEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM license_events WHERE subscriber_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([subscriber_id], event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl LicenseRows for SqliteTx<'_, '_> {
    fn license_outcome(&self, key: &str) -> Result<Option<KeyOutcome>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT refused_code, refused_detail, notice_code, notice_detail
                 FROM license_applied WHERE idempotency_key = ?1",
            )?
            .query_row([key], |row| {
                Ok((
                    row.get::<_, Option<u32>>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<u32>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        Ok(row.map(|(refused, refused_detail, notice, notice_detail)| {
            key_outcome((refused, refused_detail), (notice, notice_detail))
        }))
    }

    fn record_license_outcome(
        &self,
        key: &str,
        outcome: &KeyOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        let ((code, detail), (notice, notice_detail)) = outcome_columns(outcome);
        self.conn
            .prepare_cached(
                "INSERT INTO license_applied (idempotency_key, applied_at, refused_code,
                     refused_detail, notice_code, notice_detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![key, now, code, detail, notice, notice_detail])?;
        Ok(())
    }

    fn org_subscriptions(&self, org_id: &str) -> Result<Vec<LicenseSubscription>, StoreError> {
        // One writer: nothing to lock.
        subscriptions(self.conn, org_id)
    }

    fn org_license_usage(&self, org_id: &str) -> Result<Vec<(String, String, u32)>, StoreError> {
        usage(self.conn, org_id)
    }

    fn license_subscription(
        &self,
        id: &str,
    ) -> Result<Option<(String, LicenseSubscription)>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT org_id, starts_at, quantities_json FROM license_subscriptions WHERE id = ?1",
            )?
            .query_row([id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        row.map(|(org_id, starts_at, json)| {
            Ok((
                org_id,
                LicenseSubscription {
                    id: id.to_string(),
                    starts_at,
                    quantities: decode_quantities(id, &json)?,
                },
            ))
        })
        .transpose()
    }

    fn put_license_subscription(
        &self,
        org_id: &str,
        s: &LicenseSubscription,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO license_subscriptions
                     (id, org_id, starts_at, quantities_json, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (id) DO UPDATE SET
                     org_id = excluded.org_id, starts_at = excluded.starts_at,
                     quantities_json = excluded.quantities_json, updated_at = excluded.updated_at",
            )?
            .execute(params![
                s.id,
                org_id,
                s.starts_at,
                encode_quantities(&s.quantities)?,
                now
            ])?;
        Ok(())
    }

    fn holdings(&self, subscriber_id: &str) -> Result<Vec<Holding>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HOLDING_COLUMNS} FROM licenses l WHERE l.subscriber_id = ?1 ORDER BY l.license"
        ))?;
        let rows = stmt.query_map([subscriber_id], |row| holding(row, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn holder_ids(
        &self,
        subscriber_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT user_id, group_id FROM licenses WHERE subscriber_id = ?1 LIMIT 1",
            )?
            .query_row([subscriber_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?)
    }

    fn org_holders(&self, org_id: &str) -> Result<Vec<HolderState>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT l.subscriber_id, l.user_id, l.group_id, {HOLDING_COLUMNS}
             FROM licenses l WHERE l.org_id = ?1 ORDER BY l.subscriber_id, l.license"
        ))?;
        let rows = stmt.query_map([org_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                holding(row, 3)?,
            ))
        })?;
        let mut out: Vec<HolderState> = Vec::new();
        for r in rows {
            let (subscriber_id, user_id, group_id, h) = r?;
            match out.last_mut() {
                Some(last) if last.subscriber_id == subscriber_id => last.holdings.push(h),
                _ => out.push(HolderState {
                    subscriber_id,
                    user_id,
                    group_id,
                    holdings: vec![h],
                }),
            }
        }
        Ok(out)
    }

    fn license_templates(
        &self,
        org_id: &str,
    ) -> Result<Vec<(String, AutoLicenseTemplate)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT group_id, licenses_json FROM license_templates WHERE org_id = ?1 ORDER BY 1",
        )?;
        let rows = stmt.query_map([org_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|r| {
            let (group, json) = r?;
            Ok((group, decode_license_template(org_id, &json)?))
        })
        .collect()
    }

    fn put_license_template(
        &self,
        org_id: &str,
        group_id: &str,
        template: &AutoLicenseTemplate,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO license_templates (org_id, group_id, licenses_json, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (org_id, group_id) DO UPDATE SET
                     licenses_json = excluded.licenses_json, updated_at = excluded.updated_at",
            )?
            .execute(params![
                org_id,
                group_id,
                to_json(template, "license template")?,
                now
            ])?;
        Ok(())
    }

    fn set_holder_group(&self, subscriber_id: &str, group_id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE licenses SET group_id = ?2 WHERE subscriber_id = ?1")?
            .execute(params![subscriber_id, group_id])?;
        Ok(())
    }

    fn set_holder_user(&self, subscriber_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE licenses SET user_id = ?2 WHERE subscriber_id = ?1")?
            .execute(params![subscriber_id, user_id])?;
        Ok(())
    }

    fn change_holdings(
        &self,
        subscriber_id: &str,
        ids: &HolderIds<'_>,
        revoked: &[String],
        granted: &[Holding],
        ledger: &[LicenseEvent],
    ) -> Result<(), StoreError> {
        let (org_id, user_id, group_id) = (ids.org_id, ids.user_id, ids.group_id);
        let mut revoke = self
            .conn
            .prepare_cached("DELETE FROM licenses WHERE subscriber_id = ?1 AND license = ?2")?;
        for license in revoked {
            revoke.execute(params![subscriber_id, license])?;
        }
        // A plain INSERT: the primary key refuses a second grant outright.
        let mut grant = self.conn.prepare_cached(
            "INSERT INTO licenses (subscriber_id, license, subscription_id, source, source_ref,
                                   command_key, granted_at, org_id, user_id, group_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for h in granted {
            grant.execute(params![
                subscriber_id,
                h.license,
                h.subscription_id,
                h.source.as_str(),
                h.source_ref,
                h.command_key,
                h.granted_at,
                org_id,
                user_id,
                group_id
            ])?;
        }
        let mut record = self.conn.prepare_cached(
            "INSERT INTO license_events (idempotency_key, subscriber_id, org_id, license, action,
                                         subscription_id, source, source_ref, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for e in ledger {
            record.execute(params![
                e.idempotency_key,
                e.subscriber_id,
                e.org_id,
                e.license,
                e.action,
                e.subscription_id,
                e.source,
                e.source_ref,
                e.at
            ])?;
        }
        Ok(())
    }
}
