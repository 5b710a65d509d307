//! Admin listener routes for existing organizations (org attach):
//!
//! * `PUT /admin/v1/organizations/{id}`: one `ExistingOrganization` (JSON), upsert.
//! * `POST /admin/v1/organizations/import`: a JSON array, or CSV
//!   (`orgs::import::CSV_HEADER`), all in one transaction.
//! * `GET /admin/v1/organizations/{id}`: the organization, its link,
//!   partner roles and the approval emails sent about it.
//! * `POST /admin/v1/enterprises/{partnerId}/{enterpriseKey}/detach`.
//!
//! Errors are JSON `{"message", "errors": [{errorCode, description, row?, field?}]}`.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::domain::{ErrorCode, Refusal};
use crate::http::ResponseBody;
use crate::orgs::import::{self, ImportProblem};
use crate::provision::{DataError, DetachOutcome};

/// Largest organization document or import file read.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub(super) async fn put_org(app: &App, id: &str, req: Request<Incoming>) -> Response<ResponseBody> {
    let (_, bytes) = match super::read_request(req, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let org = match import::parse_one(&bytes, id) {
        Ok(org) => org,
        Err(problems) => return invalid(problems),
    };
    match app.provisioning.upsert_existing_orgs(vec![org]).await {
        Ok(()) => get_org(app, id).await,
        Err(e) => store_error(&e),
    }
}

pub(super) async fn import_orgs(app: &App, req: Request<Incoming>) -> Response<ResponseBody> {
    let (ct, bytes) = match super::read_request(req, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let orgs = match import::parse_import(&bytes, ct.as_deref()) {
        Ok(orgs) => orgs,
        Err(problems) => return invalid(problems),
    };
    let ids: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
    match app.provisioning.upsert_existing_orgs(orgs).await {
        Ok(()) => json_resp(StatusCode::OK, json!({"imported": ids.len(), "ids": ids})),
        Err(e) => store_error(&e),
    }
}

pub(super) async fn get_org(app: &App, id: &str) -> Response<ResponseBody> {
    match app.queries.existing_org(id).await {
        Ok(Some(r)) => json_resp(
            StatusCode::OK,
            json!({
                "organization": r.organization,
                "link": r.link,
                "partnerRoles": r.partner_roles,
                "approvalEmails": r.approval_emails.iter().map(crate::notify::admin::email_json).collect::<Vec<_>>(),
                "commands": r.commands,
            }),
        ),
        Ok(None) => error(
            ErrorCode::NotFound,
            &format!("no existing organization '{id}'"),
            vec![],
        ),
        Err(e) => store_error(&e),
    }
}

pub(super) async fn detach(app: &App, partner: &str, key: &str) -> Response<ResponseBody> {
    let tracking_id = crate::http::tracking::generate();
    let now = crate::provision::now_millis();
    match app
        .provisioning
        .detach_enterprise(partner, key, &tracking_id, now)
        .await
    {
        Ok(DetachOutcome::Detached(report)) => {
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            body["trackingId"] = json!(tracking_id);
            json_resp(StatusCode::OK, body)
        }
        Ok(DetachOutcome::NoOrganization) => error(
            ErrorCode::NotFound,
            &format!("enterprise '{key}' of partner '{partner}' has no organization"),
            vec![],
        ),
        // 409 as documented, with the code that carries 409 in the table
        // (it answered 9017, whose status is 400, before).
        Ok(DetachOutcome::NotAttached { org_id }) => error(
            ErrorCode::WrongState,
            &format!("organization '{org_id}' was created for this enterprise, not attached: nothing to detach"),
            vec![],
        ),
        Ok(DetachOutcome::NotAdmin { org_id }) => error(
            ErrorCode::PartnerNotAdmin,
            &format!(
                "partner '{partner}' is not a full admin of organization '{org_id}': \
                 detaching needs full admin; its administrators must approve the \
                 partner as external full admin first"
            ),
            vec![],
        ),
        Err(e) => store_error(&e),
    }
}

fn invalid(problems: Vec<ImportProblem>) -> Response<ResponseBody> {
    let first = problems
        .first()
        .map(|p| match p.row {
            Some(r) => format!("row {r}: {}: {}", p.field, p.description),
            None => format!("{}: {}", p.field, p.description),
        })
        .unwrap_or_default();
    error(
        ErrorCode::InvalidParameterValue,
        &format!("invalid organization data, nothing was changed: {first}"),
        problems,
    )
}

/// The operator refusal, with one `errors[]` entry per import problem
/// when there are any; the status is the table's.
fn error(code: ErrorCode, message: &str, problems: Vec<ImportProblem>) -> Response<ResponseBody> {
    let refusal = Refusal::new(code, message);
    if problems.is_empty() {
        return crate::http::error::json::operator(&refusal);
    }
    let errors = problems
        .iter()
        .map(|p| {
            json!({"errorCode": code.code(), "description": p.description, "field": p.field, "row": p.row})
        })
        .collect();
    crate::http::error::json::operator_with(&refusal, errors)
}

fn store_error(e: &DataError) -> Response<ResponseBody> {
    let code = if e.is_missing_reference() {
        ErrorCode::InvalidParameterValue
    } else {
        ErrorCode::StorageUnavailable
    };
    error(code, &e.to_string(), vec![])
}

fn json_resp(status: StatusCode, body: serde_json::Value) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
