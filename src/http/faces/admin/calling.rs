//! Ops listener routes for the Webex Calling inventory (docs/licenses.md):
//!
//! * `PUT …/organizations/{id}/calling/locations/{locationId}`:
//!   `{"name", "country"}` (ISO 3166-1 alpha-2), add or rename.
//! * `GET …/calling/locations`: with numbers and free numbers counted.
//! * `POST …/calling/locations/{locationId}/numbers`: JSON
//!   `{"numbers": [{"number", "service"?}]}` or CSV `number,service`.
//! * `GET …/calling/numbers`: every number and its holder (JSON or CSV).
//! * `GET …/calling/users`: who has Calling with which number, who was
//!   provisioned without it and why (JSON or CSV).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::licenses::{csv_or_error, invalid, read_json, refused, wants_csv};
use crate::app::App;
use crate::domain::calling::{CallingLocation, CallingNumber, NumberHolder};
use crate::domain::timestamp::iso_millis;
use crate::http::ResponseBody;
use crate::license::calling_admin::{CallingReport, NumberEntry, MAX_NUMBERS_PER_REQUEST};

/// Room for the most numbers a request may add, as CSV or JSON.
const NUMBERS_MAX_BODY: usize = MAX_NUMBERS_PER_REQUEST * 96;
const NUMBERS_CSV_HEADER: &str = "number";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LocationDoc {
    name: String,
    country: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NumbersDoc {
    numbers: Vec<NumberDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NumberDoc {
    number: String,
    #[serde(default)]
    service: Option<String>,
}

pub(super) async fn put_location(
    app: &App,
    org_id: &str,
    location_id: &str,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let doc: LocationDoc = match read_json(req).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return invalid("a location document {\"name\", \"country\"} is required".into())
        }
        Err(resp) => return *resp,
    };
    let location = CallingLocation {
        id: location_id.to_string(),
        name: doc.name,
        country: doc.country,
    };
    let now = crate::provision::now_millis();
    match app.licenses.put_location(org_id, location, now).await {
        Ok(created) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            super::json(
                status,
                json!({"organization": org_id, "location": location_id}),
            )
        }
        Err(e) => refused(&e),
    }
}

pub(super) async fn locations(app: &App, org_id: &str) -> Response<ResponseBody> {
    match app.licenses.locations(org_id).await {
        Ok(list) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "locations": list.iter().map(|l| json!({
                    "id": l.location.id,
                    "name": l.location.name,
                    "country": l.location.country,
                    "numbers": l.numbers,
                    "free": l.free,
                })).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => refused(&e),
    }
}

pub(super) async fn add_numbers(
    app: &App,
    org_id: &str,
    location_id: &str,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let (csv, bytes) = match super::read_upload(req, NUMBERS_MAX_BODY).await {
        Ok(read) => read,
        Err(resp) => return *resp,
    };
    let entries = if csv {
        match entries_from_csv(&bytes) {
            Ok(e) => e,
            Err(problem) => return invalid(problem),
        }
    } else {
        match serde_json::from_slice::<NumbersDoc>(&bytes) {
            Ok(doc) => doc
                .numbers
                .into_iter()
                .map(|n| NumberEntry {
                    number: n.number,
                    service: n.service,
                })
                .collect(),
            Err(e) => return invalid(format!("numbers document: {e}")),
        }
    };
    let now = crate::provision::now_millis();
    match app
        .licenses
        .add_numbers(org_id, location_id, entries, now)
        .await
    {
        Ok(r) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "location": location_id,
                "added": r.added,
                "unchanged": r.unchanged,
            }),
        ),
        Err(e) => refused(&e),
    }
}

/// `number[,service]` rows, that header first.
fn entries_from_csv(bytes: &[u8]) -> Result<Vec<NumberEntry>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("CSV: {e}"))?;
    let columns: Vec<&str> = header.iter().collect();
    if columns != [NUMBERS_CSV_HEADER] && columns != [NUMBERS_CSV_HEADER, "service"] {
        return Err("CSV: the first line must be number or number,service".into());
    }
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("CSV row {}: {e}", i + 2))?;
        match row.get(0) {
            Some(number) if !number.is_empty() && row.len() <= 2 => out.push(NumberEntry {
                number: number.to_string(),
                service: row.get(1).filter(|s| !s.is_empty()).map(str::to_string),
            }),
            _ => {
                return Err(format!(
                    "CSV row {}: a number, then a service or nothing",
                    i + 2
                ))
            }
        }
    }
    Ok(out)
}

pub(super) async fn numbers(
    app: &App,
    org_id: &str,
    req: &Request<Incoming>,
) -> Response<ResponseBody> {
    let list = match app.licenses.numbers(org_id).await {
        Ok(list) => list,
        Err(e) => return refused(&e),
    };
    if wants_csv(req) {
        return csv_or_error(numbers_csv(&list), &format!("calling-numbers-{org_id}.csv"));
    }
    super::json(
        StatusCode::OK,
        json!({
            "organization": org_id,
            "numbers": list.iter().map(number_json).collect::<Vec<_>>(),
        }),
    )
}

pub(super) async fn users(
    app: &App,
    org_id: &str,
    req: &Request<Incoming>,
) -> Response<ResponseBody> {
    let report = match app.licenses.calling_report(org_id).await {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    if wants_csv(req) {
        return csv_or_error(users_csv(&report), &format!("calling-users-{org_id}.csv"));
    }
    super::json(
        StatusCode::OK,
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
        }),
    )
}

/// `(kind, reference, user id)` of a number's holder, empty when free.
fn holder_fields(holder: Option<&NumberHolder>) -> (&str, &str, &str) {
    match holder {
        None => ("", "", ""),
        Some(h @ NumberHolder::User { user_id, .. }) => (h.kind(), h.reference(), user_id),
        Some(h @ NumberHolder::Service { .. }) => (h.kind(), h.reference(), ""),
    }
}

fn number_json(n: &CallingNumber) -> serde_json::Value {
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

fn numbers_csv(list: &[CallingNumber]) -> Result<Vec<u8>, csv::Error> {
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
fn users_csv(r: &CallingReport) -> Result<Vec<u8>, csv::Error> {
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
