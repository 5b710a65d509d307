//! BroadWorks workspaces for partners, at Cisco's paths and shapes
//! (`specs/webex-broadworks.openapi.json`, "BroadWorks Workspaces"), on
//! the portal listener with the partner admin token:
//!
//! * `POST /v1/broadworks/workspaces` `{"provisioningId", "userId",
//!   "spEnterpriseId", "displayName", "primaryPhoneNumber"?, "extension"?}`
//! * `PUT /v1/broadworks/workspaces/{workspaceId}` `{"userId"?,
//!   "primaryPhoneNumber"?, "extension"?}`
//! * `DELETE /v1/broadworks/workspaces/{workspaceId}` (204)
//! * `GET /v1/broadworks/workspaces/{workspaceId}` (bwgate's: Cisco has
//!   none; the same shape)
//!
//! Answers are Cisco's `WorkspaceResponse` plus `status` and `errors`
//! (bwgate's additions: the license core answers after the request).

use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::domain::ids::UserId;
use crate::domain::phone::DirectoryNumber;
use crate::domain::subscriber::{extension, FieldError};
use crate::domain::timestamp::iso_millis;
use crate::domain::workspace::{WorkspaceRecord, DISPLAY_NAME_MAX};
use crate::domain::{ErrorCode, Refusal};
use crate::http::handler::json_response;
use crate::http::ResponseBody;
use crate::provision::workspaces::{NewWorkspace, WorkspaceChange};

/// Cisco's limit on a workspace id in the path.
pub const ID_MAX: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateDoc {
    provisioning_id: Option<String>,
    user_id: Option<String>,
    sp_enterprise_id: Option<String>,
    display_name: Option<String>,
    primary_phone_number: Option<String>,
    extension: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateDoc {
    user_id: Option<String>,
    primary_phone_number: Option<String>,
    extension: Option<String>,
}

fn document<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("The body is not the expected JSON: {e}"),
        )
    })
}

fn field(e: FieldError) -> Refusal {
    Refusal::new(e.code, format!("{}: {}", e.field, e.message))
}

fn required(value: Option<String>, name: &str) -> Result<String, Refusal> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Refusal::new(ErrorCode::MissingParameter, format!("{name} is required.")))
}

fn display_name(v: String) -> Result<String, Refusal> {
    if v.chars().count() > DISPLAY_NAME_MAX || v.chars().any(char::is_control) {
        return Err(Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("displayName: 1 to {DISPLAY_NAME_MAX} characters, no control characters"),
        ));
    }
    Ok(v)
}

fn number(v: Option<String>) -> Result<Option<DirectoryNumber>, Refusal> {
    v.map(|n| {
        DirectoryNumber::parse(n.trim()).map_err(|e| field(e.for_field("primaryPhoneNumber")))
    })
    .transpose()
}

fn ext(v: Option<String>) -> Result<Option<String>, Refusal> {
    v.map(|e| extension(e.trim()).map_err(field)).transpose()
}

fn user_id(v: &str) -> Result<UserId, Refusal> {
    UserId::parse(v).map_err(field)
}

/// A workspace as Cisco answers it, with bwgate's `status` and `errors`.
pub fn workspace_json(w: &WorkspaceRecord) -> serde_json::Value {
    json!({
        "id": w.id,
        "provisioningId": w.provisioning_id,
        "userId": w.user_id.as_str(),
        "spEnterpriseId": w.sp_enterprise_id,
        "displayName": w.display_name,
        "primaryPhoneNumber": w.phone_number.as_ref().map(|n| n.as_str()),
        "extension": w.extension,
        "created": iso_millis(w.created_at),
        "status": w.status.as_str(),
        "errors": w.errors,
    })
}

fn answer(w: &WorkspaceRecord) -> Response<ResponseBody> {
    json_response(StatusCode::OK, workspace_json(w).to_string())
}

fn not_found() -> Refusal {
    Refusal::new(ErrorCode::NotFound, "No such workspace.")
}

pub(super) async fn create(
    app: &App,
    partner: &str,
    body: &[u8],
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let doc: CreateDoc = document(body)?;
    let new = NewWorkspace {
        provisioning_id: required(doc.provisioning_id, "provisioningId")?,
        user_id: user_id(&required(doc.user_id, "userId")?)?,
        sp_enterprise_id: required(doc.sp_enterprise_id, "spEnterpriseId")?,
        display_name: display_name(required(doc.display_name, "displayName")?)?,
        phone_number: number(doc.primary_phone_number)?,
        extension: ext(doc.extension)?,
    };
    let now = crate::provision::now_millis();
    let w = app
        .provisioning
        .partner_create_workspace(partner, new, tracking_id, now)
        .await??;
    tracing::info!(partner_id = partner, workspace_id = %w.id, "workspace provisioned by a partner");
    Ok(answer(&w))
}

pub(super) async fn update(
    app: &App,
    partner: &str,
    id: &str,
    body: &[u8],
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let doc: UpdateDoc = document(body)?;
    let change = WorkspaceChange {
        user_id: doc.user_id.map(|u| user_id(u.trim())).transpose()?,
        phone_number: number(doc.primary_phone_number)?,
        extension: ext(doc.extension)?,
    };
    let now = crate::provision::now_millis();
    let w = app
        .provisioning
        .partner_update_workspace(partner, id, change, tracking_id, now)
        .await??;
    Ok(answer(&w))
}

pub(super) async fn remove(
    app: &App,
    partner: &str,
    id: &str,
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let now = crate::provision::now_millis();
    let w = app
        .provisioning
        .partner_remove_workspace(partner, id, tracking_id, now)
        .await??;
    tracing::info!(partner_id = partner, workspace_id = %w.id, "workspace removed by a partner");
    let mut resp = Response::new(ResponseBody::new(bytes::Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

pub(super) async fn get(
    app: &App,
    partner: &str,
    id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let w = app
        .provisioning
        .partner_workspace(partner, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(answer(&w))
}
