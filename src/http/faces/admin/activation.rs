//! Admin listener: "retry activation" for a subscriber waiting for its user
//! (`pending_email_input`, `pending_email_validation`,
//! `pending_user_migration`) or failed (`error`):
//!
//! `POST /admin/v1/subscribers/{userId or id}/activation` with an optional
//! JSON body `{"email": "…"}` issues a new link (older links stop working)
//! and emails it to that address, else to the address on record; for a
//! consent (`pending_user_migration`) it resends the consent email. A
//! failed user is provisioned again (with a new address when one is given
//! and may be taken at once; else it waits for its code or consent). The
//! answer carries the link, so an operator can also hand it over:
//! `{"subscriberId","status","purpose","activationUrl","linkExpiresAt",
//! "emailQueued"}` (link fields `null` when no link was needed).

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::app::App;
use crate::domain::email::normalize_email;
use crate::domain::{ErrorCode, Refusal};
use crate::http::admin::{json as json_response, read_json_body};
use crate::http::error::json::operator as refused;
use crate::http::ResponseBody;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    email: Option<String>,
}

/// `POST …/activation` (the route table checked the method).
pub async fn retry(app: &App, req: Request<Incoming>, key: &str) -> Response<ResponseBody> {
    let body: RetryBody = match read_json_body(req, 16 * 1024, Duration::from_secs(10)).await {
        Ok(Some(b)) => b,
        Ok(None) => RetryBody::default(),
        Err(message) => return refused(&Refusal::new(ErrorCode::InvalidParameterValue, message)),
    };
    let email = match checked_email(body.email.as_deref()) {
        Ok(e) => e,
        Err(r) => return refused(&r),
    };
    let subscriber = match app.queries.subscriber(key).await {
        Ok(Some(s)) => s,
        Ok(None) => return refused(&Refusal::new(ErrorCode::NotFound, "no such subscriber")),
        Err(e) => return unavailable(&e.to_string()),
    };
    match renew(app, &subscriber.id, email).await {
        Ok(answer) => json_response(StatusCode::OK, answer),
        Err(RenewError::Refused(r)) => refused(&r),
        Err(RenewError::Store(e)) => unavailable(&e.to_string()),
    }
}

/// An email given for a renewal, normalized; `Err` is error 9001.
pub(in crate::http) fn checked_email(email: Option<&str>) -> Result<Option<String>, Refusal> {
    email
        .map(normalize_email)
        .transpose()
        .map_err(|e| Refusal::new(ErrorCode::InvalidEmail, format!("email: {e}")))
}

/// Why a renewal did not happen.
pub(in crate::http) enum RenewError {
    /// Refused by the rules (nothing changed).
    Refused(Refusal),
    /// The store failed.
    Store(crate::provision::DataError),
}

/// "Retry activation" of a subscriber (the operators' route here and the
/// partner admins' API and page): `provisioning.renew_activation`, which wakes the
/// mailer. The answer is
/// `{"subscriberId","status","purpose","activationUrl","linkExpiresAt","emailQueued"}`.
pub(in crate::http) async fn renew(
    app: &App,
    subscriber_id: &str,
    email: Option<String>,
) -> Result<serde_json::Value, RenewError> {
    let Some(links) = app.provisioning.activations().cloned() else {
        return Err(RenewError::Refused(Refusal::new(
            ErrorCode::WrongState,
            "activation is not enabled on this server",
        )));
    };
    let now = crate::provision::now_millis();
    match app
        .provisioning
        .retry_activation(links.clone(), subscriber_id, email, true, now)
        .await
    {
        Ok(Ok(retry)) => {
            tracing::info!(subscriber_id = %retry.subscriber.id, status = %retry.subscriber.status.as_str(), emailed = retry.emails_enqueued, "activation retried by an admin");
            let a = retry.activation.as_ref();
            Ok(json!({
                "subscriberId": retry.subscriber.id,
                "status": retry.subscriber.status,
                "purpose": a.map(|a| a.purpose),
                "activationUrl": a.map(|a| links.url(a)),
                "linkExpiresAt": a.map(|a| a.link_expires_at),
                "emailQueued": retry.emails_enqueued > 0,
            }))
        }
        Ok(Err(r)) => Err(RenewError::Refused(r)),
        Err(e) => Err(RenewError::Store(e)),
    }
}

/// A store failure: 9021 with the error text (operators may see it).
fn unavailable(message: &str) -> Response<ResponseBody> {
    refused(&Refusal::new(ErrorCode::StorageUnavailable, message))
}
