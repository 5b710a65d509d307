//! `POST /uc-one/v1/provisioning/{provisioningId}`: the flow-through face.
//! Authenticates the AS (HTTP Basic, the template's provisioning account),
//! parses the document, has it accepted durably, and answers one result
//! line per operation. 200 means "recorded, provisioning has started".

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use crate::domain::template::{PROVISIONING_PASSWORD_MAX, PROVISIONING_USERNAME_MAX};
use crate::domain::Refusal;
use crate::domain::{CustomerTemplate, ErrorCode};
use crate::flowthrough::{parse_request, render_response, ParseLimits, ResultLine};
use crate::http::lockout::{AttemptKey, KeyKind, Realm};
use crate::http::ResponseBody;
use crate::http::State;
use crate::provision::credentials::AuthResult;

pub async fn provision(
    app: &State,
    peer: IpAddr,
    parts: &Parts,
    body: Bytes,
    provisioning_id: &str,
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(ct) = content_type {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/xml") && !mime.eq_ignore_ascii_case("text/xml") {
            return Err(Refusal::new(
                ErrorCode::UnsupportedMediaType,
                "Send application/xml or text/xml.",
            ));
        }
    }
    let provisioning = &app.provisioning;
    let template = authenticate(app, parts, peer, provisioning_id).await?;
    if template.settings.wholesale {
        return Err(Refusal::new(
            ErrorCode::WholesaleRejected,
            "This template belongs to a wholesale customer.",
        ));
    }

    let limits = ParseLimits::from(&app.config.limits);
    // Off the async worker when large (see `flowthrough::offload`).
    let owned_content_type = content_type.map(str::to_owned);
    let parsed = app
        .xml_parses
        .run(body.len(), move || {
            parse_request(&body, owned_content_type.as_deref(), &limits)
        })
        .await
        .map_err(|_| {
            Refusal::new(ErrorCode::ShuttingDown, "The server is shutting down.")
        })?
        .inspect_err(|e| {
            metrics::counter!("bwgate_flowthrough_documents_rejected_total", "code" => e.code.code().to_string())
                .increment(1);
        })?;
    if !parsed.unknown_elements.is_empty() {
        metrics::counter!("bwgate_flowthrough_unknown_elements_total")
            .increment(parsed.unknown_elements.len() as u64);
        tracing::debug!(tracking_id, unknown = ?parsed.unknown_elements, "ignored unknown elements");
    }
    let request_id = parsed.request_id.clone();
    let outcome = provisioning.accept(&template, parsed, tracking_id).await?;
    if let Some(first) = &outcome.replay_of {
        tracing::info!(tracking_id, first_tracking_id = %first, "replayed flow-through document");
    }
    let lines: Vec<ResultLine> = outcome
        .results
        .iter()
        .map(|r| {
            metrics::counter!(
                "bwgate_flowthrough_operations_total",
                "operation" => r.operation.as_str(),
                "result" => if r.error_code.is_some() { "error" } else { "accepted" }
            )
            .increment(1);
            ResultLine {
                operation: r.operation,
                user_id: r.user_id.clone(),
                outcome: match (r.status, r.error_code) {
                    (Some(status), _) => Ok(status.as_str().to_string()),
                    (None, code) => {
                        let code = code
                            .and_then(ErrorCode::from_code)
                            .unwrap_or(ErrorCode::Internal);
                        let summary = r
                            .error_message
                            .clone()
                            .unwrap_or_else(|| code.info().summary.to_string());
                        Err((code, summary))
                    }
                },
            }
        })
        .collect();
    let xml = render_response(request_id.as_deref(), tracking_id, &lines);
    let mut resp = Response::new(ResponseBody::new(Bytes::from(xml)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=UTF-8"),
    );
    Ok(resp)
}

/// The template whose provisioning account the request's Basic
/// credentials are. An unknown provisioningId gets the answer of a wrong
/// password (401, 9004) after the same argon2 work, so nobody learns which
/// provisioningIds exist without the account; the log says which it was.
/// Wrong credentials count per (provisioningId, user name) and per
/// (provisioningId, client address); a locked key is refused (429, 9027)
/// before anything is verified, except that a locked user name still lets
/// through a secret verified before (the AS's, from the cache).
async fn authenticate(
    app: &State,
    parts: &Parts,
    peer: IpAddr,
    provisioning_id: &str,
) -> Result<Arc<CustomerTemplate>, Refusal> {
    // A disabled template (removed from the configuration) is answered
    // like an unknown provisioningId: nobody learns that it exists.
    let template = app.provisioning.active_template(provisioning_id).await?;
    let presented = basic_credentials(parts);
    let (user, password) = match &presented {
        Presented::Missing => return Err(unauthorized()),
        Presented::Unusable => ("", ""),
        Presented::Basic(u, p) => (u.as_str(), p.as_str()),
    };
    let address = crate::http::lockout::client_address(peer);
    let keys = [
        AttemptKey {
            realm: Realm::Provisioning,
            scope: provisioning_id,
            kind: KeyKind::User,
            value: user,
        },
        AttemptKey {
            realm: Realm::Provisioning,
            scope: provisioning_id,
            kind: KeyKind::Address,
            value: &address,
        },
    ];
    let refuse_locked = |secs| {
        metrics::counter!("bwgate_auth_locked_refusals_total", "realm" => "provisioning")
            .increment(1);
        Err(locked(secs))
    };
    if let Err(secs) = app.lockout.check(&keys[1..]) {
        return refuse_locked(secs);
    }
    if let Err(secs) = app.lockout.check(&keys[..1]) {
        // The user name is locked (maybe by somebody else's guesses): the
        // AS whose secret was verified before keeps working; anything else
        // is refused unverified and counts against its address, so nobody
        // guesses on through the lock.
        if let Some(t) =
            template.filter(|t| app.provisioning.credentials.is_verified(t, user, password))
        {
            return Ok(t);
        }
        let _ = app.lockout.failure(&keys[1..]);
        return refuse_locked(secs);
    }
    let result = if matches!(presented, Presented::Unusable) {
        // Over BroadWorks' lengths or not Basic at all: never hashed.
        AuthResult::Denied
    } else {
        // Unknown provisioningIds queue per address: they name no tenant.
        let tenant = match &template {
            Some(_) => format!("provisioning:{provisioning_id}"),
            None => format!("address:{address}"),
        };
        app.provisioning
            .credentials
            .check(
                &app.verify_queue,
                &tenant,
                template.as_deref(),
                user,
                password,
            )
            .await
    };
    match (result, template) {
        (AuthResult::Ok, Some(t)) => {
            app.lockout.success(&keys[0]);
            Ok(t)
        }
        (AuthResult::Busy, _) => Err(
            Refusal::new(ErrorCode::VerificationBusy, "Retry after 1 s.")
                .retry_after(crate::provision::verify_queue::BUSY_RETRY_AFTER_SECS),
        ),
        (_, template) => {
            metrics::counter!("bwgate_flowthrough_auth_failures_total").increment(1);
            tracing::info!(
                provisioning_id = %provisioning_id.chars().take(64).collect::<String>(),
                %peer,
                reason = if template.is_none() { "unknown provisioningId" } else { "wrong provisioning credentials" },
                "flow-through authentication failed"
            );
            let _ = app.lockout.failure(&keys);
            Err(unauthorized())
        }
    }
}

fn locked(secs: u64) -> Refusal {
    Refusal::new(
        ErrorCode::TooManyAttempts,
        format!("Too many wrong credentials; retry after {secs} s."),
    )
    .retry_after(secs)
}

fn unauthorized() -> Refusal {
    Refusal::new(
        ErrorCode::BadCredentials,
        "Use HTTP Basic with the template's provisioning account.",
    )
}

/// Adds the Basic challenge to 401 answers of this face.
pub fn challenge(resp: &mut Response<ResponseBody>) {
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"bwgate provisioning\", charset=\"UTF-8\""),
        );
    }
}

/// What the request's `Authorization` header holds.
enum Presented {
    Missing,
    /// Present but not Basic, not decodable, or over BroadWorks' limits.
    Unusable,
    Basic(String, String),
}

/// `Authorization: Basic b64(user:password)`, within BroadWorks' limits
/// (checked before anything is hashed).
fn basic_credentials(parts: &Parts) -> Presented {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Presented::Missing;
    };
    let decode = || {
        let (scheme, encoded) = value.to_str().ok()?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > BASIC_MAX_ENCODED {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        if user.is_empty()
            || user.chars().count() > PROVISIONING_USERNAME_MAX
            || password.is_empty()
            || password.chars().count() > PROVISIONING_PASSWORD_MAX
        {
            return None;
        }
        Some((user.to_string(), password.to_string()))
    };
    match decode() {
        Some((u, p)) => Presented::Basic(u, p),
        None => Presented::Unusable,
    }
}

/// base64 of the longest `user:password` BroadWorks allows (4 UTF-8
/// bytes a character at most), with room for padding and spaces.
const BASIC_MAX_ENCODED: usize =
    ((PROVISIONING_USERNAME_MAX + 1 + PROVISIONING_PASSWORD_MAX) * 4).div_ceil(3) + 8;
