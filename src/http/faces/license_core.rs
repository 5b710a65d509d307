//! The remote license core's face (`bwgate license-core serve`):
//! `POST /license-core/v1/commands` with a run of commands
//! (`license::wire::CoreRequest`), answered with one result per command
//! attempted; and an organization's license resources
//! (`/license-core/v1/organizations/{id}/…`) that a gateway relays for its
//! operator and partner admins. Reached over mTLS only: a caller without a client
//! certificate the core trusts never gets here (the handshake refuses it),
//! and the face checks again.

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use crate::domain::{ErrorCode, Refusal};
use crate::http::faces::org_licenses::{self, Actor, Input, OrgResource};
use crate::http::handler::json_response;
use crate::http::server::ConnInfo;
use crate::http::ResponseBody;
use crate::http::State;
use crate::license::wire::{CoreAnswer, CoreRequest, CoreResult, Outcome};
use crate::license::LicenseError;

/// A gateway relays its operator's or a partner admin's request on an
/// organization's licenses (it checked the partner owns the
/// organization); answered as the operator API answers it.
pub async fn org_resource(
    app: &State,
    conn: &ConnInfo,
    parts: &Parts,
    body: Bytes,
    org_id: &str,
    resource: &OrgResource,
) -> Result<Response<ResponseBody>, Refusal> {
    if conn.client.is_none() {
        return Err(Refusal::new(
            ErrorCode::ClientCertificateRequired,
            "The license core answers gateways with a client certificate.",
        ));
    }
    let input = Input::from_parts(parts, body, false);
    let partner = parts
        .headers
        .get(org_licenses::PARTNER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let actor = Actor::Gateway { partner };
    let answer = org_licenses::serve(app, &actor, org_id, resource, input).await?;
    Ok(answer.into_response())
}

pub async fn apply(
    app: &State,
    conn: &ConnInfo,
    body: &[u8],
) -> Result<Response<ResponseBody>, Refusal> {
    if conn.client.is_none() {
        return Err(Refusal::new(
            ErrorCode::ClientCertificateRequired,
            "The license core takes commands from gateways with a client certificate.",
        ));
    }
    let request: CoreRequest = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("Not a command run: {e}."),
        )
    })?;
    if request.commands.is_empty() {
        return Err(Refusal::new(
            ErrorCode::MissingParameter,
            "The run holds no command.",
        ));
    }
    let results = app.licenses.apply_commands(&request.commands).await;
    let results = request
        .commands
        .iter()
        .zip(results)
        .map(|(env, result)| {
            let key = env.idempotency_key.clone();
            match result {
                Ok(granted) => CoreResult {
                    idempotency_key: key,
                    outcome: Outcome::Applied,
                    error_code: granted.notice.as_ref().map(|n| n.code.code()),
                    description: granted.notice.map(|n| n.message().to_string()),
                    device: granted.device,
                },
                Err(LicenseError::Rejected(r)) => CoreResult {
                    idempotency_key: key,
                    outcome: Outcome::Refused,
                    error_code: Some(r.code.code()),
                    description: Some(r.message().to_string()),
                    device: None,
                },
                Err(LicenseError::Unavailable(why)) => CoreResult {
                    idempotency_key: key,
                    outcome: Outcome::Unavailable,
                    error_code: None,
                    description: Some(why),
                    device: None,
                },
            }
        })
        .collect();
    let answer = serde_json::to_string(&CoreAnswer { results })
        .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
    Ok(json_response(StatusCode::OK, answer))
}
