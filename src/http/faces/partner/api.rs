//! The partner admin JSON API (portal listener, `Authorization: Bearer
//! <admin token>`): the subscriber list with filters and keyset
//! pagination, its CSV export, one subscriber, and the actions retry
//! activation, delete, change package and make organization admin; and
//! the licenses of the partner's organizations (subscriptions, templates,
//! moves, grants, the Webex Calling inventory, devices: the operator's
//! resources, `http::faces::org_licenses`). Only the token's partner's
//! subscribers and organizations exist here: another partner's answer 404
//! like unknown ids.

use std::net::IpAddr;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, LINK, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::view::{self, Filters, DEFAULT_MAX};
use super::{check_template, collect_csv, csv_response, PartnerRoute};
use crate::app::App;
use crate::domain::lifecycle::Rejection;
use crate::domain::Refusal;
use crate::domain::{ErrorCode, Package};
use crate::http::admin_activation::{self, RenewError};
use crate::http::error::{error_response, ErrorFormat};
use crate::http::faces::org_licenses::{self, Actor, Input};
use crate::http::handler::json_response;
use crate::http::ResponseBody;
use crate::http::State;
use crate::provision::AdminChange;

/// Largest JSON body an action takes.
const MAX_ACTION_BODY: usize = 16 * 1024;

pub(super) async fn serve(
    app: &State,
    peer: IpAddr,
    route: &PartnerRoute,
    parts: &Parts,
    body: &[u8],
    tracking_id: &str,
) -> Response<ResponseBody> {
    let answer = match authenticate(app, peer, parts).await {
        Ok(partner) => handle(app, route, &partner, parts, body, tracking_id).await,
        Err(e) => Err(e),
    };
    let mut resp = match answer {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = error_response(&e, ErrorFormat::Json, tracking_id);
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"bwgate partner admin\""),
                );
            }
            resp
        }
    };
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The partner whose admin token the request carries.
async fn authenticate(app: &State, peer: IpAddr, parts: &Parts) -> Result<String, Refusal> {
    let Some(token) = super::auth::bearer(&parts.headers) else {
        return Err(Refusal::new(
            ErrorCode::BadCredentials,
            "Send the partner admin token as Authorization: Bearer <token>.",
        ));
    };
    super::partner_for_token(app, peer, token)
        .await?
        .map_err(|r| r.wire())
}

fn rejected(r: Rejection) -> Refusal {
    r
}

fn not_found() -> Refusal {
    Refusal::new(ErrorCode::NotFound, "No such subscriber.")
}

async fn handle(
    app: &App,
    route: &PartnerRoute,
    partner: &str,
    parts: &Parts,
    body: &[u8],
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    match route {
        PartnerRoute::ApiList => list(app, partner, parts.uri.query()).await,
        PartnerRoute::ApiCsv => {
            let filters = Filters::parse(parts.uri.query()).map_err(rejected)?;
            check_template(app, partner, &filters).map_err(rejected)?;
            Ok(csv_response(collect_csv(app, partner, &filters).await?))
        }
        PartnerRoute::ApiGet { id } => {
            let s = app
                .queries
                .partner_subscriber(partner, id)
                .await?
                .ok_or_else(not_found)?;
            Ok(json_response(
                StatusCode::OK,
                view::subscriber_json(&s).to_string(),
            ))
        }
        PartnerRoute::ApiActivation { id } => activation(app, partner, id, body).await,
        PartnerRoute::ApiDelete { id } => {
            let now = crate::provision::now_millis();
            let change = app
                .provisioning
                .partner_delete_subscriber(partner, id, tracking_id, now)
                .await?
                .map_err(rejected)?;
            Ok(changed(change, partner, "deleted"))
        }
        PartnerRoute::ApiPackage { id } => {
            let package = package_from(body)?;
            let now = crate::provision::now_millis();
            let change = app
                .provisioning
                .partner_change_package(partner, id, package, tracking_id, now)
                .await?
                .map_err(rejected)?;
            Ok(changed(change, partner, "package changed"))
        }
        PartnerRoute::ApiAdmin { id } => {
            let now = crate::provision::now_millis();
            let change = app
                .provisioning
                .partner_make_admin(partner, id, tracking_id, now)
                .await?
                .map_err(rejected)?;
            Ok(changed(change, partner, "made its organization's admin"))
        }
        PartnerRoute::ApiOrg {
            org_id,
            resource,
            csv,
        } => {
            let input = Input::from_parts(parts, Bytes::copy_from_slice(body), *csv);
            let actor = Actor::Partner(partner.to_string());
            let answer = org_licenses::serve(app, &actor, org_id, resource, input).await?;
            if resource.method() != hyper::Method::GET {
                tracing::info!(partner_id = partner, org_id = %org_id, route = route.label(), "licenses changed by a partner admin");
            }
            Ok(answer.into_response())
        }
        PartnerRoute::WorkspaceCreate => {
            super::workspaces::create(app, partner, body, tracking_id).await
        }
        PartnerRoute::WorkspaceGet { id } => super::workspaces::get(app, partner, id).await,
        PartnerRoute::WorkspaceUpdate { id } => {
            super::workspaces::update(app, partner, id, body, tracking_id).await
        }
        PartnerRoute::WorkspaceDelete { id } => {
            super::workspaces::remove(app, partner, id, tracking_id).await
        }
        _ => Err(Refusal::new(
            ErrorCode::NotFound,
            "No such partner API resource.",
        )),
    }
}

async fn list(
    app: &App,
    partner: &str,
    query: Option<&str>,
) -> Result<Response<ResponseBody>, Refusal> {
    let filters = Filters::parse(query).map_err(rejected)?;
    check_template(app, partner, &filters).map_err(rejected)?;
    let max = filters.max.unwrap_or(DEFAULT_MAX);
    let mut rows = app
        .queries
        .partner_subscribers(&filters.query(partner, max + 1))
        .await?;
    let more = rows.len() > max;
    rows.truncate(max);
    let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    let items: Vec<serde_json::Value> = rows.iter().map(view::subscriber_json).collect();
    let mut body = json!({ "items": items });
    if let Some(after) = &next {
        body["nextAfter"] = json!(after);
    }
    let mut resp = json_response(StatusCode::OK, body.to_string());
    if let Some(after) = next {
        let next_filters = Filters {
            after: Some(after),
            max: Some(max),
            ..filters
        };
        let link = format!(
            "</partner/v1/subscribers?{}>; rel=\"next\"",
            next_filters.to_query(true)
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(LINK, v);
        }
    }
    Ok(resp)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivationBody {
    email: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageBody {
    package: Option<String>,
}

/// A bounded JSON body; `None` when empty.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, Refusal> {
    if body.len() > MAX_ACTION_BODY {
        return Err(Refusal::new(
            ErrorCode::DocumentTooLarge,
            format!("At most {MAX_ACTION_BODY} bytes."),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("The body is not the expected JSON: {e}"),
        )
    })
}

fn package_from(body: &[u8]) -> Result<Package, Refusal> {
    let given = json_body::<PackageBody>(body)?
        .and_then(|b| b.package)
        .ok_or_else(|| Refusal::new(ErrorCode::MissingParameter, "package is required."))?;
    Package::parse(&given).ok_or_else(|| {
        Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!(
                "package: '{}' is not one of softphone, basic, standard, premium.",
                given.chars().take(40).collect::<String>()
            ),
        )
    })
}

async fn activation(
    app: &App,
    partner: &str,
    id: &str,
    body: &[u8],
) -> Result<Response<ResponseBody>, Refusal> {
    let given = json_body::<ActivationBody>(body)?.unwrap_or_default();
    let email = admin_activation::checked_email(given.email.as_deref()).map_err(rejected)?;
    let subscriber = app
        .queries
        .partner_subscriber(partner, id)
        .await?
        .ok_or_else(not_found)?;
    match admin_activation::renew(app, &subscriber.id, email).await {
        Ok(answer) => {
            tracing::info!(partner_id = partner, subscriber_id = %subscriber.id, "activation renewed by a partner admin");
            Ok(json_response(StatusCode::OK, answer.to_string()))
        }
        Err(RenewError::Refused(r)) => Err(rejected(r)),
        Err(RenewError::Store(e)) => Err(e.into()),
    }
}

fn changed(change: AdminChange, partner: &str, what: &str) -> Response<ResponseBody> {
    tracing::info!(
        partner_id = partner,
        subscriber_id = %change.subscriber.id,
        commands = change.commands_written,
        "subscriber {what} by a partner admin"
    );
    json_response(
        StatusCode::OK,
        view::subscriber_json(&change.subscriber).to_string(),
    )
}
