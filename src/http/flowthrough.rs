//! `POST /uc-one/v1/provisioning/{provisioningId}`: the flow-through face.
//! Authenticates the AS (HTTP Basic, the template's provisioning account),
//! parses the document, has it accepted durably, and answers one result
//! line per operation. 200 means "recorded, provisioning has started".

use base64::Engine;
use bytes::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use super::error::WireError;
use super::ResponseBody;
use crate::app::App;
use crate::domain::template::{PROVISIONING_PASSWORD_MAX, PROVISIONING_USERNAME_MAX};
use crate::domain::ErrorCode;
use crate::flowthrough::{parse_request, render_response, ParseLimits, ResultLine};
use crate::provision::credentials::AuthResult;

pub async fn provision(
    app: &App,
    parts: &Parts,
    body: Bytes,
    provisioning_id: &str,
    tracking_id: &str,
) -> Result<Response<ResponseBody>, WireError> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(ct) = content_type {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/xml") && !mime.eq_ignore_ascii_case("text/xml") {
            return Err(WireError::with_detail(
                ErrorCode::UnsupportedMediaType,
                "Send application/xml or text/xml.",
            ));
        }
    }
    let provisioning = &app.provisioning;
    let template = provisioning
        .template(provisioning_id)
        .await?
        .ok_or_else(|| {
            WireError::with_detail(
                ErrorCode::UnknownProvisioningId,
                "No customer template has this provisioningId.",
            )
        })?;
    let (user, password) = basic_credentials(parts).ok_or_else(unauthorized)?;
    if provisioning
        .credentials
        .check(&template, &user, &password)
        .await
        != AuthResult::Ok
    {
        metrics::counter!("bwgate_flowthrough_auth_failures_total").increment(1);
        return Err(unauthorized());
    }
    if template.settings.wholesale {
        return Err(WireError::with_detail(
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
            WireError::with_detail(ErrorCode::ShuttingDown, "The server is shutting down.")
        })?
        .map_err(|e| {
            metrics::counter!("bwgate_flowthrough_documents_rejected_total", "code" => e.code.code().to_string())
                .increment(1);
            WireError::with_detail(e.code, e.message)
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

fn unauthorized() -> WireError {
    WireError::with_detail(
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

/// `Authorization: Basic b64(user:password)`, within BroadWorks' limits.
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
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
}
