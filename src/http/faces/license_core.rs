//! The remote license core's face (`bwgate license-core serve`):
//! `POST /license-core/v1/commands` with a run of commands
//! (`license::wire::CoreRequest`), answered with one result per command
//! attempted. Reached over mTLS only: a caller without a client
//! certificate the core trusts never gets here (the handshake refuses it),
//! and the face checks again.

use hyper::{Response, StatusCode};

use crate::domain::{ErrorCode, Refusal};
use crate::http::handler::json_response;
use crate::http::server::ConnInfo;
use crate::http::ResponseBody;
use crate::http::State;
use crate::license::admin::LicenseAdminError;
use crate::license::wire::{parse_read_query, ReadAnswer, ReadView};
use crate::license::wire::{CoreAnswer, CoreRequest, CoreResult, Outcome};
use crate::license::LicenseError;

/// A gateway reads an organization's subscriptions or holders for its
/// partner admins (it checked the partner owns the organization).
pub async fn read(
    app: &State,
    conn: &ConnInfo,
    query: Option<&str>,
) -> Result<Response<ResponseBody>, Refusal> {
    if conn.client.is_none() {
        return Err(Refusal::new(
            ErrorCode::ClientCertificateRequired,
            "The license core answers gateways with a client certificate.",
        ));
    }
    let (org_id, view) = parse_read_query(query).ok_or_else(|| {
        Refusal::new(
            ErrorCode::InvalidParameterValue,
            "Query: organization={id}&view=subscriptions|holders.",
        )
    })?;
    let failed = |e: LicenseAdminError| match e {
        LicenseAdminError::Refused(r) => r,
        other => Refusal::new(ErrorCode::StorageUnavailable, other.to_string()),
    };
    let answer = match view {
        ReadView::Subscriptions => ReadAnswer {
            subscriptions: app.licenses.subscriptions(&org_id).await.map_err(failed)?,
            holders: Vec::new(),
        },
        ReadView::Holders => ReadAnswer {
            subscriptions: Vec::new(),
            holders: app.licenses.holders(&org_id).await.map_err(failed)?,
        },
    };
    let body = serde_json::to_string(&answer)
        .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
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
