//! An organization's licenses as the operator, its partner's admins and a
//! gateway (on a remote core) reach them: one set of resources
//! ([`OrgResource`]), one reading of their documents (`docs`), one way of
//! showing them (`view`, `calling_view`), answered here for every face.
//! Each face authenticates, decodes its path and renders the refusal its
//! way; the actor decides what the answer may tell.
//!
//! When the licenses are kept by a remote core, the gateway checks the
//! actor may see the organization, then relays the request to the core's
//! `/license-core/v1/organizations/…` (the same resources, over mTLS) and
//! answers with what the core said: the rules run in one place.

pub mod calling_view;
pub mod docs;
pub mod resource;
pub mod view;

use bytes::Bytes;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::domain::{ErrorCode, Refusal};
use crate::http::ResponseBody;
use crate::license::admin::LicenseAdminError;
use crate::license::remote::{Relay, Relayed};

pub use resource::{split_org, Miss, OrgResource};

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The operator (ops listener token): any organization, and the
    /// store's own words when it fails.
    Operator,
    /// A partner admin (its admin token): its own organizations only.
    Partner(String),
    /// A gateway relaying for its operator or a partner admin (mTLS): it
    /// checked the organization; its answer may reach a partner.
    /// `partner`: the partner admin it relays for (the relay's
    /// [`PARTNER_HEADER`]), whose rules apply here too.
    Gateway { partner: Option<String> },
}

pub use crate::license::wire::PARTNER_HEADER;

impl Actor {
    /// A store failure: in detail for the operator (9021), the table's
    /// words for others.
    fn data_refusal(&self, e: crate::provision::DataError) -> Refusal {
        match self {
            Actor::Operator => Refusal::new(ErrorCode::StorageUnavailable, e.to_string()),
            _ => Refusal::from(e),
        }
    }

    /// The partner admin asking, directly or through a gateway.
    fn partner(&self) -> Option<&str> {
        match self {
            Actor::Partner(p) | Actor::Gateway { partner: Some(p) } => Some(p),
            Actor::Operator | Actor::Gateway { partner: None } => None,
        }
    }

    /// Store failures in detail for the operator; for others the table's
    /// words only (a partner never sees the store's).
    fn refusal(&self, e: LicenseAdminError) -> Refusal {
        match (e, self) {
            (LicenseAdminError::Refused(r), _) => r,
            (LicenseAdminError::Store(e), _) => self.data_refusal(e.into()),
            (LicenseAdminError::Remote(why), _) => Refusal::new(ErrorCode::StorageUnavailable, why),
        }
    }
}

/// What a request carries besides its path.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The query, as sent.
    pub query: Option<String>,
    /// The body's content type.
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The answer should be CSV (`format=csv`, `Accept: text/csv` or a
    /// `.csv` path).
    pub wants_csv: bool,
}

impl Input {
    /// What a request carries; `csv_path`: its path asks for CSV (the
    /// partner's `licenses.csv`).
    pub fn from_parts(parts: &Parts, body: Bytes, csv_path: bool) -> Input {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let query = parts.uri.query();
        Input {
            query: query.map(str::to_string),
            content_type: header(CONTENT_TYPE).map(str::to_string),
            wants_csv: csv_path || query_wants_csv(query) || is_csv(header(ACCEPT)),
            body,
        }
    }

    fn csv_body(&self) -> bool {
        is_csv(self.content_type.as_deref())
    }
}

/// Whether a content type (or `Accept`) is CSV (`text/csv`, any
/// parameters).
pub fn is_csv(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| ct.trim_start().starts_with("text/csv"))
}

/// Whether a query asks for CSV (`format=csv`).
pub fn query_wants_csv(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, v)| k == "format" && v == "csv")
}

/// An answer, before the face adds its headers.
#[derive(Debug)]
pub enum Answer {
    Json(StatusCode, serde_json::Value),
    Csv {
        bytes: Vec<u8>,
        filename: String,
    },
    /// A remote core's answer, as it came.
    Relayed(Relayed),
}

impl Answer {
    pub fn into_response(self) -> Response<ResponseBody> {
        match self {
            Answer::Json(status, body) => {
                crate::http::handler::json_response(status, body.to_string())
            }
            Answer::Csv { bytes, filename } => crate::http::handler::csv_download(bytes, &filename),
            Answer::Relayed(r) => {
                let mut resp = Response::new(ResponseBody::new(r.body));
                *resp.status_mut() =
                    StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
                for (name, value) in r.headers {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        resp.headers_mut().insert(name, v);
                    }
                }
                resp
            }
        }
    }
}

/// Answers `resource` of `org_id` for `actor`.
pub async fn serve(
    app: &App,
    actor: &Actor,
    org_id: &str,
    resource: &OrgResource,
    input: Input,
) -> Result<Answer, Refusal> {
    let failed = |e| actor.refusal(e);
    if let Actor::Partner(partner) = actor {
        app.licenses
            .check_partner_org(partner, org_id)
            .await
            .map_err(failed)?;
    }
    if actor.partner().is_some() {
        if let OrgResource::SubscriptionPut { .. } = resource {
            // What the partner bought is the operator's word, not its own.
            return Err(Refusal::new(
                ErrorCode::OperatorOnly,
                "subscriptions come from the commercial side: the operator adds and changes them",
            ));
        }
    }
    if resource.kept_by_core() {
        if let Some(core) = app.licenses.remote_core().map_err(failed)? {
            if *actor == Actor::Operator {
                // A partner's was checked above; a typo is not relayed.
                app.licenses.gateway_org(org_id).await.map_err(failed)?;
            }
            return relay(core, actor.partner(), org_id, resource, input)
                .await
                .map_err(failed);
        }
    }
    here(app, actor, org_id, resource, input).await
}

/// Answers `resource` from this process's store (the actor was admitted).
async fn here(
    app: &App,
    actor: &Actor,
    org_id: &str,
    resource: &OrgResource,
    input: Input,
) -> Result<Answer, Refusal> {
    let failed = |e| actor.refusal(e);
    let csv_body = input.csv_body();
    let body = &input.body[..];
    let invalid = |problem: String| Refusal::new(ErrorCode::InvalidParameterValue, problem);
    let now = crate::provision::now_millis();
    let licenses = &app.licenses;
    let org = || json!(org_id);
    let short = |short: &[(String, String)]| {
        short
            .iter()
            .map(|(u, why)| json!({"userId": u, "reason": why}))
            .collect::<Vec<_>>()
    };
    let ok = |body| Ok(Answer::Json(StatusCode::OK, body));
    let created = |yes: bool| {
        if yes {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    };
    let csv = |bytes: Result<Vec<u8>, csv::Error>, name: &str| {
        bytes
            .map(|bytes| Answer::Csv {
                bytes,
                filename: format!("{name}-{org_id}.csv"),
            })
            .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))
    };
    match resource {
        OrgResource::Subscriptions => {
            let list = licenses.subscriptions(org_id).await.map_err(failed)?;
            ok(json!({
                "organization": org(),
                "subscriptions": list.iter().map(view::subscription_json).collect::<Vec<_>>(),
            }))
        }
        OrgResource::SubscriptionPut { subscription_id } => {
            let subscription = docs::subscription(subscription_id, body).map_err(invalid)?;
            let put = licenses
                .put_subscription(org_id, subscription, now)
                .await
                .map_err(failed)?;
            Ok(Answer::Json(
                created(put.created),
                view::subscription_json(&put.usage),
            ))
        }
        OrgResource::SubscriptionMove { subscription_id } => {
            let moves = docs::moves(csv_body, body).map_err(invalid)?;
            let r = licenses
                .move_subscription(org_id, subscription_id, moves, now)
                .await
                .map_err(failed)?;
            ok(json!({
                "organization": org(),
                "from": subscription_id,
                "moved": r.moved.iter().map(|(u, n)| json!({"userId": u, "licenses": n})).collect::<Vec<_>>(),
                "short": short(&r.short),
            }))
        }
        OrgResource::Holders if input.wants_csv => {
            let rows = licenses.holders(org_id).await.map_err(failed)?;
            csv(view::holders_csv(&rows), "licenses")
        }
        OrgResource::Holders => {
            let page = view::holder_page(input.query.as_deref()).map_err(invalid)?;
            let rows = licenses
                .holders_page(org_id, page.clone())
                .await
                .map_err(failed)?;
            ok(view::holders_page_json(org_id, &rows, &page))
        }
        OrgResource::Grant { revoke } => {
            let mut request = docs::grant(*revoke, body).map_err(invalid)?;
            if let Some(partner) = actor.partner() {
                // The record names the partner whatever the body claims.
                request.by = format!("partner:{partner}:{}", request.by);
            }
            let r = licenses
                .admin_grant(org_id, request, now)
                .await
                .map_err(failed)?;
            ok(json!({
                "organization": org(),
                "changed": r.changed,
                "unchanged": r.unchanged,
                "short": short(&r.short),
            }))
        }
        OrgResource::Templates => {
            let t = licenses.templates(org_id).await.map_err(failed)?;
            ok(json!({
                "organization": org(),
                "preserveOnGroupMove": t.org.as_ref().and_then(|t| t.preserve_on_group_move).unwrap_or(true),
                "organizationTemplate": t.org.map(|t| t.licenses),
                "groupTemplates": t.groups.into_iter().map(|(g, t)| (g, t.licenses)).collect::<std::collections::BTreeMap<_, _>>(),
            }))
        }
        OrgResource::TemplatePut { group } => {
            let template = docs::template(group.as_deref(), body).map_err(invalid)?;
            licenses
                .put_template(org_id, group.as_deref(), template.clone(), now)
                .await
                .map_err(failed)?;
            ok(json!({
                "organization": org(),
                "group": group,
                "licenses": template.licenses,
                "preserveOnGroupMove": template.preserve_on_group_move.unwrap_or(true),
            }))
        }
        OrgResource::TemplatesApply => {
            let how = docs::application(body).map_err(invalid)?;
            let preserve = how.preserve;
            let r = licenses
                .apply_templates(org_id, how, now)
                .await
                .map_err(failed)?;
            ok(json!({
                "organization": org(),
                "preserveLicenses": preserve,
                "users": r.users,
                "changed": r.changed,
                "short": short(&r.short),
            }))
        }
        OrgResource::CallingLocations => {
            let list = licenses.locations(org_id).await.map_err(failed)?;
            ok(json!({
                "organization": org(),
                "locations": list.iter().map(calling_view::location_json).collect::<Vec<_>>(),
            }))
        }
        OrgResource::CallingLocationPut { location_id } => {
            let location = docs::location(location_id, body).map_err(invalid)?;
            let added = licenses
                .put_location(org_id, location, now)
                .await
                .map_err(failed)?;
            Ok(Answer::Json(
                created(added),
                json!({"organization": org(), "location": location_id}),
            ))
        }
        OrgResource::CallingNumbersAdd { location_id } => {
            let entries = docs::numbers(csv_body, body).map_err(invalid)?;
            let r = licenses
                .add_numbers(org_id, location_id, entries, now)
                .await
                .map_err(failed)?;
            ok(json!({
                "organization": org(),
                "location": location_id,
                "added": r.added,
                "unchanged": r.unchanged,
            }))
        }
        OrgResource::CallingNumbers => {
            let list = licenses.numbers(org_id).await.map_err(failed)?;
            if input.wants_csv {
                return csv(calling_view::numbers_csv(&list), "calling-numbers");
            }
            ok(json!({
                "organization": org(),
                "numbers": list.iter().map(calling_view::number_json).collect::<Vec<_>>(),
            }))
        }
        OrgResource::CallingUsers => {
            let report = licenses.calling_report(org_id).await.map_err(failed)?;
            if input.wants_csv {
                return csv(calling_view::users_csv(&report), "calling-users");
            }
            ok(calling_view::report_json(org_id, &report))
        }
        OrgResource::Devices => {
            let list = licenses.device_activations(org_id).await.map_err(failed)?;
            if input.wants_csv {
                return csv(calling_view::activations_csv(&list, now), "devices");
            }
            ok(json!({
                "organization": org(),
                "devices": list.iter().map(|d| calling_view::activation_json(d, now)).collect::<Vec<_>>(),
            }))
        }
        OrgResource::DeviceCodes => {
            let requests = docs::devices(csv_body, body).map_err(invalid)?;
            if let Actor::Partner(partner) = actor {
                tracing::info!(partner_id = %partner, org_id, devices = requests.len(), "device codes asked by a partner admin");
            }
            let n = requests.len();
            let sent = app
                .provisioning
                .request_device_codes(org_id, requests, now)
                .await
                .map_err(|e| actor.data_refusal(e))??;
            Ok(Answer::Json(
                StatusCode::ACCEPTED,
                json!({"organization": org(), "requested": n, "commands": sent}),
            ))
        }
    }
}

/// The request as the core's face takes it; the core's answer back.
async fn relay(
    core: &crate::license::remote::RemoteLicenseCore,
    partner: Option<&str>,
    org_id: &str,
    resource: &OrgResource,
    input: Input,
) -> Result<Answer, LicenseAdminError> {
    let mut query = input.query.unwrap_or_default();
    if input.wants_csv && !query_wants_csv(Some(&query)) {
        // A `.csv` path or an `Accept` header become the query's word.
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("format=csv");
    }
    let org = percent_encoding::utf8_percent_encode(org_id, percent_encoding::NON_ALPHANUMERIC);
    let mut path_and_query = format!("{org}/{}", resource.path());
    if !query.is_empty() {
        path_and_query = format!("{path_and_query}?{query}");
    }
    let relayed = core
        .relay(Relay {
            method: resource.method(),
            path_and_query,
            content_type: input.content_type,
            partner: partner.map(str::to_string),
            body: input.body,
        })
        .await?;
    Ok(Answer::Relayed(relayed))
}
