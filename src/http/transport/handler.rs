//! Per-request pipeline: TrackingID, routing, Host check, the body read
//! with the route's own limit and the connection's budget, dispatch, error
//! mapping, portal security headers, metrics and the access log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use crate::domain::ErrorCode;
use crate::domain::Refusal;
use crate::http::body::{has_body, read_body_within};
use crate::http::body_budget::Reservation;
use crate::http::error::error_response;
use crate::http::router::{route, Route};
use crate::http::server::connection::ConnState;
use crate::http::State;
use crate::http::{metrics, tracking, ConnInfo, Face, ResponseBody};

pub async fn handle(
    app: Arc<State>,
    conn: Arc<ConnInfo>,
    state: Arc<ConnState>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let in_progress = state.begin_request();
    let started = Instant::now();
    let tracking_id = tracking::generate();
    let client_tracking_id =
        tracking::client_id(req.headers().get(tracking::HEADER).map(|v| v.as_bytes()));
    let method = metrics::method_label(req.method());
    let route = route(conn.face, req.method(), req.uri().path());

    let checked = crate::http::host_header::check(req.version(), req.headers(), req.uri());
    let answer = match checked {
        Ok(()) => dispatch(&app, &conn, &state, &route, req, &tracking_id).await,
        Err(e) => Err(e),
    };
    let mut response = match answer {
        Ok(resp) => resp,
        Err(err) => {
            let mut resp = error_response(&err, route.error_format(conn.face), &tracking_id);
            if let Route::MethodNotAllowed { allow, .. } = route {
                resp.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            crate::http::flowthrough::challenge(&mut resp);
            resp
        }
    };
    if conn.face == Face::Portal {
        crate::http::portal::security_headers(response.headers_mut());
    }
    if let Ok(v) = HeaderValue::from_str(&tracking_id) {
        response.headers_mut().insert(tracking::HEADER, v);
    }
    if let Some(v) = client_tracking_id
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        response.headers_mut().insert(tracking::CLIENT_HEADER, v);
    }
    if response.body().is_streaming() {
        // A channel is a request in progress for as long as it streams:
        // the connection is not idle meanwhile.
        response.body_mut().hold(in_progress);
    } else {
        drop(in_progress);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::record(route.label(), method, status, elapsed);
    if status >= 400 {
        tracing::info!(target: "bwgate::access", tracking_id, client_tracking_id, peer = %conn.peer, method, route = route.label(), status, micros = elapsed.as_micros() as u64, "request failed");
    } else {
        tracing::debug!(target: "bwgate::access", tracking_id, peer = %conn.peer, method, route = route.label(), status, micros = elapsed.as_micros() as u64, "request");
    }
    response
}

async fn dispatch(
    app: &State,
    conn: &ConnInfo,
    state: &ConnState,
    route: &Route,
    req: Request<Incoming>,
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let (parts, body) = req.into_parts();
    let limits = &app.config.limits;
    // Decided before any parsing or authentication: a flooding caller costs
    // a map lookup. The answer waits for the (bounded) body read below so
    // that a 429 reaches an HTTP/1.1 client instead of a reset.
    let limited = match route {
        Route::FlowThrough { provisioning_id } => rate_limit(app, conn, provisioning_id).err(),
        _ => None,
    };
    // A large upload on the public portal is read only for a caller whose
    // admin token holds (others cost no more than a form).
    if route.body_limit(limits) > limits.max_form_body_bytes && has_body(&parts.headers) {
        if let Route::Partner(r) = route {
            crate::http::partner::admit_upload(app, conn.peer.ip(), r, &parts).await?;
        }
    }
    // Held until the handler is done with the body.
    let mut reservation = Reservation::new(&state.body_budget, &app.body_budget);
    let body = if has_body(&parts.headers) {
        read_body_within(
            &parts.headers,
            body,
            route.body_limit(limits),
            Duration::from_millis(limits.body_read_timeout_ms),
            Some(&mut reservation),
        )
        .await
    } else {
        Ok(Bytes::new())
    };
    if let Some(retry_after) = limited {
        return Err(Refusal::new(
            ErrorCode::RateLimited,
            format!("Retry after {retry_after} s."),
        )
        .retry_after(retry_after));
    }
    let body: Bytes = body?;
    match route {
        Route::Root => Ok(root(conn, tracking_id, parts.version)),
        Route::PortalHome => Ok(crate::http::portal::home()),
        Route::OrgApprovalPage => {
            Ok(crate::http::org_approval::page(app, parts.uri.query(), tracking_id).await)
        }
        Route::OrgApprove => Ok(crate::http::org_approval::approve(app, &body, tracking_id).await),
        Route::SignIn => Ok(crate::http::signin::signin(app, conn.peer.ip(), &body).await),
        Route::SelfActivate {
            provisioning_id,
            submit,
        } => Ok(crate::http::signin::self_activate(
            app,
            conn.peer.ip(),
            provisioning_id,
            submit.then_some(&body[..]),
            tracking_id,
        )
        .await),
        Route::Activation(page) => {
            Ok(
                crate::http::activation::serve(app, *page, parts.uri.query(), &body, tracking_id)
                    .await,
            )
        }
        Route::Partner(r) => {
            Ok(
                crate::http::partner::serve(app, conn.peer.ip(), r, &parts, &body, tracking_id)
                    .await,
            )
        }
        Route::FlowThrough { provisioning_id } => {
            crate::http::flowthrough::provision(
                app,
                conn.peer.ip(),
                &parts,
                body,
                provisioning_id,
                tracking_id,
            )
            .await
        }
        Route::Xsi(r) => {
            Ok(crate::http::xsi::serve(app, conn.peer.ip(), r, &parts, &body, tracking_id).await)
        }
        Route::LicenseCoreCommands => crate::http::license_core::apply(app, conn, &body).await,
        Route::LicenseCoreOrg { org_id, resource } => {
            crate::http::license_core::org_resource(app, conn, &parts, body, org_id, resource).await
        }
        Route::NotFound => Err(Refusal::new(
            ErrorCode::NotFound,
            format!(
                "Path {} is not served here.",
                truncate(parts.uri.path(), 200)
            ),
        )),
        Route::MethodNotAllowed { allow, .. } => Err(Refusal::new(
            ErrorCode::MethodNotAllowed,
            format!("Allowed: {allow}."),
        )),
    }
}

/// One token from the caller's bucket; `Err(secs)` when over the limit.
fn rate_limit(app: &State, conn: &ConnInfo, provisioning_id: &str) -> Result<(), u64> {
    if !app.rate_limiter.enabled() {
        return Ok(());
    }
    let identity = match conn.client.as_ref().and_then(|c| c.subject_cn.as_deref()) {
        Some(cn) => format!("cn:{cn}"),
        None => format!("ip:{}", conn.peer.ip()),
    };
    app.rate_limiter
        .check(provisioning_id, &identity)
        .inspect_err(|_| ::metrics::counter!("bwgate_rate_limited_total").increment(1))
}

/// Service identity and what the gateway saw of the caller: the quickest
/// end-to-end check of an mTLS setup.
fn root(conn: &ConnInfo, tracking_id: &str, version: hyper::Version) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "service": "bwgate",
        "version": env!("CARGO_PKG_VERSION"),
        "trackingId": tracking_id,
        "http": format!("{version:?}"),
        "tls": conn.tls_version,
        "clientCertificate": conn.client.as_ref().map(|c| serde_json::json!({
            "subjectCommonName": c.subject_cn,
            "serial": c.serial_hex,
        })),
    });
    json_response(StatusCode::OK, body.to_string())
}

pub fn json_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A CSV download (header row first) saved as `filename`; never cached
/// (exports hold subscribers' data).
pub fn csv_download(body: impl Into<Bytes>, filename: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(body.into()));
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    // Names may carry ids from the request: only safe bytes in a header.
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
