//! Ops listener routes for device activation codes (docs/licenses.md):
//!
//! * `POST /admin/v1/organizations/{id}/devices`: codes for users, JSON
//!   `{"devices": [{"userId", "deviceType"?, "macAddress"?}]}` or CSV
//!   `user_id,device_type,mac_address`; each goes to the license core like
//!   a BroadWorks `RequestActivationCode`, and the code is emailed.
//! * `GET /admin/v1/organizations/{id}/devices`: the activations allowed,
//!   with their expiry (JSON, or CSV).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::licenses::{csv_or_error, invalid, refused, wants_csv};
use crate::app::App;
use crate::domain::device::DeviceActivation;
use crate::domain::ids::UserId;
use crate::domain::subscriber::mac_address;
use crate::domain::timestamp::iso_millis;
use crate::http::error::json as render;
use crate::http::ResponseBody;
use crate::provision::devices::{DeviceCodeRequest, MAX_DEVICE_REQUESTS};

const MAX_BODY: usize = MAX_DEVICE_REQUESTS * 160;
const CSV_HEADER: [&str; 3] = ["user_id", "device_type", "mac_address"];
/// Longest `deviceType` kept.
const MAX_DEVICE_TYPE: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DevicesDoc {
    devices: Vec<DeviceDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeviceDoc {
    user_id: String,
    #[serde(default)]
    device_type: Option<String>,
    #[serde(default)]
    mac_address: Option<String>,
}

pub(super) async fn request_codes(
    app: &App,
    org_id: &str,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let (csv, bytes) = match super::read_upload(req, MAX_BODY).await {
        Ok(read) => read,
        Err(resp) => return *resp,
    };
    let rows = if csv {
        from_csv(&bytes)
    } else {
        serde_json::from_slice::<DevicesDoc>(&bytes)
            .map(|d| {
                d.devices
                    .into_iter()
                    .map(|d| (d.user_id, d.device_type, d.mac_address))
                    .collect()
            })
            .map_err(|e| format!("devices document: {e}"))
    };
    let requests = match rows.and_then(requests) {
        Ok(r) => r,
        Err(problem) => return invalid(problem),
    };
    let n = requests.len();
    let now = crate::provision::now_millis();
    match app
        .provisioning
        .request_device_codes(org_id, requests, now)
        .await
    {
        Ok(Ok(sent)) => super::json(
            StatusCode::ACCEPTED,
            json!({"organization": org_id, "requested": n, "commands": sent}),
        ),
        Ok(Err(refusal)) => render::operator(&refusal),
        Err(e) => super::unavailable(&e),
    }
}

type Row = (String, Option<String>, Option<String>);

/// `user_id,device_type,mac_address` rows, that header first (the last
/// two may be empty).
fn from_csv(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("CSV: {e}"))?;
    if header.iter().collect::<Vec<_>>() != CSV_HEADER {
        return Err(format!(
            "CSV: the first line must be {}",
            CSV_HEADER.join(",")
        ));
    }
    let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    reader
        .records()
        .enumerate()
        .map(|(i, row)| {
            let row = row.map_err(|e| format!("CSV row {}: {e}", i + 2))?;
            Ok((
                row.get(0).unwrap_or("").to_string(),
                some(row.get(1)),
                some(row.get(2)),
            ))
        })
        .collect()
}

/// The rows checked: user ids, MAC addresses (canonical), device types.
fn requests(rows: Vec<Row>) -> Result<Vec<DeviceCodeRequest>, String> {
    rows.into_iter()
        .enumerate()
        .map(|(i, (user, device_type, mac))| {
            let row = i + 1;
            let user_id = UserId::parse(&user).map_err(|e| format!("row {row}: {e}"))?;
            let mac_address = mac
                .as_deref()
                .map(mac_address)
                .transpose()
                .map_err(|e| format!("row {row}: {e}"))?;
            if let Some(t) = &device_type {
                if t.chars().count() > MAX_DEVICE_TYPE || t.chars().any(char::is_control) {
                    return Err(format!(
                        "row {row}: deviceType: 1 to {MAX_DEVICE_TYPE} characters, no control characters"
                    ));
                }
            }
            Ok(DeviceCodeRequest {
                user_id,
                device_type,
                mac_address,
            })
        })
        .collect()
}

pub(super) async fn activations(
    app: &App,
    org_id: &str,
    req: &Request<Incoming>,
) -> Response<ResponseBody> {
    let list = match app.licenses.device_activations(org_id).await {
        Ok(list) => list,
        Err(e) => return refused(&e),
    };
    let now = crate::provision::now_millis();
    if wants_csv(req) {
        return csv_or_error(
            activations_csv(&list, now),
            &format!("devices-{org_id}.csv"),
        );
    }
    super::json(
        StatusCode::OK,
        json!({
            "organization": org_id,
            "devices": list.iter().map(|d| json!({
                "userId": d.user_id,
                "subscriberId": d.subscriber_id,
                "deviceType": d.device_type,
                "macAddress": d.mac_address,
                "issuedAt": iso_millis(d.issued_at),
                "expiresAt": iso_millis(d.expires_at),
                "expired": d.expires_at <= now,
            })).collect::<Vec<_>>(),
        }),
    )
}

fn activations_csv(list: &[DeviceActivation], now: i64) -> Result<Vec<u8>, csv::Error> {
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
