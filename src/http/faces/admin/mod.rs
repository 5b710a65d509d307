//! The ops listener (plain HTTP, loopback by default): `/healthz` (the
//! process is alive), `/readyz` (takes traffic: not draining, store
//! answers), `/metrics` (Prometheus text format), all open, and the
//! operator API behind `guard` (operator token, no browsers, JSON
//! bodies): `/admin/v1/subscribers/{id}`, `/admin/v1/emails` and
//! `POST /admin/v1/emails/test`; existing organizations and detach are in
//! `orgs.rs`, activation retry in `activation.rs`. `routes.rs` is the
//! route table; refusals are JSON from the one renderer
//! (`http::error::json::operator`).

pub mod activation;
pub mod auth;
mod guard;
mod licenses;
pub mod orgs;
mod routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::domain::{ErrorCode, Refusal};
use crate::http::admin_auth::OperatorAuth;
use crate::http::error::json as render;
use crate::http::ResponseBody;
use routes::AdminRoute;

pub async fn serve_admin(
    app: Arc<App>,
    operator: Arc<OperatorAuth>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    // What a Host header may name (admin_guard): this listener's address.
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let operator = operator.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                let operator = operator.clone();
                async move { Ok::<_, Infallible>(handle(&app, &operator, local, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn handle(
    app: &App,
    operator: &OperatorAuth,
    local: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    // RFC 9112 3.2, as on the HTTPS listeners.
    if let Err(e) = crate::http::host_header::check(req.version(), req.headers(), req.uri()) {
        let tracking_id = crate::http::tracking::generate();
        return crate::http::error::error_response(
            &e,
            crate::http::ErrorFormat::Json,
            &tracking_id,
        );
    }
    // The guard comes first, so an unknown `/admin/...` path tells a
    // caller without the token nothing.
    if AdminRoute::is_operator_path(req.uri().path()) {
        if let Err(refusal) = guard::admit(operator, local, &req).await {
            return guard::refused(&refusal);
        }
    }
    let route = match AdminRoute::parse(req.method(), req.uri().path()) {
        Ok(route) => route,
        Err(unrouted) => {
            let mut resp = render::operator(&unrouted.refusal);
            if let Some(allow) = unrouted.allow {
                resp.headers_mut()
                    .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
            }
            return resp;
        }
    };
    match route {
        AdminRoute::Health => text(StatusCode::OK, "ok\n", "text/plain"),
        AdminRoute::Ready => readiness(app).await,
        AdminRoute::Metrics => text(
            StatusCode::OK,
            &app.metrics.render(),
            "text/plain; version=0.0.4",
        ),
        AdminRoute::SubscriberReport { key } => subscriber_report(app, &key).await,
        AdminRoute::ActivationRetry { key } => {
            crate::http::admin_activation::retry(app, req, &key).await
        }
        AdminRoute::EmailList => email_list(app, req.uri().query()).await,
        AdminRoute::EmailTest => email_test(app, req).await,
        AdminRoute::OrgImport => orgs::import_orgs(app, req).await,
        AdminRoute::OrgPut { id } => orgs::put_org(app, &id, req).await,
        AdminRoute::OrgGet { id } => orgs::get_org(app, &id).await,
        AdminRoute::Org { org_id, resource } => {
            licenses::org_resource(app, &org_id, &resource, req).await
        }
        AdminRoute::LicenseLedger => licenses::ledger(app, &req).await,
        AdminRoute::Detach {
            partner,
            enterprise_key,
        } => orgs::detach(app, &partner, &enterprise_key).await,
    }
}

/// `/readyz`: not draining and the store answers within 2 s.
async fn readiness(app: &App) -> Response<ResponseBody> {
    if app.is_draining() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "draining\n", "text/plain");
    }
    match tokio::time::timeout(Duration::from_secs(2), app.queries.ping()).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready\n", "text/plain"),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("store unavailable: {e}\n"),
            "text/plain",
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "store timed out\n",
            "text/plain",
        ),
    }
}

/// Largest body `POST /admin/v1/emails/test` reads.
const EMAIL_TEST_MAX_BODY: usize = 16 * 1024;

/// `POST /admin/v1/emails/test` `{"to": "…", "subject": "…"}`: enqueues a
/// test email (kind `test`) so an operator can check the relay; 202 with
/// its id. Read it back with `GET /admin/v1/emails?kind=test`.
async fn email_test(app: &App, req: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let body = match crate::http::body::read_body(
        &parts.headers,
        body,
        EMAIL_TEST_MAX_BODY,
        Duration::from_secs(10),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return body_refused(e),
    };
    let msg = match crate::notify::admin::test_message(&body) {
        Ok(m) => m,
        Err(problem) => {
            return render::operator(&Refusal::new(ErrorCode::InvalidParameterValue, problem))
        }
    };
    match app.mailer.send(msg).await {
        Ok(id) => json(
            StatusCode::ACCEPTED,
            serde_json::json!({"id": id, "state": "pending"}),
        ),
        Err(e) => unavailable(&e),
    }
}

/// `GET /admin/v1/emails?subscriber=…&kind=…&state=…&limit=…`: the email
/// outbox, newest first (bodies left out).
async fn email_list(app: &App, query: Option<&str>) -> Response<ResponseBody> {
    let (filter, limit) = match crate::notify::admin::list_query(query) {
        Ok(q) => q,
        Err(problem) => {
            return render::operator(&Refusal::new(ErrorCode::InvalidParameterValue, problem))
        }
    };
    match app.queries.emails(&filter, limit).await {
        Ok(emails) => json(
            StatusCode::OK,
            serde_json::json!({"emails": emails.iter().map(crate::notify::admin::email_json).collect::<Vec<_>>()}),
        ),
        Err(e) => unavailable(&e),
    }
}

/// Read-back for operators and tests: a subscriber (by BroadWorks user id
/// or subscriber id), its licenses and every command sent about it.
async fn subscriber_report(app: &App, key: &str) -> Response<ResponseBody> {
    let sub = match app.queries.subscriber(key).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return render::operator(&Refusal::new(ErrorCode::NotFound, "no such subscriber"))
        }
        Err(e) => return unavailable(&e),
    };
    let queries = &app.queries;
    let (licenses, events, commands) = match (
        queries.licenses(&sub.id).await,
        queries.license_events(&sub.id).await,
        queries.subscriber_commands(&sub.id).await,
    ) {
        (Ok(l), Ok(e), Ok(c)) => (l, e, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return unavailable(&e),
    };
    let commands: Vec<_> = commands
        .iter()
        .map(|c| {
            serde_json::json!({
                "seq": c.seq,
                "type": c.envelope.command.kind(),
                "state": c.state,
                "attempts": c.attempts,
                "lastError": c.last_error,
                "idempotencyKey": c.envelope.idempotency_key,
                "envelope": c.envelope,
            })
        })
        .collect();
    // The organization the subscriber belongs to (its name: from
    // BroadWorks' names when it was created here, else the key).
    let organization = match &sub.org_id {
        Some(org_id) => match queries.organization(org_id).await {
            Ok(found) => found.map(|(org, origin)| {
                serde_json::json!({
                    "id": org.id,
                    "name": org.name,
                    "enterpriseKey": org.enterprise_key,
                    "origin": origin.as_str(),
                })
            }),
            Err(e) => return unavailable(&e),
        },
        None => None,
    };
    // Its template, and whether it is disabled (removed from the
    // configuration: its subscribers stay readable).
    let template = match app.provisioning.template(&sub.provisioning_id).await {
        Ok(found) => found.map(|t| {
            serde_json::json!({
                "provisioningId": t.provisioning_id,
                "name": t.name,
                "source": t.source,
                "disabled": t.is_disabled(),
                "disabledAt": t.disabled_at,
            })
        }),
        Err(e) => return unavailable(&e),
    };
    // The activation (if any) with its current link, so an operator can
    // hand it to a user who has no email on record.
    let activation = match queries.activation(&sub.id).await {
        Ok(view) => view.map(|v| {
            let url = app.provisioning.activations().map(|l| l.url(&v.activation));
            serde_json::json!({"activation": v.activation, "activationUrl": url})
        }),
        Err(e) => return unavailable(&e),
    };
    json(
        StatusCode::OK,
        serde_json::json!({"subscriber": sub, "template": template, "organization": organization, "licenses": licenses, "licenseEvents": events, "commands": commands, "activation": activation}),
    )
}

/// A request's body (at most `max` bytes, 30 s) with its content type, or
/// the refusal to answer.
pub(super) async fn read_request(
    req: Request<Incoming>,
    max: usize,
) -> Result<(Option<String>, Bytes), Box<Response<ResponseBody>>> {
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    crate::http::body::read_body(&parts.headers, body, max, Duration::from_secs(30))
        .await
        .map(|bytes| (content_type, bytes))
        .map_err(|e| Box::new(body_refused(e)))
}

/// A body the transport refused (size, time, server busy): its code,
/// status and `Retry-After`, with the table's summary and the detail as
/// the message.
pub(in crate::http) fn body_refused(e: Refusal) -> Response<ResponseBody> {
    render::operator(&Refusal {
        detail: Some(e.summary()),
        ..e
    })
}

/// A store or mailer failure: 9021 with the error text (operators may see
/// it; the portal never does).
fn unavailable(e: &dyn std::fmt::Display) -> Response<ResponseBody> {
    render::operator(&Refusal::new(ErrorCode::StorageUnavailable, e.to_string()))
}

pub(in crate::http) fn json(status: StatusCode, body: serde_json::Value) -> Response<ResponseBody> {
    text(status, &body.to_string(), "application/json")
}

/// Reads a bounded JSON body: `Ok(None)` when it is empty, `Err` a message
/// naming what is wrong.
pub(in crate::http) async fn read_json_body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Option<T>, String> {
    let (parts, body) = req.into_parts();
    let bytes = crate::http::body::read_body(&parts.headers, body, max_bytes, timeout)
        .await
        .map_err(|e| e.summary().to_string())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("the body is not the expected JSON: {e}"))
}

fn text(status: StatusCode, body: &str, content_type: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
