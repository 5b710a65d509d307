//! Portal pages for org-attach approval: an organization admin opens the
//! link from the `OrgAttachApproval` email (`GET /orgs/approve?token=…`),
//! reads what is asked and approves with a form (`POST /orgs/approve`),
//! which grants the partner external full admin on the organization. An
//! altered, expired or already used link shows an error page and changes
//! nothing.

use hyper::{Response, StatusCode};

use crate::app::App;
use crate::html::escape as esc;
use crate::http::portal::{html, page as render};
use crate::http::ResponseBody;
use crate::orgs::{ApprovalClaim, TokenError};
use crate::provision::ApproveOutcome;

fn token_from(pairs: &[u8]) -> Option<String> {
    form_urlencoded::parse(pairs)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

fn problem(
    status: StatusCode,
    heading: &str,
    message: &str,
    tracking_id: &str,
) -> Response<ResponseBody> {
    html(
        status,
        render(
            heading,
            &format!(
                "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>\
<p>Nothing was changed. Reference: <code>{}</code></p>",
                esc(heading),
                esc(message),
                esc(tracking_id)
            ),
        ),
    )
}

/// Verifies the token; `Err` is the error page to show.
fn claim(
    app: &App,
    token: Option<String>,
    tracking_id: &str,
) -> Result<ApprovalClaim, Box<Response<ResponseBody>>> {
    let Some(links) = app.provisioning.approvals() else {
        return Err(Box::new(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Approval unavailable",
            "organization approvals are not enabled on this server",
            tracking_id,
        )));
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "Approval link incomplete",
            "the approval link has no token; open the link from the email exactly as sent",
            tracking_id,
        )));
    };
    links
        .signer
        .verify(&token, crate::provision::now_millis())
        .map_err(|e| {
            let heading = match e {
                TokenError::Invalid => "Approval link not valid",
                TokenError::Expired => "Approval link expired",
            };
            Box::new(problem(
                StatusCode::BAD_REQUEST,
                heading,
                &e.to_string(),
                tracking_id,
            ))
        })
}

/// `GET /orgs/approve?token=…`
pub async fn page(app: &App, query: Option<&str>, tracking_id: &str) -> Response<ResponseBody> {
    let token = token_from(query.unwrap_or("").as_bytes());
    let claim = match claim(app, token.clone(), tracking_id) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    let report = match app.queries.existing_org(&claim.org_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "Organization not found",
                "the organization of this request no longer exists",
                tracking_id,
            )
        }
        Err(e) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                &e.to_string(),
                tracking_id,
            )
        }
    };
    let partner = app.queries.partner(&claim.partner_id).await.ok().flatten();
    let templates = app.provisioning.templates_of_partner(&claim.partner_id);
    let admin_email = templates
        .iter()
        .find_map(|t| t.settings.partner_admin_email.clone())
        .or_else(|| partner.as_ref().and_then(|p| p.admin_email.clone()))
        .unwrap_or_else(|| "(not set)".to_string());
    let partner_name = partner
        .map(|p| p.name)
        .unwrap_or_else(|| claim.partner_id.clone());
    let body = format!(
        "<h1>Approve an external administrator</h1>\
<p>The service provider <strong>{partner}</strong> asks to provision users in your \
organization <strong>{org}</strong> and to manage it.</p>\
<dl><dt>Organization</dt><dd>{org}</dd><dt>Partner administrator</dt><dd>{admin}</dd>\
<dt>Role requested</dt><dd>External full administrator</dd></dl>\
<p>If you approve, the partner administrator gets full administrator rights in \
<strong>{org}</strong>, and the provisioning that failed with error 2017 succeeds when retried.</p>\
<form method=\"post\" action=\"/orgs/approve\">\
<input type=\"hidden\" name=\"token\" value=\"{token}\">\
<button type=\"submit\">Approve {admin} as external full administrator</button></form>\
<p>If you do not recognize this request, close this page: nothing changes.</p>",
        partner = esc(&partner_name),
        org = esc(&report.organization.name),
        admin = esc(&admin_email),
        token = esc(token.as_deref().unwrap_or("")),
    );
    html(
        StatusCode::OK,
        render("Approve an external administrator", &body),
    )
}

/// `POST /orgs/approve` with form field `token`.
pub async fn approve(app: &App, body: &[u8], tracking_id: &str) -> Response<ResponseBody> {
    let claim = match claim(app, token_from(body), tracking_id) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    match app
        .provisioning
        .approve_org(&claim, crate::provision::now_millis())
        .await
    {
        Ok(ApproveOutcome::Approved { org_name }) => {
            tracing::info!(org_id = %claim.org_id, partner_id = %claim.partner_id, tracking_id, "organization admin approved partner as full admin");
            html(
                StatusCode::OK,
                render(
                    "Approved",
                    &format!(
                        "<h1>Approved</h1><p role=\"status\">The partner is now an external full \
administrator of <strong>{}</strong>. Provisioning of its users can proceed.</p>",
                        esc(&org_name)
                    ),
                ),
            )
        }
        Ok(ApproveOutcome::AlreadyUsed) => problem(
            StatusCode::CONFLICT,
            "Approval link already used",
            "this approval link was already used; the approval stands",
            tracking_id,
        ),
        Ok(ApproveOutcome::UnknownOrg) => problem(
            StatusCode::NOT_FOUND,
            "Organization not found",
            "the organization of this request no longer exists",
            tracking_id,
        ),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again later",
            &e.to_string(),
            tracking_id,
        ),
    }
}
