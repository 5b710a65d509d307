//! Portal pages for org-attach approval: an organization admin opens the
//! link from the `OrgAttachApproval` email (`GET /orgs/approve?token=…`),
//! reads what is asked and approves with a form (`POST /orgs/approve`),
//! which grants the partner external full admin on the organization. An
//! altered, expired or already used link shows an error page and changes
//! nothing. A store failure shows the table's summary; the log keeps the
//! error text with the tracking id.

use hyper::{Response, StatusCode};

use crate::app::App;
use crate::domain::{ErrorCode, Refusal};
use crate::html::escape as esc;
use crate::http::error::html as refusal;
use crate::http::portal::{html, page as render};
use crate::http::ResponseBody;
use crate::orgs::{ApprovalClaim, TokenError};
use crate::provision::ApproveOutcome;

fn token_from(pairs: &[u8]) -> Option<String> {
    form_urlencoded::parse(pairs)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// An error page: the heading, the refusal's reason and code, the
/// reference; the table's status.
fn problem(r: &Refusal, heading: &str, tracking_id: &str) -> Response<ResponseBody> {
    refusal::refusal_page(r, heading, &refusal::alert(r), tracking_id)
}

/// The link's own words for why it is refused (our sentences, never an
/// error's text).
fn token_refusal(e: TokenError) -> Refusal {
    Refusal::new(ErrorCode::InvalidParameterValue, e.to_string())
}

/// The store failed: the page shows the table's summary (9021) and the
/// log keeps the error with the tracking id.
fn unavailable(e: &dyn std::fmt::Display, tracking_id: &str) -> Response<ResponseBody> {
    tracing::warn!(tracking_id, error = %e, "organization approval: store failed");
    problem(
        &Refusal::bare(ErrorCode::StorageUnavailable),
        "Try again later",
        tracking_id,
    )
}

fn org_gone(tracking_id: &str) -> Response<ResponseBody> {
    problem(
        &Refusal::new(
            ErrorCode::NotFound,
            "the organization of this request no longer exists",
        ),
        "Organization not found",
        tracking_id,
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
            &Refusal::new(
                ErrorCode::UnderMaintenance,
                "organization approvals are not enabled on this server",
            ),
            "Approval unavailable",
            tracking_id,
        )));
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Box::new(problem(
            &Refusal::new(
                ErrorCode::MissingParameter,
                "the approval link has no token; open the link from the email exactly as sent",
            ),
            "Approval link incomplete",
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
            Box::new(problem(&token_refusal(e), heading, tracking_id))
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
        Ok(None) => return org_gone(tracking_id),
        Err(e) => return unavailable(&e, tracking_id),
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
            &Refusal::new(
                ErrorCode::WrongState,
                "this approval link was already used; the approval stands",
            ),
            "Approval link already used",
            tracking_id,
        ),
        Ok(ApproveOutcome::UnknownOrg) => org_gone(tracking_id),
        Err(e) => unavailable(&e, tracking_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use http_body_util::BodyExt;

    async fn text(resp: Response<ResponseBody>) -> String {
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn a_store_failure_shows_the_table_summary_not_the_error_text() {
        let e = StoreError::Database("disk I/O error at /var/lib/bwgate/bwgate.db".into());
        let resp = unavailable(&e, "T-9");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let page = text(resp).await;
        assert!(!page.contains("disk I/O"), "{page}");
        assert!(!page.contains("bwgate.db"), "{page}");
        assert!(
            page.contains("Storage unavailable; retry later. (error 9021)"),
            "{page}"
        );
        assert!(page.contains("<code>T-9</code>"), "{page}");
    }

    #[tokio::test]
    async fn link_refusals_keep_their_words_and_take_the_tables_status() {
        for (e, says) in [
            (TokenError::Invalid, "not valid"),
            (TokenError::Expired, "expired"),
        ] {
            let resp = problem(&token_refusal(e), "Approval link", "T-1");
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let page = text(resp).await;
            assert!(
                page.contains(says) && page.contains("(error 9017)"),
                "{page}"
            );
        }
    }
}
