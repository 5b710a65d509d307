//! The license core's data as the operator and partner APIs show it:
//! JSON objects and CSV files (one writer for both faces).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::json;

use crate::domain::license::{HolderCursor, HolderRow, SubscriptionUsage};
use crate::domain::license_ledger::LicenseEvent;
use crate::domain::timestamp::iso_millis;
use crate::license::admin::HolderPage;

pub fn subscription_json(u: &SubscriptionUsage) -> serde_json::Value {
    let available: BTreeMap<&String, u32> = u
        .subscription
        .quantities
        .iter()
        .map(|(l, n)| (l, n.saturating_sub(u.assigned.get(l).copied().unwrap_or(0))))
        .collect();
    json!({
        "id": u.subscription.id,
        "startsAt": iso_millis(u.subscription.starts_at),
        "quantities": u.subscription.quantities,
        "assigned": u.assigned,
        "available": available,
    })
}

pub fn holder_json(r: &HolderRow) -> serde_json::Value {
    let h = &r.holding;
    json!({
        "subscriberId": r.subscriber_id,
        "userId": r.user_id,
        "license": h.license,
        "subscriptionId": h.subscription_id,
        "source": h.source.as_str(),
        "sourceRef": h.source_ref,
        "commandKey": h.command_key,
        "grantedAt": iso_millis(h.granted_at),
    })
}

pub fn event_json(e: &LicenseEvent) -> serde_json::Value {
    json!({
        "id": e.id,
        "at": iso_millis(e.at),
        "action": e.action,
        "license": e.license,
        "subscriberId": e.subscriber_id,
        "organizationId": e.org_id,
        "subscriptionId": e.subscription_id,
        "source": e.source,
        "sourceRef": e.source_ref,
        "commandKey": e.idempotency_key,
    })
}

pub fn holders_csv(rows: &[HolderRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "subscriber_id",
        "user_id",
        "license",
        "subscription_id",
        "source",
        "source_ref",
        "command_key",
        "granted_at",
    ])?;
    for r in rows {
        let h = &r.holding;
        w.write_record([
            r.subscriber_id.as_str(),
            &r.user_id,
            &h.license,
            h.subscription_id.as_deref().unwrap_or(""),
            h.source.as_str(),
            &h.source_ref,
            &h.command_key,
            &iso_millis(h.granted_at),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

pub fn ledger_csv(events: &[LicenseEvent]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "at",
        "action",
        "license",
        "subscriber_id",
        "organization_id",
        "subscription_id",
        "source",
        "source_ref",
        "command_key",
    ])?;
    for e in events {
        w.write_record([
            e.id.to_string().as_str(),
            &iso_millis(e.at),
            &e.action,
            &e.license,
            &e.subscriber_id,
            e.org_id.as_deref().unwrap_or(""),
            e.subscription_id.as_deref().unwrap_or(""),
            &e.source,
            &e.source_ref,
            &e.idempotency_key,
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Rows of the holders report per JSON page unless `limit` says.
pub const HOLDERS_PAGE: usize = 1_000;
pub const HOLDERS_PAGE_MAX: usize = 10_000;

/// `after` (a cursor from a page's `next`) and `limit` from a query.
pub fn holder_page(query: Option<&str>) -> Result<HolderPage, String> {
    let mut page = HolderPage {
        after: None,
        limit: HOLDERS_PAGE,
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "after" => {
                page.after = Some(
                    decode_cursor(&value)
                        .ok_or_else(|| format!("after '{value}': a page's next cursor"))?,
                )
            }
            "limit" => {
                page.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=HOLDERS_PAGE_MAX).contains(n))
                    .ok_or_else(|| format!("limit must be between 1 and {HOLDERS_PAGE_MAX}"))?
            }
            "format" => {}
            other => {
                return Err(format!(
                    "unknown parameter '{other}' (after, limit, format)"
                ))
            }
        }
    }
    Ok(page)
}

/// The cursor of the page after `rows` (`None`: it was the last).
pub fn next_cursor(rows: &[HolderRow], page: &HolderPage) -> Option<String> {
    if rows.len() < page.limit {
        return None;
    }
    let last = HolderCursor::after(rows.last()?);
    let json = serde_json::to_vec(&last).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(s: &str) -> Option<HolderCursor> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// A page of the holders report as JSON: its rows and the next cursor.
pub fn holders_page_json(org_id: &str, rows: &[HolderRow], page: &HolderPage) -> serde_json::Value {
    serde_json::json!({
        "organization": org_id,
        "holders": rows.iter().map(holder_json).collect::<Vec<_>>(),
        "next": next_cursor(rows, page),
    })
}
