//! Ops listener routes for the license core (docs/licenses.md):
//!
//! * `PUT /admin/v1/organizations/{id}/subscriptions/{subscriptionId}`:
//!   `{"startsAt", "quantities": {"license": n}}`, add or replace.
//! * `GET /admin/v1/organizations/{id}/subscriptions`: with what each has
//!   assigned and has left.
//! * `GET /admin/v1/organizations/{id}/licenses`: who holds what and why,
//!   JSON, or CSV with `Accept: text/csv` or `?format=csv`.
//! * `GET /admin/v1/licenses/ledger?after=&limit=`: every grant and
//!   removal, timestamped, oldest first (the billing feed; CSV as above).

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::header::ACCEPT;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::domain::license::AutoLicenseTemplate;
use crate::domain::license::LicenseSubscription;
use crate::domain::timestamp::parse_iso_millis;
use crate::domain::{ErrorCode, Refusal};
use crate::http::error::json as render;
use crate::http::faces::license_view::{
    event_json, holder_page, holders_csv, holders_page_json, ledger_csv, subscription_json,
};
use crate::http::ResponseBody;
use crate::license::admin::{LicenseAdminError, SubscriptionMoves, TemplateApplication};
use crate::license::admin_grants::{AdminGrant, GrantAction};

/// A subscription document is small; this bounds a wrong upload.
const MAX_BODY: usize = 64 * 1024;
const LEDGER_DEFAULT: usize = 500;
const LEDGER_MAX: usize = 5_000;

/// The body of a subscription PUT.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubscriptionDoc {
    /// ISO 8601 instant (`2026-01-01T00:00:00Z`) or date (`2026-01-01`).
    starts_at: String,
    quantities: BTreeMap<String, u32>,
}

/// A template PUT's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TemplateDoc {
    licenses: std::collections::BTreeSet<String>,
    /// The organization's template only: a user moving to another group
    /// keeps its old group's template licenses (default true).
    #[serde(default)]
    preserve_on_group_move: Option<bool>,
}

/// An apply POST's body (empty, or the key left out: preserve).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyDoc {
    #[serde(default = "preserve_by_default")]
    preserve_licenses: bool,
    /// A user may lose a Webex Calling license (and its voicemail, PIN,
    /// numbers and settings).
    #[serde(default)]
    acknowledge_calling_loss: bool,
}

impl Default for ApplyDoc {
    fn default() -> Self {
        ApplyDoc {
            preserve_licenses: preserve_by_default(),
            acknowledge_calling_loss: false,
        }
    }
}

/// A move POST's JSON body: every holder of the source, or the users named.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MoveDoc {
    to: String,
    #[serde(default)]
    users: Option<Vec<String>>,
    /// The users an auto-license template applies to: `org` or
    /// `group:{groupId}`.
    #[serde(default)]
    template: Option<String>,
}

/// A grant or revoke POST's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantDoc {
    users: Vec<String>,
    licenses: std::collections::BTreeSet<String>,
    /// Who asks: kept as the grant's reason (`source_ref`).
    by: String,
    #[serde(default)]
    acknowledge_calling_loss: bool,
}

/// The CSV form of a move: one user per row, each with its target.
const MOVE_CSV_HEADER: [&str; 2] = ["user_id", "to_subscription"];

pub(super) async fn move_subscription(
    app: &App,
    org_id: &str,
    from: &str,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let (csv, bytes) = match super::read_upload(req, MAX_BODY).await {
        Ok(read) => read,
        Err(resp) => return *resp,
    };
    let moves = if csv {
        match moves_from_csv(&bytes) {
            Ok(m) => m,
            Err(problem) => return invalid(problem),
        }
    } else {
        match serde_json::from_slice::<MoveDoc>(&bytes) {
            Ok(MoveDoc {
                to,
                users: None,
                template: None,
            }) => SubscriptionMoves::All { to },
            Ok(MoveDoc {
                to,
                users: Some(users),
                template: None,
            }) => SubscriptionMoves::Users(users.into_iter().map(|u| (u, to.clone())).collect()),
            Ok(MoveDoc {
                to,
                users: None,
                template: Some(template),
            }) => SubscriptionMoves::Template { template, to },
            Ok(MoveDoc { .. }) => {
                return invalid("move document: users or template, not both".into())
            }
            Err(e) => return invalid(format!("move document: {e}")),
        }
    };
    let now = crate::provision::now_millis();
    match app
        .licenses
        .move_subscription(org_id, from, moves, now)
        .await
    {
        Ok(r) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "from": from,
                "moved": r.moved.iter().map(|(u, n)| json!({"userId": u, "licenses": n})).collect::<Vec<_>>(),
                "short": r.short.iter().map(|(u, why)| json!({"userId": u, "reason": why})).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => refused(&e),
    }
}

/// `user_id,to_subscription` rows (that header first).
fn moves_from_csv(bytes: &[u8]) -> Result<SubscriptionMoves, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("CSV: {e}"))?;
    if header.iter().collect::<Vec<_>>() != MOVE_CSV_HEADER {
        return Err(format!(
            "CSV: the first line must be {}",
            MOVE_CSV_HEADER.join(",")
        ));
    }
    let mut pairs = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("CSV row {}: {e}", i + 2))?;
        match (row.get(0), row.get(1)) {
            (Some(user), Some(to)) if !user.is_empty() && !to.is_empty() => {
                pairs.push((user.to_string(), to.to_string()))
            }
            _ => {
                return Err(format!(
                    "CSV row {}: a user id and a subscription id",
                    i + 2
                ))
            }
        }
    }
    if pairs.is_empty() {
        return Err("CSV: no row".into());
    }
    Ok(SubscriptionMoves::Users(pairs))
}

pub(super) async fn grant(
    app: &App,
    org_id: &str,
    revoke: bool,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let doc: GrantDoc = match read_json(req).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return invalid("a document {\"users\", \"licenses\", \"by\"} is required".into())
        }
        Err(resp) => return *resp,
    };
    let request = AdminGrant {
        action: if revoke {
            GrantAction::Revoke
        } else {
            GrantAction::Grant
        },
        users: doc.users,
        licenses: doc.licenses,
        by: doc.by,
        calling_loss_acknowledged: doc.acknowledge_calling_loss,
    };
    let now = crate::provision::now_millis();
    match app.licenses.admin_grant(org_id, request, now).await {
        Ok(r) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "changed": r.changed,
                "unchanged": r.unchanged,
                "short": r.short.iter().map(|(u, why)| json!({"userId": u, "reason": why})).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => refused(&e),
    }
}

fn preserve_by_default() -> bool {
    true
}

pub(super) async fn templates(app: &App, org_id: &str) -> Response<ResponseBody> {
    match app.licenses.templates(org_id).await {
        Ok(t) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "preserveOnGroupMove": t.org.as_ref().and_then(|t| t.preserve_on_group_move).unwrap_or(true),
                "organizationTemplate": t.org.map(|t| t.licenses),
                "groupTemplates": t.groups.into_iter().map(|(g, t)| (g, t.licenses)).collect::<BTreeMap<_, _>>(),
            }),
        ),
        Err(e) => refused(&e),
    }
}

pub(super) async fn put_template(
    app: &App,
    org_id: &str,
    group: Option<&str>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let doc: TemplateDoc = match read_json(req).await {
        Ok(Some(d)) => d,
        Ok(None) => return invalid("a template document {\"licenses\": [...]} is required".into()),
        Err(resp) => return *resp,
    };
    if group.is_some() && doc.preserve_on_group_move.is_some() {
        return invalid(
            "preserveOnGroupMove is the organization's setting: put it with the organization template"
                .into(),
        );
    }
    let template = AutoLicenseTemplate {
        licenses: doc.licenses,
        preserve_on_group_move: doc.preserve_on_group_move,
    };
    let now = crate::provision::now_millis();
    match app
        .licenses
        .put_template(org_id, group, template.clone(), now)
        .await
    {
        Ok(()) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "group": group,
                "licenses": template.licenses,
                "preserveOnGroupMove": template.preserve_on_group_move.unwrap_or(true),
            }),
        ),
        Err(e) => refused(&e),
    }
}

pub(super) async fn apply_templates(
    app: &App,
    org_id: &str,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let doc: ApplyDoc = match read_json(req).await {
        Ok(d) => d.unwrap_or_default(),
        Err(resp) => return *resp,
    };
    let now = crate::provision::now_millis();
    let how = TemplateApplication {
        preserve: doc.preserve_licenses,
        calling_loss_acknowledged: doc.acknowledge_calling_loss,
    };
    match app.licenses.apply_templates(org_id, how, now).await {
        Ok(r) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "preserveLicenses": doc.preserve_licenses,
                "users": r.users,
                "changed": r.changed,
                "short": r.short.iter().map(|(u, why)| json!({"userId": u, "reason": why})).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => refused(&e),
    }
}

/// A small JSON body (`None` when empty), or the refusal to answer.
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<Option<T>, Box<Response<ResponseBody>>> {
    let (_, bytes) = super::read_request(req, MAX_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Box::new(invalid(format!("document: {e}"))))
}

pub(super) async fn put_subscription(
    app: &App,
    org_id: &str,
    subscription_id: &str,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let doc: SubscriptionDoc = match read_json(req).await {
        Ok(Some(d)) => d,
        Ok(None) => return invalid("a subscription document is required".into()),
        Err(resp) => return *resp,
    };
    let Some(starts_at) = parse_start(&doc.starts_at) else {
        return invalid(format!(
            "startsAt '{}': an ISO 8601 instant (2026-01-01T00:00:00Z) or date (2026-01-01)",
            doc.starts_at
        ));
    };
    let subscription = LicenseSubscription {
        id: subscription_id.to_string(),
        starts_at,
        quantities: doc.quantities,
    };
    let now = crate::provision::now_millis();
    match app
        .licenses
        .put_subscription(org_id, subscription, now)
        .await
    {
        Ok(put) => {
            let status = if put.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            super::json(status, subscription_json(&put.usage))
        }
        Err(e) => refused(&e),
    }
}

pub(super) async fn subscriptions(app: &App, org_id: &str) -> Response<ResponseBody> {
    match app.licenses.subscriptions(org_id).await {
        Ok(list) => super::json(
            StatusCode::OK,
            json!({
                "organization": org_id,
                "subscriptions": list.iter().map(subscription_json).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => refused(&e),
    }
}

pub(super) async fn holders(
    app: &App,
    org_id: &str,
    req: &Request<Incoming>,
) -> Response<ResponseBody> {
    // The CSV export is the whole report; JSON comes in pages.
    if wants_csv(req) {
        return match app.licenses.holders(org_id).await {
            Ok(rows) => csv_or_error(holders_csv(&rows), &format!("licenses-{org_id}.csv")),
            Err(e) => refused(&e),
        };
    }
    let page = match holder_page(req.uri().query()) {
        Ok(p) => p,
        Err(problem) => return invalid(problem),
    };
    match app.licenses.holders_page(org_id, page.clone()).await {
        Ok(rows) => super::json(StatusCode::OK, holders_page_json(org_id, &rows, &page)),
        Err(e) => refused(&e),
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
        return csv_or_error(ledger_csv(&events), "license-ledger.csv");
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

fn parse_start(s: &str) -> Option<i64> {
    parse_iso_millis(s).or_else(|| {
        let date =
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
        Some(date.midnight().assume_utc().unix_timestamp() * 1000)
    })
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
pub(super) fn wants_csv(req: &Request<Incoming>) -> bool {
    let by_query = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "format" && v == "csv");
    let by_accept = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.trim_start().starts_with("text/csv"));
    by_query || by_accept
}

pub(super) fn csv_or_error(
    csv: Result<Vec<u8>, csv::Error>,
    filename: &str,
) -> Response<ResponseBody> {
    match csv {
        Ok(bytes) => crate::http::handler::csv_download(bytes, filename),
        Err(e) => render::operator(&Refusal::new(ErrorCode::Internal, e.to_string())),
    }
}

pub(super) fn invalid(problem: String) -> Response<ResponseBody> {
    render::operator(&Refusal::new(ErrorCode::InvalidParameterValue, problem))
}

pub(super) fn refused(e: &LicenseAdminError) -> Response<ResponseBody> {
    match e {
        LicenseAdminError::Refused(r) => render::operator(r),
        LicenseAdminError::Store(e) => super::unavailable(e),
        LicenseAdminError::Remote(why) => super::unavailable(why),
    }
}
