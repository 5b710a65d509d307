//! Ops listener routes for the license core (docs/licenses.md): an
//! organization's license resources (`…/organizations/{id}/…`, answered by
//! `http::faces::org_licenses` for every face) and the ledger:
//!
//! * `GET /admin/v1/licenses/ledger?after=&limit=`: every grant and
//!   removal, timestamped, oldest first (the billing feed; JSON, or CSV
//!   with `Accept: text/csv` or `?format=csv`).

use hyper::body::Incoming;
use std::time::Duration;

use hyper::header::ACCEPT;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::domain::{ErrorCode, Refusal};
use crate::http::error::json as render;
use crate::http::faces::org_licenses::view::{event_json, ledger_csv};
use crate::http::faces::org_licenses::{self, Actor, Input, OrgResource};
use crate::http::ResponseBody;
use crate::license::admin::LicenseAdminError;

const LEDGER_DEFAULT: usize = 500;
const LEDGER_MAX: usize = 5_000;

/// One of an organization's license resources, for the operator.
pub(super) async fn org_resource(
    app: &App,
    org_id: &str,
    resource: &OrgResource,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let max = resource.max_body();
    let read = crate::http::body::read_body(&parts.headers, body, max, Duration::from_secs(30));
    let body = match read.await {
        Ok(body) => body,
        Err(e) => return super::body_refused(e),
    };
    let input = Input::from_parts(&parts, body, false);
    match org_licenses::serve(app, &Actor::Operator, org_id, resource, input).await {
        Ok(answer) => answer.into_response(),
        Err(refusal) => render::operator(&refusal),
    }
}

pub(super) async fn ledger(app: &App, req: &Request<Incoming>) -> Response<ResponseBody> {
    let (after, limit) = match ledger_query(req.uri().query()) {
        Ok(q) => q,
        Err(problem) => return invalid(problem),
    };
    let now = crate::provision::now_millis();
    let events = match app.licenses.feed(after, limit, now).await {
        Ok(events) => events,
        Err(e) => return refused(&e),
    };
    if wants_csv(req) {
        return match ledger_csv(&events) {
            Ok(bytes) => crate::http::handler::csv_download(bytes, "license-ledger.csv"),
            Err(e) => render::operator(&Refusal::new(ErrorCode::Internal, e.to_string())),
        };
    }
    let next = events.last().map_or(after, |e| e.id);
    super::json(
        StatusCode::OK,
        json!({
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "next": next,
        }),
    )
}

fn ledger_query(query: Option<&str>) -> Result<(i64, usize), String> {
    let mut after = 0;
    let mut limit = LEDGER_DEFAULT;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "after" => {
                after = value
                    .parse()
                    .ok()
                    .filter(|n: &i64| *n >= 0)
                    .ok_or_else(|| format!("after '{value}': a ledger id (0 or more)"))?
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=LEDGER_MAX).contains(n))
                    .ok_or_else(|| format!("limit must be between 1 and {LEDGER_MAX}"))?
            }
            "format" => {}
            other => {
                return Err(format!(
                    "unknown parameter '{other}' (after, limit, format)"
                ))
            }
        }
    }
    Ok((after, limit))
}

/// CSV when the query says `format=csv` or the client accepts `text/csv`
/// (and not JSON first).
fn wants_csv(req: &Request<Incoming>) -> bool {
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    org_licenses::query_wants_csv(req.uri().query()) || org_licenses::is_csv(accept)
}

fn invalid(problem: String) -> Response<ResponseBody> {
    render::operator(&Refusal::new(ErrorCode::InvalidParameterValue, problem))
}

fn refused(e: &LicenseAdminError) -> Response<ResponseBody> {
    match e {
        LicenseAdminError::Refused(r) => render::operator(r),
        LicenseAdminError::Store(e) => super::unavailable(e),
        LicenseAdminError::Remote(why) => super::unavailable(why),
    }
}
