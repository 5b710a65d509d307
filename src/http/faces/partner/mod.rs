//! Subscriber status for partner admins, on the portal listener (HTTPS,
//! no client certificate):
//!
//! - the JSON API under `/partner/v1/` (`Authorization: Bearer <admin
//!   token>`), see `api.rs`;
//! - the status page under `/partner/status` (sign in with the admin
//!   token, then a session cookie; forms with CSRF tokens), see `page.rs`.
//!
//! Both see only the subscribers of the partner's own templates.

pub mod auth;

mod api;
mod origin;
mod page;
mod view;
mod workspaces;

use std::net::IpAddr;
use std::sync::Arc;

use hyper::http::request::Parts;
use hyper::{Method, Response};

use crate::app::App;
use crate::domain::lifecycle::Rejection;
use crate::domain::ErrorCode;
use crate::domain::Refusal;
use crate::http::error::ErrorFormat;
use crate::http::faces::org_licenses::{split_org, Miss, OrgResource};
use crate::http::router::Route;
use crate::http::ResponseBody;
use crate::http::State;
use crate::links::LinkSigner;
use view::Filters;

/// One route under `/partner/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerRoute {
    /// `GET /partner/v1/subscribers`
    ApiList,
    /// `GET /partner/v1/subscribers.csv`
    ApiCsv,
    /// `GET /partner/v1/subscribers/{id}`
    ApiGet { id: String },
    /// `POST /partner/v1/subscribers/{id}/activation` `{"email"}`
    ApiActivation { id: String },
    /// `DELETE /partner/v1/subscribers/{id}`
    ApiDelete { id: String },
    /// `PUT /partner/v1/subscribers/{id}/package` `{"package"}`
    ApiPackage { id: String },
    /// `POST /partner/v1/subscribers/{id}/admin`: makes the subscriber its
    /// organization's administrator.
    ApiAdmin { id: String },
    /// `/partner/v1/organizations/{orgId}/{resource}`: the licenses of
    /// one of the partner's organizations, as the operator has them
    /// (`http::faces::org_licenses`). `csv`: the `licenses.csv` path.
    ApiOrg {
        org_id: String,
        resource: OrgResource,
        csv: bool,
    },
    /// `POST /v1/broadworks/workspaces` (Cisco's path and shapes).
    WorkspaceCreate,
    /// `GET /v1/broadworks/workspaces/{id}`.
    WorkspaceGet { id: String },
    /// `PUT /v1/broadworks/workspaces/{id}`.
    WorkspaceUpdate { id: String },
    /// `DELETE /v1/broadworks/workspaces/{id}`.
    WorkspaceDelete { id: String },
    /// Any other path under `/partner/v1/` (a JSON 404).
    ApiNotFound,
    /// `GET /partner/status`: the sign-in form or the subscriber table.
    StatusPage,
    /// `GET /partner/status.csv`: the page's CSV export (session cookie).
    StatusCsv,
    /// `POST /partner/session` (form `token`): sign in.
    SignIn,
    /// `POST /partner/signout` (form `csrf`).
    SignOut,
    /// `POST /partner/status/activation` (form `csrf`, `id`, `email`).
    FormActivation,
    /// `POST /partner/status/package` (form `csrf`, `id`, `package`).
    FormPackage,
    /// `GET /partner/status/delete?id=…`: the confirmation step.
    DeleteConfirm,
    /// `POST /partner/status/delete` (form `csrf`, `id`).
    FormDelete,
}

impl PartnerRoute {
    pub fn label(&self) -> &'static str {
        match self {
            PartnerRoute::ApiList => "portal:/partner/v1/subscribers",
            PartnerRoute::ApiCsv => "portal:/partner/v1/subscribers.csv",
            PartnerRoute::ApiGet { .. } => "portal:/partner/v1/subscribers/{id}",
            PartnerRoute::ApiActivation { .. } => {
                "portal:POST /partner/v1/subscribers/{id}/activation"
            }
            PartnerRoute::ApiDelete { .. } => "portal:DELETE /partner/v1/subscribers/{id}",
            PartnerRoute::ApiPackage { .. } => "portal:PUT /partner/v1/subscribers/{id}/package",
            PartnerRoute::ApiAdmin { .. } => "portal:POST /partner/v1/subscribers/{id}/admin",
            PartnerRoute::ApiOrg { csv: true, .. } => {
                "portal:/partner/v1/organizations/{id}/licenses.csv"
            }
            PartnerRoute::ApiOrg { resource, .. } => resource.labels().0,
            PartnerRoute::WorkspaceCreate => "portal:POST /v1/broadworks/workspaces",
            PartnerRoute::WorkspaceGet { .. } => "portal:/v1/broadworks/workspaces/{id}",
            PartnerRoute::WorkspaceUpdate { .. } => "portal:PUT /v1/broadworks/workspaces/{id}",
            PartnerRoute::WorkspaceDelete { .. } => "portal:DELETE /v1/broadworks/workspaces/{id}",
            PartnerRoute::ApiNotFound => "portal:/partner/v1/unmatched",
            PartnerRoute::StatusPage => "portal:/partner/status",
            PartnerRoute::StatusCsv => "portal:/partner/status.csv",
            PartnerRoute::SignIn => "portal:POST /partner/session",
            PartnerRoute::SignOut => "portal:POST /partner/signout",
            PartnerRoute::FormActivation => "portal:POST /partner/status/activation",
            PartnerRoute::FormPackage => "portal:POST /partner/status/package",
            PartnerRoute::DeleteConfirm => "portal:/partner/status/delete",
            PartnerRoute::FormDelete => "portal:POST /partner/status/delete",
        }
    }

    /// Errors of the JSON API are JSON; the page's are HTML.
    pub fn error_format(&self) -> ErrorFormat {
        match self {
            PartnerRoute::ApiList
            | PartnerRoute::ApiCsv
            | PartnerRoute::ApiGet { .. }
            | PartnerRoute::ApiActivation { .. }
            | PartnerRoute::ApiDelete { .. }
            | PartnerRoute::ApiPackage { .. }
            | PartnerRoute::ApiAdmin { .. }
            | PartnerRoute::ApiOrg { .. }
            | PartnerRoute::WorkspaceCreate
            | PartnerRoute::WorkspaceGet { .. }
            | PartnerRoute::WorkspaceUpdate { .. }
            | PartnerRoute::WorkspaceDelete { .. }
            | PartnerRoute::ApiNotFound => ErrorFormat::Json,
            _ => ErrorFormat::Html,
        }
    }
}

const API_PREFIX: &str = "/partner/v1/";
const SUBSCRIBERS: &str = "/partner/v1/subscribers";

const ORGANIZATIONS: &str = "/partner/v1/organizations/";

/// `{orgId}/{resource}` (`rest`: the path after the organizations
/// prefix); `{orgId}/licenses.csv` is the holders report as CSV.
fn org_route(method: &Method, rest: &str) -> Route {
    // `{orgId}/licenses.csv` exactly: the holders report as CSV.
    let (rest, csv) = match rest.strip_suffix("/licenses.csv") {
        Some(org) if !org.contains('/') => (format!("{org}/licenses"), true),
        _ => (rest.to_string(), false),
    };
    match split_org(method, &rest) {
        Some(Ok((org_id, resource))) => Route::Partner(PartnerRoute::ApiOrg {
            org_id,
            resource,
            csv,
        }),
        Some(Err(Miss::Method(allow))) => not_allowed(allow, ErrorFormat::Json),
        Some(Err(Miss::NotFound(_))) | None => Route::Partner(PartnerRoute::ApiNotFound),
    }
}

/// Cisco's partner API paths bwgate serves on the portal listener.
pub const BROADWORKS_PREFIX: &str = "/v1/broadworks/";
const WORKSPACES: &str = "/v1/broadworks/workspaces";

/// A path under `/v1/broadworks/`: the workspaces (Cisco's
/// "BroadWorks Workspaces").
pub fn broadworks_route(method: &Method, path: &str) -> Route {
    let json = ErrorFormat::Json;
    if path == WORKSPACES {
        return if *method == Method::POST {
            Route::Partner(PartnerRoute::WorkspaceCreate)
        } else {
            not_allowed("POST", json)
        };
    }
    let id = path
        .strip_prefix(WORKSPACES)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/') && id.len() <= workspaces::ID_MAX);
    let Some(id) = id else {
        return Route::Partner(PartnerRoute::ApiNotFound);
    };
    let id = id.to_string();
    match *method {
        Method::GET | Method::HEAD => Route::Partner(PartnerRoute::WorkspaceGet { id }),
        Method::PUT => Route::Partner(PartnerRoute::WorkspaceUpdate { id }),
        Method::DELETE => Route::Partner(PartnerRoute::WorkspaceDelete { id }),
        _ => not_allowed("GET, HEAD, PUT, DELETE", json),
    }
}

fn not_allowed(allow: &'static str, format: ErrorFormat) -> Route {
    Route::MethodNotAllowed { allow, format }
}

/// Routes a path under `/partner/` on the portal listener.
pub fn route(method: &Method, path: &str) -> Route {
    let get = matches!(*method, Method::GET | Method::HEAD);
    let json = ErrorFormat::Json;
    let html = ErrorFormat::Html;
    if path.starts_with(API_PREFIX) {
        if path == SUBSCRIBERS || path == "/partner/v1/subscribers.csv" {
            if !get {
                return not_allowed("GET, HEAD", json);
            }
            return Route::Partner(if path == SUBSCRIBERS {
                PartnerRoute::ApiList
            } else {
                PartnerRoute::ApiCsv
            });
        }
        if let Some(rest) = path.strip_prefix(ORGANIZATIONS) {
            return org_route(method, rest);
        }
        let Some(rest) = path.strip_prefix("/partner/v1/subscribers/") else {
            return Route::Partner(PartnerRoute::ApiNotFound);
        };
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        if id.is_empty() {
            return Route::Partner(PartnerRoute::ApiNotFound);
        }
        let id = id.to_string();
        return match (action, method) {
            ("", _) if get => Route::Partner(PartnerRoute::ApiGet { id }),
            ("", &Method::DELETE) => Route::Partner(PartnerRoute::ApiDelete { id }),
            ("", _) => not_allowed("GET, HEAD, DELETE", json),
            ("activation", &Method::POST) => Route::Partner(PartnerRoute::ApiActivation { id }),
            ("activation", _) => not_allowed("POST", json),
            ("package", &Method::PUT) => Route::Partner(PartnerRoute::ApiPackage { id }),
            ("package", _) => not_allowed("PUT", json),
            ("admin", &Method::POST) => Route::Partner(PartnerRoute::ApiAdmin { id }),
            ("admin", _) => not_allowed("POST", json),
            _ => Route::Partner(PartnerRoute::ApiNotFound),
        };
    }
    let page = |r: PartnerRoute| Route::Partner(r);
    match (path, method) {
        ("/partner/status", _) if get => page(PartnerRoute::StatusPage),
        ("/partner/status", _) => not_allowed("GET, HEAD", html),
        ("/partner/status.csv", _) if get => page(PartnerRoute::StatusCsv),
        ("/partner/status.csv", _) => not_allowed("GET, HEAD", html),
        ("/partner/session", &Method::POST) => page(PartnerRoute::SignIn),
        ("/partner/session", _) => not_allowed("POST", html),
        ("/partner/signout", &Method::POST) => page(PartnerRoute::SignOut),
        ("/partner/signout", _) => not_allowed("POST", html),
        ("/partner/status/activation", &Method::POST) => page(PartnerRoute::FormActivation),
        ("/partner/status/package", &Method::POST) => page(PartnerRoute::FormPackage),
        ("/partner/status/activation" | "/partner/status/package", _) => not_allowed("POST", html),
        ("/partner/status/delete", _) if get => page(PartnerRoute::DeleteConfirm),
        ("/partner/status/delete", &Method::POST) => page(PartnerRoute::FormDelete),
        ("/partner/status/delete", _) => not_allowed("GET, HEAD, POST", html),
        _ => Route::NotFound,
    }
}

/// Serves a partner route (never fails: errors are answered in the
/// route's format).
pub async fn serve(
    app: &State,
    peer: IpAddr,
    route: &PartnerRoute,
    parts: &Parts,
    body: &[u8],
    tracking_id: &str,
) -> Response<ResponseBody> {
    match route.error_format() {
        ErrorFormat::Json => api::serve(app, peer, route, parts, body, tracking_id).await,
        _ => page::serve(app, peer, route, parts, body, tracking_id).await,
    }
}

/// Admits a large upload (a partner's bulk numbers, moves or devices)
/// before its body is read: only with a valid admin token (verified
/// again, from the cache, when the request is served).
pub async fn admit_upload(
    app: &State,
    peer: IpAddr,
    route: &PartnerRoute,
    parts: &Parts,
) -> Result<(), Refusal> {
    debug_assert!(route.error_format() == ErrorFormat::Json);
    let Some(token) = auth::bearer(&parts.headers) else {
        return Err(Refusal::new(
            ErrorCode::BadCredentials,
            "Send the partner admin token as Authorization: Bearer <token>.",
        ));
    };
    partner_for_token(app, peer, token)
        .await?
        .map(|_| ())
        .map_err(|r| r.wire())
}

/// Why an admin token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenRefusal {
    /// Not any partner's token (401, 9004).
    Wrong,
    /// Too many wrong tokens from this address: retry after the seconds
    /// (429, 9027); nothing was verified.
    Locked(u64),
    /// This address's verification queue is full (503, 9035).
    Busy,
}

impl TokenRefusal {
    fn wire(&self) -> Refusal {
        match self {
            TokenRefusal::Wrong => {
                Refusal::new(ErrorCode::BadCredentials, "The admin token is not valid.")
            }
            TokenRefusal::Locked(secs) => Refusal::new(
                ErrorCode::TooManyAttempts,
                format!("Too many wrong admin tokens from your address; retry after {secs} s."),
            )
            .retry_after(*secs),
            TokenRefusal::Busy => Refusal::new(
                ErrorCode::VerificationBusy,
                "Too many admin token checks are waiting for your address.",
            )
            .retry_after(crate::provision::verify_queue::BUSY_RETRY_AFTER_SECS),
        }
    }
}

/// The partner whose admin token `token` is. A token names no partner, so
/// wrong ones count (and queue) per client address only.
async fn partner_for_token(
    app: &State,
    peer: IpAddr,
    token: &str,
) -> Result<Result<String, TokenRefusal>, crate::provision::DataError> {
    use crate::http::lockout::{AttemptKey, KeyKind, Realm};
    let address = crate::http::lockout::client_address(peer);
    let keys = [AttemptKey {
        realm: Realm::PartnerToken,
        scope: "",
        kind: KeyKind::Address,
        value: &address,
    }];
    if let Err(secs) = app.lockout.check(&keys) {
        ::metrics::counter!("bwgate_auth_locked_refusals_total", "realm" => "partner_token")
            .increment(1);
        return Ok(Err(TokenRefusal::Locked(secs)));
    }
    let tenant = format!("address:{address}");
    let check = app
        .partner_auth
        .partner_for_token(&app.queries, &app.verify_queue, &tenant, token)
        .await?;
    Ok(match check {
        auth::TokenCheck::Partner(p) => Ok(p),
        auth::TokenCheck::Busy => Err(TokenRefusal::Busy),
        auth::TokenCheck::Denied => {
            tracing::info!(%peer, "partner admin token refused");
            let _ = app.lockout.failure(&keys);
            Err(TokenRefusal::Wrong)
        }
    })
}

/// The server's link signer (sessions are signed like every link).
fn signer(app: &App) -> Option<Arc<LinkSigner>> {
    app.provisioning.activations().map(|a| a.signer.clone())
}

/// A `provisioningId` filter must name one of the partner's templates.
fn check_template(app: &App, partner: &str, filters: &Filters) -> Result<(), Rejection> {
    let Some(pid) = &filters.provisioning_id else {
        return Ok(());
    };
    app.provisioning.partner_template(partner, pid)
}

/// Rows fetched per store read while exporting.
const CSV_CHUNK: usize = 1000;

/// Every subscriber matching `filters` (from `after`; at most `max` when
/// given) as CSV.
async fn collect_csv(app: &App, partner: &str, filters: &Filters) -> Result<String, Refusal> {
    let mut out = view::csv_start();
    let mut left = filters.max.unwrap_or(usize::MAX);
    let mut cursor = filters.clone();
    while left > 0 {
        let want = CSV_CHUNK.min(left);
        let rows = app
            .queries
            .partner_subscribers(&cursor.query(partner, want))
            .await?;
        for r in &rows {
            view::csv_row(&mut out, r);
        }
        left -= rows.len();
        match rows.last() {
            Some(last) if rows.len() == want => cursor.after = Some(last.id.clone()),
            _ => break,
        }
    }
    Ok(out)
}

fn csv_response(csv: String) -> Response<ResponseBody> {
    crate::http::handler::csv_download(csv, "subscribers.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Route {
        route(&method, path)
    }

    #[test]
    fn partner_paths_are_routed() {
        let p = |x| Route::Partner(x);
        assert_eq!(
            r(Method::GET, "/partner/v1/subscribers"),
            p(PartnerRoute::ApiList)
        );
        assert_eq!(
            r(Method::GET, "/partner/v1/subscribers.csv"),
            p(PartnerRoute::ApiCsv)
        );
        assert_eq!(
            r(Method::GET, "/partner/v1/subscribers/abc"),
            p(PartnerRoute::ApiGet { id: "abc".into() })
        );
        assert_eq!(
            r(Method::DELETE, "/partner/v1/subscribers/abc"),
            p(PartnerRoute::ApiDelete { id: "abc".into() })
        );
        assert_eq!(
            r(Method::POST, "/partner/v1/subscribers/abc/activation"),
            p(PartnerRoute::ApiActivation { id: "abc".into() })
        );
        assert_eq!(
            r(Method::PUT, "/partner/v1/subscribers/abc/package"),
            p(PartnerRoute::ApiPackage { id: "abc".into() })
        );
        assert_eq!(
            r(Method::POST, "/partner/v1/subscribers/abc/admin"),
            p(PartnerRoute::ApiAdmin { id: "abc".into() })
        );
        for (m, path, allow) in [
            (Method::POST, "/partner/v1/subscribers", "GET, HEAD"),
            (
                Method::PUT,
                "/partner/v1/subscribers/abc",
                "GET, HEAD, DELETE",
            ),
            (Method::GET, "/partner/v1/subscribers/abc/package", "PUT"),
            (
                Method::GET,
                "/partner/v1/subscribers/abc/activation",
                "POST",
            ),
        ] {
            assert_eq!(
                r(m, path),
                Route::MethodNotAllowed {
                    allow,
                    format: ErrorFormat::Json
                },
                "{path}"
            );
        }
        for path in [
            "/partner/v1/",
            "/partner/v1/other",
            "/partner/v1/subscribers/",
            "/partner/v1/subscribers/abc/other",
        ] {
            assert_eq!(r(Method::GET, path), p(PartnerRoute::ApiNotFound), "{path}");
        }
        assert_eq!(
            r(Method::HEAD, "/partner/status"),
            p(PartnerRoute::StatusPage)
        );
        assert_eq!(r(Method::POST, "/partner/session"), p(PartnerRoute::SignIn));
        assert_eq!(
            r(Method::GET, "/partner/status/delete"),
            p(PartnerRoute::DeleteConfirm)
        );
        assert_eq!(
            r(Method::POST, "/partner/status/delete"),
            p(PartnerRoute::FormDelete)
        );
        assert!(matches!(
            r(Method::GET, "/partner/session"),
            Route::MethodNotAllowed {
                format: ErrorFormat::Html,
                ..
            }
        ));
        assert_eq!(r(Method::GET, "/partner/nothing"), Route::NotFound);
    }
}
