//! Webex Calling's inventory and device activations as the operator and
//! partner APIs show them: JSON objects and CSV files.

use serde_json::json;

use crate::domain::calling::{CallingNumber, NumberHolder};
use crate::domain::device::DeviceActivation;
use crate::domain::timestamp::iso_millis;
use crate::license::calling_admin::{CallingReport, LocationUse};

pub fn location_json(l: &LocationUse) -> serde_json::Value {
    json!({
        "id": l.location.id,
        "name": l.location.name,
        "country": l.location.country,
        "numbers": l.numbers,
        "free": l.free,
    })
}

pub fn report_json(org_id: &str, report: &CallingReport) -> serde_json::Value {
    json!({
        "organization": org_id,
        "entitled": report.entitled.iter().map(|u| json!({
            "subscriberId": u.subscriber_id,
            "userId": u.user_id,
            "license": u.license,
            "number": u.number,
            "location": u.location_id,
        })).collect::<Vec<_>>(),
        "withheld": report.withheld.iter().map(|w| json!({
            "subscriberId": w.subscriber_id,
            "userId": w.user_id,
            "phoneNumber": w.directory_number,
            "reason": w.reason,
            "at": iso_millis(w.at),
        })).collect::<Vec<_>>(),
    })
}

pub fn activation_json(d: &DeviceActivation, now: i64) -> serde_json::Value {
    json!({
        "userId": d.user_id,
        "subscriberId": d.subscriber_id,
        "deviceType": d.device_type,
        "macAddress": d.mac_address,
        "issuedAt": iso_millis(d.issued_at),
        "expiresAt": iso_millis(d.expires_at),
        "expired": d.expires_at <= now,
    })
}

/// `(kind, reference, user id)` of a number's holder, empty when free.
fn holder_fields(holder: Option<&NumberHolder>) -> (&str, &str, &str) {
    match holder {
        None => ("", "", ""),
        Some(h @ NumberHolder::User { user_id, .. }) => (h.kind(), h.reference(), user_id),
        Some(h @ NumberHolder::Service { .. }) => (h.kind(), h.reference(), ""),
    }
}

pub fn number_json(n: &CallingNumber) -> serde_json::Value {
    let (kind, reference, user_id) = holder_fields(n.holder.as_ref());
    json!({
        "number": n.number,
        "location": n.location_id,
        "holder": match n.holder {
            None => serde_json::Value::Null,
            Some(NumberHolder::User { .. }) => json!({"kind": kind, "subscriberId": reference, "userId": user_id}),
            Some(NumberHolder::Service { .. }) => json!({"kind": kind, "name": reference}),
        },
        "assignedAt": n.assigned_at.map(iso_millis),
    })
}

pub fn numbers_csv(list: &[CallingNumber]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "number",
        "location",
        "holder_kind",
        "holder",
        "user_id",
        "assigned_at",
    ])?;
    for n in list {
        let (kind, reference, user_id) = holder_fields(n.holder.as_ref());
        let at = n.assigned_at.map(iso_millis).unwrap_or_default();
        w.write_record([
            n.number.as_str(),
            &n.location_id,
            kind,
            reference,
            user_id,
            &at,
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// One row per user: entitled ones with their license and number, the
/// others with the number BroadWorks sent and why.
pub fn users_csv(r: &CallingReport) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "user_id",
        "subscriber_id",
        "calling",
        "license",
        "number",
        "location",
        "reason",
    ])?;
    for u in &r.entitled {
        w.write_record([
            u.user_id.as_str(),
            &u.subscriber_id,
            "entitled",
            &u.license,
            u.number.as_ref().map_or("", |n| n.as_str()),
            u.location_id.as_deref().unwrap_or(""),
            "",
        ])?;
    }
    for x in &r.withheld {
        w.write_record([
            x.user_id.as_str(),
            &x.subscriber_id,
            "withheld",
            "",
            x.directory_number.as_deref().unwrap_or(""),
            "",
            &x.reason,
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

pub fn activations_csv(list: &[DeviceActivation], now: i64) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "user_id",
        "subscriber_id",
        "device_type",
        "mac_address",
        "issued_at",
        "expires_at",
        "expired",
    ])?;
    for d in list {
        w.write_record([
            d.user_id.as_str(),
            &d.subscriber_id,
            d.device_type.as_deref().unwrap_or(""),
            d.mac_address.as_deref().unwrap_or(""),
            &iso_millis(d.issued_at),
            &iso_millis(d.expires_at),
            if d.expires_at <= now { "yes" } else { "no" },
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
