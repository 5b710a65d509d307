//! The ops listener (plain HTTP, loopback by default): `/healthz` (the
//! process is alive), `/readyz` (takes traffic: not draining, store
//! answers), `/metrics` (Prometheus text format), all open, and the
//! operator API behind `guard` (operator token, no browsers, JSON
//! bodies): `/admin/v1/subscribers/{id}`, `/admin/v1/emails` and
//! `POST /admin/v1/emails/test`; existing organizations and detach are in
//! `orgs.rs`, activation retry in `activation.rs`.

pub mod activation;
pub mod auth;
mod guard;
pub mod orgs;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::domain::{ErrorCode, Refusal};
use crate::http::admin_auth::OperatorAuth;
use crate::http::error::json as render;
use crate::http::ResponseBody;

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
    if req.uri().path().starts_with(ADMIN_PREFIX) {
        if let Err(refusal) = guard::admit(operator, local, &req).await {
            return refusal;
        }
        return operator_api(app, req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n", "text/plain");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n", "text/plain"),
        "/readyz" => readiness(app).await,
        "/metrics" => text(
            StatusCode::OK,
            &app.metrics.render(),
            "text/plain; version=0.0.4",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n", "text/plain"),
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

/// The `/admin/...` routes, once `admin_guard` admitted the request.
async fn operator_api(app: &App, req: Request<Incoming>) -> Response<ResponseBody> {
    if req.uri().path() == EMAILS_TEST {
        return email_test(app, req).await;
    }
    if let Some(key) = req
        .uri()
        .path()
        .strip_prefix(SUBSCRIBERS_PREFIX)
        .and_then(|rest| rest.strip_suffix("/activation"))
    {
        let key = key.to_string();
        return crate::http::admin_activation::retry(app, req, &key).await;
    }
    let req = match orgs::route(app, req).await {
        Ok(resp) => return resp,
        Err(req) => req,
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n", "text/plain");
    }
    match req.uri().path() {
        path if path.starts_with(SUBSCRIBERS_PREFIX) => {
            subscriber_report(app, &path[SUBSCRIBERS_PREFIX.len()..]).await
        }
        EMAILS => email_list(app, req.uri().query()).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n", "text/plain"),
    }
}

const ADMIN_PREFIX: &str = "/admin/";
const SUBSCRIBERS_PREFIX: &str = "/admin/v1/subscribers/";
const EMAILS: &str = "/admin/v1/emails";
const EMAILS_TEST: &str = "/admin/v1/emails/test";
/// Largest body `POST /admin/v1/emails/test` reads.
const EMAIL_TEST_MAX_BODY: usize = 16 * 1024;

/// `POST /admin/v1/emails/test` `{"to": "…", "subject": "…"}`: enqueues a
/// test email (kind `test`) so an operator can check the relay; 202 with
/// its id. Read it back with `GET /admin/v1/emails?kind=test`.
async fn email_test(app: &App, req: Request<Incoming>) -> Response<ResponseBody> {
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n", "text/plain");
    }
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
        Err(e) => {
            let e = Refusal::new(e.code, e.summary());
            return render::operator(&e);
        }
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
        serde_json::json!({"subscriber": sub, "licenses": licenses, "licenseEvents": events, "commands": commands, "activation": activation}),
    )
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
