//! Signing in to the activation portal with BroadWorks credentials, checked
//! at the XSP of the template's cluster (`xsp::XspClient`):
//!
//! - `POST /activate/signin` (`userId`, `password`): a subscriber waiting
//!   for activation (untrusted email, consent) who has no link at hand is
//!   sent on to its activation page.
//! - `GET /self-activate/{provisioningId}`, `POST …` (same fields):
//!   self-activation, when the template allows it. The user's BroadWorks
//!   profile becomes a new subscriber (like an AddUser without an email),
//!   whose activation asks for an email and its code; on success the
//!   subscriber is `selfActivated`.
//!
//! Wrong credentials and unknown users get the same answer (no user
//! enumeration); nothing is recorded for a refused sign-in.

use hyper::header::{HeaderValue, LOCATION};
use hyper::{Response, StatusCode};

use super::portal::{esc, html, page};
use super::ResponseBody;
use crate::app::App;
use crate::domain::ids::UserId;
use crate::domain::lifecycle::{Rejection, SubscriberRecord};
use crate::domain::subscriber::NewSubscriber;
use crate::domain::{CustomerTemplate, ErrorCode};
use crate::xsi::Profile;
use crate::xsp::XspError;

/// BroadWorks' longest web portal password is well under this.
const MAX_PASSWORD: usize = 128;

/// The sign-in form (also on the portal home page).
pub fn form(action: &str, error: Option<&Rejection>, user_id: &str) -> String {
    let alert = error
        .map(|r| {
            format!(
                "<p class=\"error\" role=\"alert\">{} (error {})</p>",
                esc(&r.message),
                r.code.code()
            )
        })
        .unwrap_or_default();
    format!(
        "{alert}<form method=\"post\" action=\"{action}\">\
<label for=\"userId\">BroadWorks user id</label>\
<input id=\"userId\" name=\"userId\" autocomplete=\"username\" required maxlength=\"161\" value=\"{user}\">\
<label for=\"password\">BroadWorks password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"{MAX_PASSWORD}\">\
<button type=\"submit\">Sign in</button></form>",
        action = esc(action),
        user = esc(user_id),
    )
}

struct Credentials {
    user_id: String,
    password: String,
}

fn credentials(body: &[u8]) -> Credentials {
    let mut c = Credentials {
        user_id: String::new(),
        password: String::new(),
    };
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "userId" if c.user_id.is_empty() => c.user_id = v.trim().to_string(),
            "password" if c.password.is_empty() => c.password = v.into_owned(),
            _ => {}
        }
    }
    c
}

fn wrong_credentials() -> Rejection {
    Rejection::new(
        ErrorCode::BadCredentials,
        "the BroadWorks user id or password is wrong, or nothing waits for activation for this user",
    )
}

/// Checks the credentials at the template's XSP; the profile on success.
async fn check(
    app: &App,
    template: &CustomerTemplate,
    user_id: &UserId,
    password: &str,
) -> Result<Profile, Rejection> {
    if password.is_empty()
        || password.chars().count() > MAX_PASSWORD
        || password.chars().any(char::is_control)
    {
        return Err(wrong_credentials());
    }
    let xsp_url = template
        .cluster_id
        .as_deref()
        .and_then(|id| app.config.clusters.iter().find(|c| c.id == id))
        .and_then(|c| c.xsp_url.as_deref());
    let (Some(xsp), Some(url)) = (app.xsp.as_ref(), xsp_url) else {
        return Err(Rejection::new(
            ErrorCode::WrongState,
            "signing in with BroadWorks credentials is not set up for your service provider; \
use the activation link you received",
        ));
    };
    match xsp.profile(url, user_id.as_str(), password).await {
        Ok(p) if p.user_id.eq_ignore_ascii_case(user_id.as_str()) => Ok(p),
        Ok(_) | Err(XspError::BadCredentials) => Err(wrong_credentials()),
        Err(e) => {
            tracing::warn!(error = %e, xsp = url, "BroadWorks sign-in: XSP call failed");
            Err(Rejection::new(
                ErrorCode::UnderMaintenance,
                "BroadWorks cannot check your credentials right now; try again in a few minutes",
            ))
        }
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

fn signin_page(
    title: &str,
    intro: &str,
    action: &str,
    error: Option<&Rejection>,
    user_id: &str,
) -> Response<ResponseBody> {
    let status = error.map_or(StatusCode::OK, |r| status_of(r.code));
    html(
        status,
        page(
            title,
            &format!(
                "<h1>{}</h1><p>{intro}</p>{}",
                esc(title),
                form(action, error, user_id)
            ),
        ),
    )
}

fn see_other(location: &str) -> Response<ResponseBody> {
    let mut resp = html(
        StatusCode::SEE_OTHER,
        page(
            "Continue",
            &format!(
                "<h1>Continue</h1><p><a href=\"{0}\">Continue to your activation</a></p>",
                esc(location)
            ),
        ),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// The page of the subscriber's current activation link (a new link when
/// the old one expired).
async fn to_activation(app: &App, s: &SubscriberRecord) -> Result<String, Rejection> {
    let Some(links) = app.provisioning.activations().cloned() else {
        return Err(wrong_credentials());
    };
    let unavailable = |e: crate::store::StoreError| {
        tracing::warn!(error = %e, "sign-in: store unavailable");
        Rejection::new(ErrorCode::StorageUnavailable, "try again in a few minutes")
    };
    let view = app
        .store
        .activation(&s.id)
        .await
        .map_err(unavailable)?
        .ok_or_else(wrong_credentials)?;
    let now = crate::provision::now_millis();
    let activation = if now >= view.activation.link_expires_at {
        match app
            .store
            .renew_activation(links.clone(), &s.id, None, now)
            .await
            .map_err(unavailable)?
        {
            Ok(v) => {
                app.provisioning.wake(0, v.emails_enqueued);
                v.activation
            }
            Err(r) => return Err(r),
        }
    } else {
        view.activation
    };
    // Relative: the portal may sit behind a proxy with another base URL.
    let url = links.url(&activation);
    Ok(
        match url.find("/activate?").or_else(|| url.find("/consent?")) {
            Some(i) => url[i..].to_string(),
            None => url,
        },
    )
}

/// `POST /activate/signin`.
pub async fn signin(app: &App, body: &[u8]) -> Response<ResponseBody> {
    let c = credentials(body);
    let refuse = |r: &Rejection| {
        signin_page(
            "Sign in",
            "Sign in with your BroadWorks user id and password to continue your activation.",
            "/activate/signin",
            Some(r),
            &c.user_id,
        )
    };
    let Ok(user_id) = UserId::parse(&c.user_id) else {
        return refuse(&wrong_credentials());
    };
    let subscriber = match app.store.subscriber_by_user_id(user_id.as_str()).await {
        Ok(Some(s)) if s.status.is_pending_user() => s,
        Ok(_) => return refuse(&wrong_credentials()),
        Err(_) => {
            return refuse(&Rejection::new(
                ErrorCode::StorageUnavailable,
                "try again in a few minutes",
            ))
        }
    };
    let template = match app.provisioning.template(&subscriber.provisioning_id).await {
        Ok(Some(t)) => t,
        _ => return refuse(&wrong_credentials()),
    };
    if let Err(r) = check(app, &template, &user_id, &c.password).await {
        return refuse(&r);
    }
    match to_activation(app, &subscriber).await {
        Ok(location) => see_other(&location),
        Err(r) => refuse(&r),
    }
}

/// `GET` / `POST /self-activate/{provisioningId}`.
pub async fn self_activate(
    app: &App,
    provisioning_id: &str,
    body: Option<&[u8]>,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let action = format!("/self-activate/{provisioning_id}");
    let template = match app.provisioning.template(provisioning_id).await {
        Ok(Some(t)) if t.settings.allow_self_activation && !t.settings.wholesale => t,
        _ => {
            let r = Rejection::new(
                ErrorCode::NotFound,
                "this self-activation link is not valid; ask your service provider for the right one",
            );
            return html(
                status_of(r.code),
                page(
                    "Self-activation",
                    &format!(
                        "<h1>Self-activation</h1><p class=\"error\" role=\"alert\">{} (error {})</p>",
                        esc(&r.message),
                        r.code.code()
                    ),
                ),
            );
        }
    };
    let intro = "Activate Webex yourself: sign in with your BroadWorks user id and password, \
then enter your email address and confirm it with the code we send you.";
    let Some(body) = body else {
        return signin_page("Self-activation", intro, &action, None, "");
    };
    let c = credentials(body);
    let refuse =
        |r: &Rejection| signin_page("Self-activation", intro, &action, Some(r), &c.user_id);
    let Ok(user_id) = UserId::parse(&c.user_id) else {
        return refuse(&wrong_credentials());
    };
    let profile = match check(app, &template, &user_id, &c.password).await {
        Ok(p) => p,
        Err(r) => return refuse(&r),
    };
    match app.store.subscriber_by_user_id(user_id.as_str()).await {
        Ok(Some(s)) if s.status.is_pending_user() => {
            return match to_activation(app, &s).await {
                Ok(location) => see_other(&location),
                Err(r) => refuse(&r),
            }
        }
        Ok(Some(_)) => {
            return refuse(&Rejection::new(
                ErrorCode::WrongState,
                "your account is already active; sign in to Webex",
            ))
        }
        Ok(None) => {}
        Err(_) => {
            return refuse(&Rejection::new(
                ErrorCode::StorageUnavailable,
                "try again in a few minutes",
            ))
        }
    }
    let key = user_id.as_str().to_string();
    let subscriber = match new_subscriber(user_id, &profile) {
        Ok(s) => s,
        Err(r) => return refuse(&r),
    };
    let outcome = match app
        .provisioning
        .self_activate(&template, subscriber, tracking_id)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, tracking_id, "self-activation not recorded");
            return refuse(&Rejection::new(
                ErrorCode::StorageUnavailable,
                "try again in a few minutes",
            ));
        }
    };
    if let Some(line) = outcome.results.first() {
        if let Some(code) = line.error_code.and_then(ErrorCode::from_code) {
            return refuse(&Rejection::new(
                code,
                line.error_message.clone().unwrap_or_default(),
            ));
        }
    }
    tracing::info!(user_id = %key, provisioning_id, tracking_id, "self-activation started");
    match app.store.subscriber_by_user_id(&key).await {
        Ok(Some(s)) => match to_activation(app, &s).await {
            Ok(location) => see_other(&location),
            Err(r) => refuse(&r),
        },
        _ => refuse(&Rejection::new(
            ErrorCode::StorageUnavailable,
            "try again in a few minutes",
        )),
    }
}

/// The AddUser a self-activation stands for, from the BroadWorks profile.
fn new_subscriber(user_id: UserId, p: &Profile) -> Result<NewSubscriber, Rejection> {
    if p.service_provider_id.is_empty() || p.group_id.is_empty() {
        return Err(Rejection::new(
            ErrorCode::MissingParameter,
            "your BroadWorks profile names no service provider or group; ask your administrator",
        ));
    }
    let phone_number = p.e164_number();
    let extension = p.extension.clone().filter(|e| !e.is_empty());
    if phone_number.is_none() && extension.is_none() {
        return Err(Rejection::new(
            ErrorCode::MissingParameter,
            "your BroadWorks profile has neither a phone number nor an extension; ask your administrator",
        ));
    }
    Ok(NewSubscriber {
        user_id,
        service_provider_id: p.service_provider_id.clone(),
        group_id: p.group_id.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        email: None,
        phone_number,
        extension,
        mobile_phone_number: p
            .mobile
            .as_deref()
            .and_then(|m| crate::domain::phone::E164::parse(m).ok()),
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: false,
        has_route_list: false,
    })
}
